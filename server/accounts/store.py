"""SQL for the ``accounts`` table (migration 0003).  Functions take a connection from
``Database.read``/``.write`` (or ``read_sync``/``write_sync``) and run in its transaction.

Other modules use: :func:`get` (by uid), :func:`find_by_email`, ``AccountRow.keys_changed_at``
(ms; the scoped-key timestamp and the tokenserver's keys_changed_at), and
:func:`server.accounts.deletion.delete_account`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..db.engine import Connection, IntegrityError

if TYPE_CHECKING:
    from .passwords import PasswordRecord


class AccountExists(Exception):
    """An account with this (normalized) email is already there."""


@dataclass(frozen=True, slots=True)
class AccountRow:
    uid: str
    email: str                 # canonical spelling: the v1 stretch salt
    normalized_email: str
    auth_salt: bytes
    verify_hash: bytes
    wrap_wrap_kb: bytes
    ka: bytes
    verifier_version: int
    key_stretch_version: int   # 2 once a v2 verifier is set
    client_salt: str | None
    verify_hash_v2: bytes | None
    wrap_wrap_kb_v2: bytes | None
    verifier_set_at: int       # ms
    keys_changed_at: int       # ms, only ever goes up
    created_at: int            # ms
    locale: str
    display_name: str | None
    profile_changed_at: int
    disabled_at: int | None


_COLUMNS = (
    "uid, email, normalized_email, auth_salt, verify_hash, wrap_wrap_kb, ka, verifier_version,"
    " key_stretch_version, client_salt, verify_hash_v2, wrap_wrap_kb_v2, verifier_set_at,"
    " keys_changed_at, created_at, locale, display_name, profile_changed_at, disabled_at"
)


def _blob(value: object) -> bytes | None:
    return None if value is None else bytes(value)  # type: ignore[arg-type]


def _row(r: tuple) -> AccountRow:  # type: ignore[type-arg]
    return AccountRow(
        r[0], r[1], r[2], bytes(r[3]), bytes(r[4]), bytes(r[5]), bytes(r[6]), r[7], r[8],
        r[9], _blob(r[10]), _blob(r[11]), r[12], r[13], r[14], r[15], r[16], r[17], r[18])


def normalize_email(email: str) -> str:
    return email.lower()


def get(conn: Connection, uid: str) -> AccountRow | None:
    r = conn.execute(f"SELECT {_COLUMNS} FROM accounts WHERE uid = ?",  # noqa: S608
                     (uid,)).fetchone()
    return _row(r) if r else None


def find_by_email(conn: Connection, email: str) -> AccountRow | None:
    r = conn.execute(f"SELECT {_COLUMNS} FROM accounts WHERE normalized_email = ?",  # noqa: S608
                     (normalize_email(email),)).fetchone()
    return _row(r) if r else None


def list_all(conn: Connection) -> list[AccountRow]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM accounts ORDER BY created_at, uid")  # noqa: S608
    return [_row(r) for r in rows.fetchall()]


def create(conn: Connection, email: str, record: PasswordRecord, now_ms: int, *,
           locale: str = "", ka: bytes | None = None) -> AccountRow:
    uid = secrets.token_hex(16)
    try:
        conn.execute(
            "INSERT INTO accounts (uid, email, normalized_email, auth_salt, verify_hash,"
            " wrap_wrap_kb, ka, verifier_version, key_stretch_version, client_salt,"
            " verify_hash_v2, wrap_wrap_kb_v2, verifier_set_at, keys_changed_at, created_at,"
            " locale, profile_changed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (uid, email, normalize_email(email), record.auth_salt, record.verify_hash,
             record.wrap_wrap_kb, ka or secrets.token_bytes(32), 1,
             2 if record.client_salt else 1, record.client_salt, record.verify_hash_v2,
             record.wrap_wrap_kb_v2, now_ms, now_ms, now_ms, locale[:255], now_ms),
        )
    except IntegrityError as exc:
        raise AccountExists(email) from exc
    row = get(conn, uid)
    assert row is not None
    return row


def set_password(conn: Connection, uid: str, record: PasswordRecord, now_ms: int) -> None:
    """A password change that keeps kB: keys_changed_at stays; no v2 fields = back to v1."""
    conn.execute(
        "UPDATE accounts SET auth_salt = ?, verify_hash = ?, wrap_wrap_kb = ?,"
        " key_stretch_version = ?, client_salt = ?, verify_hash_v2 = ?, wrap_wrap_kb_v2 = ?,"
        " verifier_set_at = ?, profile_changed_at = ? WHERE uid = ?",
        (record.auth_salt, record.verify_hash, record.wrap_wrap_kb,
         2 if record.client_salt else 1, record.client_salt, record.verify_hash_v2,
         record.wrap_wrap_kb_v2, now_ms, now_ms, uid),
    )


def reset_password(conn: Connection, uid: str, record: PasswordRecord, now_ms: int) -> None:
    """An admin reset: a new password *and* a new kB (the old one cannot be recovered
    without the old password), so keys_changed_at moves and Sync starts over."""
    set_password(conn, uid, record, now_ms)
    conn.execute("UPDATE accounts SET keys_changed_at = max(keys_changed_at + 1, ?) "
                 "WHERE uid = ?", (now_ms, uid))


def delete_row(conn: Connection, uid: str) -> None:
    """Only the row (tokens, devices, commands cascade); use deletion.delete_account."""
    conn.execute("DELETE FROM accounts WHERE uid = ?", (uid,))
