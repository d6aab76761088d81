"""Failed-password throttling, in memory (sans-IO: the clock is injected).

Two counters of *failed* password checks in a sliding window (default 15 min):

* per source address, a **hard** limit (default 20): once reached, the address gets 429
  before its password is even checked (no scrypt, no verdict).  This is what bounds online
  guessing: one address gets at most 20 verdicts per window.
* per account, a **soft** limit (default 5): once reached, a *wrong* password gets 429
  instead of 103, but the password is still checked first and the *right* one logs in.
  So nobody elsewhere on the LAN can lock the owner out by typing wrong passwords.

Trade-off, stated plainly: the soft limit is not a second barrier against guessing — a wrong
guess after the limit still costs the attacker one verdict (429 means "wrong", exactly like
103 did).  It is a brake for clients (Retry-After) and a signal, not an oracle *beyond* the
one every password check is.  No extra oracle comes from it: the 429-vs-103 choice depends
only on earlier failures, never on how close the guess was, and every checked attempt pays
the same scrypt whatever the outcome.  The guessing bound therefore is 20 verdicts per
window per address; a household LAN has few addresses.  An attacker with many addresses
(or behind the same NAT/proxy as the owner, which makes the address limit shared) is the
case this design accepts; the alternative — a hard per-account limit — hands anyone on the
network a lockout of the owner.

A success never clears the address counter (else logging in to one's own account between
guesses would reset it); it clears that account's counter.  Memory is bounded: at most
``limit`` timestamps per key and ``max_keys`` keys, least recently failed dropped first.

# DIVERGENCE: Mozilla's customs service blocks on its own rules and lets the owner through
# with an emailed unblock code; there is no email here, so the right password is the way.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    per_account: int = 5
    per_address: int = 20
    window_seconds: float = 15 * 60
    max_keys: int = 10_000


class _Window:
    """Failure timestamps per key, newest last, at most ``cap`` of them per key."""

    def __init__(self, cap: int, window: float, max_keys: int) -> None:
        self._cap = cap
        self._window = window
        self._max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def _live(self, key: str, now: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self._window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def add(self, key: str, now: float) -> None:
        hits = self._live(key, now)
        if hits is None:
            hits = self._hits[key] = deque(maxlen=self._cap)
            while len(self._hits) > self._max_keys:
                self._hits.popitem(last=False)
        hits.append(now)
        self._hits.move_to_end(key)

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)

    def retry_after(self, key: str, now: float) -> int | None:
        """Seconds until the key drops below the limit, or None if it is below it."""
        hits = self._live(key, now)
        if hits is None or len(hits) < self._cap:
            return None
        return max(1, math.ceil(hits[0] + self._window - now))


class LoginThrottle:
    def __init__(self, limits: Limits | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or Limits()
        self.clock = clock
        lim = self.limits
        self._accounts = _Window(lim.per_account, lim.window_seconds, lim.max_keys)
        self._addresses = _Window(lim.per_address, lim.window_seconds, lim.max_keys)

    def address_blocked(self, address: str) -> int | None:
        """Retry-After for an address over its hard limit (checked *before* the password)."""
        return self._addresses.retry_after(address, self.clock())

    def account_limited(self, uid: str) -> int | None:
        """Retry-After for an account over its soft limit (applied to *wrong* passwords)."""
        return self._accounts.retry_after(uid, self.clock())

    def failure(self, address: str, uid: str | None = None) -> None:
        now = self.clock()
        self._addresses.add(address, now)
        if uid is not None:
            self._accounts.add(uid, now)

    def success(self, uid: str) -> None:
        self._accounts.clear(uid)

    def sizes(self) -> tuple[int, int]:
        return len(self._accounts), len(self._addresses)
