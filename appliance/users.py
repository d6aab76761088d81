"""`foxden user add/list`: accounts made on the box itself.

The password never leaves this process and is never stored: the client half of onepw
(quickStretch → authPW, unwrapBKey) runs here exactly as Firefox's pages would, then the
server half (scrypt → verifyHash, wrapWrapKb) and one row in the accounts table.

With key stretching v2 (the default) the account gets both verifiers, as Mozilla's
sign-up does today: a random kB, wrapKb = kB XOR unwrapBKey(v1) and wrapKbVersion2 =
kB XOR unwrapBKey(v2), so v1 and v2 clients derive the same Sync key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from server.accounts import devices, passwords, store, tokens
from server.accounts.validate import is_valid_email
from server.crypto import onepw
from server.db.engine import Database

MIN_PASSWORD_CHARS = 8


class UserError(Exception):
    """Bad input or a conflict; the message is for the user."""


def new_password(email: str, password: str, *, key_stretch: int = 2) -> passwords.NewPassword:
    """Both halves of onepw for a new account (slow: PBKDF2 and one or two scrypts)."""
    check_password(password)
    v1 = onepw.client_credentials_v1(email, password)
    if key_stretch == 1:
        return passwords.make_record(v1.auth_pw, None, None)
    if key_stretch != 2:
        raise UserError("key stretching is version 1 or 2")
    salt = onepw.new_client_salt()
    v2 = onepw.client_credentials_v2(salt, password)
    kb = secrets.token_bytes(32)
    return passwords.make_record(
        v1.auth_pw, onepw.wrap_kb(kb, v1.unwrap_b_key),
        passwords.V2Credentials(v2.auth_pw, onepw.wrap_kb(kb, v2.unwrap_b_key), salt))


def check_email(email: str) -> str:
    if not is_valid_email(email):
        raise UserError(f"not a usable email address: {email!r}")
    return email


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")


def add_user(db: Database, email: str, password: str, *, now_ms: int,
             key_stretch: int = 2) -> store.AccountRow:
    """Synchronous, for the CLI (no server running in this process)."""
    check_email(email)
    if db.read_sync(lambda c: store.find_by_email(c, email)) is not None:
        raise UserError(f"an account for {email} already exists")
    new = new_password(email, password, key_stretch=key_stretch)
    try:
        return db.write_sync(lambda c: store.create(c, email, new.record, now_ms))
    except store.AccountExists:
        raise UserError(f"an account for {email} already exists") from None


@dataclass(frozen=True, slots=True)
class UserSummary:
    uid: str
    email: str
    created_at: int
    key_stretch: int
    sessions: int
    devices: int

    def as_json(self) -> dict[str, Any]:
        return {"uid": self.uid, "email": self.email, "createdAt": self.created_at,
                "keyStretchVersion": self.key_stretch, "sessions": self.sessions,
                "devices": self.devices}


def list_users(db: Database, *, now_ms: int) -> list[UserSummary]:
    def read(c: Any) -> list[UserSummary]:
        return [UserSummary(a.uid, a.email, a.created_at, a.key_stretch_version,
                            len(tokens.sessions(c, a.uid, now_ms)),
                            len(devices.list_for_account(c, a.uid)))
                for a in store.list_all(c)]

    return db.read_sync(read)
