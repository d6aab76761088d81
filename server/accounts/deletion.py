"""Deleting an account, and what a password change revokes elsewhere.

Everything happens in the caller's write transaction, so a crash leaves either the whole
account or nothing:

* Sync: the tokenserver retires the account's email (``<uid>@accounts.foxden.invalid``,
  never issued again) and hands back every storage uid it ever had; each one's storage is
  wiped.
* OAuth codes/tokens/authorizations, FxA tokens, devices and queued commands hang off
  ``accounts(uid) ON DELETE CASCADE`` (migrations 0003-0005) and go with the row.
"""

from __future__ import annotations

from ..db.engine import Connection
from . import store


def delete_account(conn: Connection, uid: str, *, now_ms: int) -> None:
    from ..storage import store as storage_store
    from ..tokenserver import rules as ts_rules
    from ..tokenserver import store as ts_store

    email = ts_rules.email_for(uid, ts_rules.FXA_EMAIL_DOMAIN)
    for storage_uid in ts_store.retire_user(conn, email, now_ms=now_ms):
        storage_store.delete_storage(conn, storage_uid)
    store.delete_row(conn, uid)


def revoke_oauth(conn: Connection, uid: str) -> None:
    """After a password change: every OAuth grant of the account (Mozilla revokes public
    and canGrant clients' tokens, which is every client Foxden knows)."""
    from ..oauth import store as oauth_store

    oauth_store.revoke_all_for_account(conn, uid)


def carry_oauth_backing(conn: Connection, old_session_id: str, new_session_id: str) -> None:
    """The replacement session keeps backing the desktop's session-backed authorizations."""
    from ..oauth import authorizations

    authorizations.move_session_backers(conn, old_session_id, new_session_id)
