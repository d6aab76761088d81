"""HAWK verification for storage requests (docs: storage-tokenserver.md §2).

Sans-IO apart from the in-memory nonce cache: the route hands in the Authorization
header, method, raw request target and URL uid; :meth:`StorageAuth.verify` returns the
token's uid and parsed header or raises :class:`AuthError` (401) / :class:`UidMismatch`
(400).  Both answer with body ``0``.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

from ..crypto import hawk, tokenlib
from ..crypto.noncecache import NonceCache

# Clock skew allowed between the HAWK ts and our clock: the 52 weeks syncstorage-rs allows
# (phones drift, and Firefox has no retry-with-server-time for storage requests).
# Replays are stopped by the nonce cache instead of a tight window: a (token, nonce)
# pair is remembered for as long as a replay could still be accepted — until the token
# expires, and for /info/collections (which takes expired tokens) until ts + skew — so
# the wide window never reopens a replay. The long-lived info/collections pairs live in
# their own cache, so they can never evict the short-lived pairs of other requests.
# DIVERGENCE: syncstorage-rs keeps no nonces; the legacy Python stack used ±60 s + a cache.
MAX_SKEW_SECONDS = 52 * 7 * 24 * 3600


class AuthError(Exception):
    """Any HAWK/token failure: 401, body 0."""


class UidMismatch(Exception):
    """Valid credentials for another uid than the URL's: 400, body 0."""


@dataclass(frozen=True, slots=True)
class Identity:
    uid: int
    token: dict[str, Any]
    header: hawk.HawkHeader


@dataclass
class StorageAuth:
    secrets: tokenlib.TokenSecrets  # HKDF of the master secret done once, at start-up
    host: str
    port: int
    nonces: NonceCache = field(default_factory=NonceCache)
    info_nonces: NonceCache = field(default_factory=NonceCache)
    max_skew: float = MAX_SKEW_SECONDS

    def verify(self, authorization: str | None, method: str, target: str, url_uid: int, *,
               allow_expired: bool = False, now: float | None = None) -> Identity:
        now = time.time() if now is None else now
        try:
            header = hawk.parse_header(authorization)
            token = tokenlib.parse_token(self.secrets, header.id)
            uid = token["uid"]
            if not 0 <= uid < 2**64:
                raise AuthError("uid out of range")
            # RS: round(expires) > now, in whole seconds.
            expires = float(token["expires"])
            if not math.isfinite(expires):
                raise AuthError("bad expiry")
            if not allow_expired and math.floor(expires + 0.5) <= int(now):
                raise AuthError("token expired")
            if abs(int(header.ts) - now) > self.max_skew:
                raise AuthError("ts outside the allowed skew")
            # The HMAC key is the ASCII of the derived base64 secret, as clients use it.
            key = tokenlib.derived_secret(self.secrets, header.id, token["salt"])
            hawk.verify_mac(header, key.encode("ascii"), method, target, self.host, self.port)
        except (hawk.HawkError, tokenlib.InvalidToken, UnicodeError, ValueError,
                OverflowError) as exc:
            raise AuthError(type(exc).__name__) from exc
        self._check_nonce(header, expires, allow_expired, now)
        if uid != url_uid:
            raise UidMismatch()
        return Identity(uid, token, header)

    def _check_nonce(self, header: hawk.HawkHeader, expires: float, allow_expired: bool,
                     now: float) -> None:
        cache, keep_until = self.nonces, expires
        if allow_expired:
            cache, keep_until = self.info_nonces, max(expires, int(header.ts) + self.max_skew)
        # Keyed by a digest: token ids are ~300 bytes and the cache holds up to 200k pairs.
        token_key = hashlib.sha256(header.id.encode("ascii", "replace")).hexdigest()[:32]
        if not cache.check_and_add(token_key, header.nonce, keep_until, now):
            raise AuthError("replayed nonce")


def verify_payload(identity: Identity, content_type: str, body: bytes) -> None:
    """Check the optional HAWK payload hash against the body (hawk.verify_payload)."""
    try:
        hawk.verify_payload(identity.header, content_type, body)
    except hawk.HawkError as exc:
        raise AuthError("payload hash mismatch") from exc
