"""Replay protection for HAWK: remember (token id, nonce) until the token expires (sans-IO)."""

from __future__ import annotations

import heapq


class NonceCache:
    """Bounded memory: entries leave when their token expires; the oldest go first when full.

    DIVERGENCE: syncstorage-rs keeps no nonces at all; we reject a replayed request for as
    long as the token that signed it is valid.  Held in memory: a restart forgets it, which
    only reopens the window for requests captured before the restart.
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self._max = max_entries
        self._seen: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_add(self, token_id: str, nonce: str, expires: float, now: float) -> bool:
        """True if fresh (and now remembered), False if this pair was seen before."""
        self._expire(now)
        key = (token_id, nonce)
        if key in self._seen:
            return False
        while len(self._seen) >= self._max and self._heap:
            _, old = heapq.heappop(self._heap)
            self._seen.pop(old, None)
        self._seen[key] = expires
        heapq.heappush(self._heap, (expires, key))
        return True

    def _expire(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            if self._seen.get(key, now + 1) <= now:
                del self._seen[key]
