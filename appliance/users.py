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
from collections.abc import Callable
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


# --- management (the admin API and the CLI call these) -------------------------------------
# Each operation is a function of a connection, so the CLI runs it with db.write_sync /
# read_sync and the admin API inside the server with ``await db.write`` / ``db.read``
# (never touching the server's connections from another thread).

RESET_WARNING = ("Resetting a password without the old one creates new encryption keys: the "
                 "Sync data encrypted with the old keys is lost. Every device must sign in "
                 "again and will upload its own data afresh.")
Tx = Callable[[Any], Any]


def _find(c: Any, who: str) -> store.AccountRow:
    account = store.get(c, who.lower()) if len(who) == 32 else None
    account = account or store.find_by_email(c, who)
    if account is None:
        raise UserError(f"no account {who!r}")
    return account


def find_tx(who: str) -> Tx:
    return lambda c: _find(c, who)


def remove_tx(who: str, *, now_ms: int) -> Tx:
    """Delete the account and everything of it (tokens, devices, OAuth grants, Sync data)."""
    from server.accounts import deletion

    def write(c: Any) -> str:
        account = _find(c, who)
        deletion.delete_account(c, account.uid, now_ms=now_ms)
        return account.email

    return write


def reset_tx(account: store.AccountRow, new: passwords.NewPassword, *, now_ms: int) -> Tx:
    """New password, new kB: signs every device out and drops the old Sync data.
    ``new`` comes from :func:`new_password` (slow; compute it outside the transaction)."""
    from server.oauth import store as oauth_store
    from server.storage import store as storage_store
    from server.tokenserver import rules as ts_rules
    from server.tokenserver import store as ts_store

    def write(c: Any) -> str:
        acct = _find(c, account.uid)
        store.reset_password(c, acct.uid, new.record, now_ms)
        tokens.delete_all_except(c, acct.uid, None)  # sessions; their devices cascade
        oauth_store.revoke_all_for_account(c, acct.uid)
        c.execute("DELETE FROM devices WHERE uid = ?", (acct.uid,))
        # The data under the old keys can never be decrypted again: free the space now.
        # The tokenserver record stays, so the new keys get a fresh uid as usual.
        email = ts_rules.email_for(acct.uid, ts_rules.FXA_EMAIL_DOMAIN)
        for storage_uid in ts_store.all_uids(c, email):
            storage_store.delete_storage(c, storage_uid)
        return acct.email

    return write


def devices_tx(who: str, *, now_ms: int) -> Tx:
    """Devices, sessions and OAuth clients of the account (the attached-clients view)."""
    from server.oauth import attached

    def read(c: Any) -> list[dict[str, Any]]:
        account = _find(c, who)
        return attached.list_attached_clients(c, account.uid, "", now_ms)

    return read


def disconnect_tx(who: str, *, device_id: str | None = None, session_id: str | None = None,
                  client_id: str | None = None) -> Tx:
    """Sign one device, session or OAuth client out of the account."""
    from server.oauth import store as oauth_store

    if not (device_id or session_id or client_id):
        raise UserError("say which device, session or client to disconnect")

    def write(c: Any) -> bool:
        account = _find(c, who)
        if device_id:
            return devices.destroy(c, account.uid, device_id)
        if session_id:
            row = c.execute("SELECT uid FROM fxa_tokens WHERE id = ? AND kind = 'sessionToken'",
                            (session_id,)).fetchone()
            if row is None or row[0] != account.uid:
                return False
            tokens.delete(c, session_id)
            return True
        oauth_store.revoke_client(c, account.uid, client_id or "")
        return True

    return write


def authorizations_tx(who: str) -> Tx:
    from server.oauth import authorizations

    def read(c: Any) -> list[dict[str, Any]]:
        account = _find(c, who)
        return [a.as_json() for a in authorizations.list_authorizations(c, account.uid)]

    return read


def revoke_tx(who: str, *, scope: str, service: str, client_id: str) -> Tx:
    from server.oauth import authorizations

    def write(c: Any) -> bool:
        account = _find(c, who)
        return bool(authorizations.revoke_authorization(
            c, account.uid, scope=scope, service=service, client_id=client_id))

    return write


def usage_tx(*, now_ms: int) -> Tx:
    """Storage per user and collection (bytes and records of unexpired records)."""
    from server.storage import store as storage_store
    from server.tokenserver import rules as ts_rules
    from server.tokenserver import store as ts_store

    def read(c: Any) -> list[dict[str, Any]]:
        out = []
        for account in store.list_all(c):
            email = ts_rules.email_for(account.uid, ts_rules.FXA_EMAIL_DOMAIN)
            uid = ts_store.current_uid(c, email)
            collections: dict[str, dict[str, int]] = {}
            if uid is not None:
                for name, n in storage_store.collection_usage(c, uid, now_ms):
                    collections.setdefault(name, {})["bytes"] = n
                for name, n in storage_store.collection_counts(c, uid, now_ms):
                    collections.setdefault(name, {})["records"] = n
            out.append({"uid": account.uid, "email": account.email, "storageUid": uid,
                        "bytes": sum(v.get("bytes", 0) for v in collections.values()),
                        "collections": collections})
        return out

    return read
