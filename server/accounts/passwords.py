"""Server-side password records: what an authPW (v1, and optionally v2) is stored as.

Both verifiers share one random authSalt, as Mozilla's do.  A v2 account keeps its v1
verifier too, so v1-only clients (PyFxA's default, older pages) still sign in, and both
wrapWrapKb values unwrap to wrapKBs of the *same* kB (the client guarantees that by
sending both wrapKb values; the server cannot check it without kB).

scrypt is slow and takes 64 MiB, so the async helpers run it in worker threads behind a
capacity limiter: concurrent logins cannot exhaust memory.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import trio

from ..crypto import onepw
from .store import AccountRow


@dataclass(frozen=True, slots=True)
class V2Credentials:
    auth_pw: bytes
    wrap_kb: bytes
    client_salt: str


@dataclass(frozen=True, slots=True)
class PasswordRecord:
    auth_salt: bytes
    verify_hash: bytes
    wrap_wrap_kb: bytes
    client_salt: str | None = None
    verify_hash_v2: bytes | None = None
    wrap_wrap_kb_v2: bytes | None = None


@dataclass(frozen=True, slots=True)
class NewPassword:
    record: PasswordRecord
    wrap_kb: bytes                 # what a v1 keyFetchToken hands out
    wrap_kb_v2: bytes | None       # what a v2 keyFetchToken hands out


@dataclass(frozen=True, slots=True)
class Match:
    version: int                   # which verifier the authPW matched: 1 or 2
    wrap_kb: bytes


def make_record(auth_pw: bytes, wrap_kb: bytes | None, v2: V2Credentials | None
                ) -> NewPassword:
    """Synchronous (the CLI uses it); ``wrap_kb=None`` means a fresh random kB (v1 sign-up)."""
    auth_salt = secrets.token_bytes(32)
    wrapped = wrap_kb if wrap_kb is not None else secrets.token_bytes(32)
    s1 = onepw.stretch_auth_pw(auth_pw, auth_salt)
    record = PasswordRecord(auth_salt, s1.verify_hash, s1.wrap(wrapped))
    if v2 is None:
        return NewPassword(record, wrapped, None)
    s2 = onepw.stretch_auth_pw(v2.auth_pw, auth_salt)
    record = PasswordRecord(auth_salt, s1.verify_hash, s1.wrap(wrapped), v2.client_salt,
                            s2.verify_hash, s2.wrap(v2.wrap_kb))
    return NewPassword(record, wrapped, v2.wrap_kb)


def check_sync(account: AccountRow, auth_pw: bytes) -> Match | None:
    stretched = onepw.stretch_auth_pw(auth_pw, account.auth_salt)
    if stretched.matches(account.verify_hash):
        return Match(1, stretched.wrap(account.wrap_wrap_kb))
    if account.verify_hash_v2 is not None and account.wrap_wrap_kb_v2 is not None \
            and stretched.matches(account.verify_hash_v2):
        return Match(2, stretched.wrap(account.wrap_wrap_kb_v2))
    return None


class Hasher:
    """Runs the scrypt work off the event loop, at most ``slots`` at a time."""

    def __init__(self, slots: int = 2) -> None:
        self._limiter = trio.CapacityLimiter(slots)

    async def new_record(self, auth_pw: bytes, wrap_kb: bytes | None,
                         v2: V2Credentials | None) -> NewPassword:
        return await trio.to_thread.run_sync(make_record, auth_pw, wrap_kb, v2,
                                             limiter=self._limiter)

    async def check(self, account: AccountRow, auth_pw: bytes) -> Match | None:
        return await trio.to_thread.run_sync(check_sync, account, auth_pw,
                                             limiter=self._limiter)
