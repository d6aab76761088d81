"""SQL for tokenserver user records (table ``tokenserver_users``, migration 0002).

Every function takes a connection from ``Database.read``/``.write`` and runs inside the
caller's transaction.  :func:`issue` is one whole token request's database work; the
rules it applies live in :mod:`.rules`.

# DIVERGENCE: one storage node, the public URL, so there is no nodes table and a row has no
# node column: api_endpoint always follows the configured public URL.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..db.engine import Connection
from . import rules
from .rules import SYNC_SERVICE, AuthData, UserRecord

_COLUMNS = "uid, generation, keys_changed_at, client_state, created_at, replaced_at"


def get_users(conn: Connection, email: str, service: str = SYNC_SERVICE) -> list[UserRecord]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM tokenserver_users WHERE service = ? AND email = ?",  # noqa: S608
        (service, email),
    ).fetchall()
    return [UserRecord(*row) for row in rows]


def insert_user(conn: Connection, email: str, *, generation: int, client_state: str,
                keys_changed_at: int | None, created_at: int,
                service: str = SYNC_SERVICE) -> int:
    cur = conn.execute(
        "INSERT INTO tokenserver_users (service, email, generation, client_state,"
        " keys_changed_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (service, email, generation, client_state, keys_changed_at, created_at),
    )
    uid = cur.lastrowid
    assert uid is not None
    return int(uid)


def mark_replaced(conn: Connection, uids: tuple[int, ...] | list[int], replaced_at: int) -> None:
    conn.executemany(
        "UPDATE tokenserver_users SET replaced_at = ? WHERE uid = ? AND replaced_at IS NULL",
        [(replaced_at, uid) for uid in uids],
    )


def replace_others(conn: Connection, email: str, keep_uid: int, replaced_at: int,
                   service: str = SYNC_SERVICE) -> None:
    conn.execute(
        "UPDATE tokenserver_users SET replaced_at = ? WHERE service = ? AND email = ?"
        " AND uid != ? AND replaced_at IS NULL",
        (replaced_at, service, email, keep_uid),
    )


def update_in_place(conn: Connection, uid: int, generation: int,
                    keys_changed_at: int | None) -> None:
    conn.execute(
        "UPDATE tokenserver_users SET generation = ?, keys_changed_at = ? WHERE uid = ?",
        (generation, keys_changed_at, uid),
    )


@dataclass(frozen=True, slots=True)
class Issued:
    uid: int
    update: rules.Update


def issue(conn: Connection, auth: AuthData, *, now_ms: int, allow_new_users: bool) -> Issued:
    """get-or-create the user, check the request against it, apply the update (§10.3-4).

    Raises :class:`rules.Reject`; run inside ``Database.write`` so a rejection rolls back
    whatever this call had already written.  # DIVERGENCE: syncstorage-rs keeps a row it
    allocated for a request that then fails the checks; one transaction keeps nothing.
    """
    rows = get_users(conn, auth.email)
    if not rows:
        if not allow_new_users:
            raise rules.new_users_disabled()
        uid = insert_user(conn, auth.email, generation=auth.generation or 0,
                          client_state=auth.client_state,
                          keys_changed_at=auth.keys_changed_at, created_at=now_ms)
        user = UserRecord(uid, auth.generation or 0, auth.keys_changed_at,
                          auth.client_state, now_ms, None)
        old_states: tuple[str, ...] = ()
    else:
        current = rules.select_current(rows)
        mark_replaced(conn, current.to_mark_replaced, current.user.created_at)
        user, old_states = current.user, current.old_client_states
        if current.needs_new_uid:
            # Replaced without a successor (a race): re-issue its stored state, not the
            # request's, under a new uid.
            uid = insert_user(conn, auth.email, generation=user.generation,
                              client_state=user.client_state,
                              keys_changed_at=user.keys_changed_at, created_at=now_ms)
            user = UserRecord(uid, user.generation, user.keys_changed_at,
                              user.client_state, now_ms, None)

    rules.check_consistency(auth, user, old_states)
    update = rules.plan_update(auth, user)
    if update.new_uid:
        uid = insert_user(conn, auth.email, generation=update.generation,
                          client_state=auth.client_state,
                          keys_changed_at=update.keys_changed_at, created_at=now_ms)
        replace_others(conn, auth.email, uid, now_ms)
        return Issued(uid, update)
    if update.changed:
        update_in_place(conn, user.uid, update.generation, update.keys_changed_at)
    return Issued(user.uid, update)


# --- for account deletion ----------------------------------------------------------------

def current_uid(conn: Connection, email: str, service: str = SYNC_SERVICE) -> int | None:
    """The uid a token request would be served today (None: never seen, or retired)."""
    rows = get_users(conn, email, service)
    if not rows:
        return None
    user = rules.select_current(rows).user
    if user.generation >= rules.MAX_GENERATION or user.replaced_at is not None:
        return None
    return user.uid


def all_uids(conn: Connection, email: str, service: str = SYNC_SERVICE) -> list[int]:
    """Every uid ever issued to this email: old ones may still hold storage rows."""
    return sorted(r.uid for r in get_users(conn, email, service))


def retire_user(conn: Connection, email: str, *, now_ms: int,
                service: str = SYNC_SERVICE) -> list[int]:
    """Block every future token for this email (generation = MAX, all rows replaced) and
    return all its uids, so the caller can wipe their storage in the same transaction."""
    conn.execute(
        "UPDATE tokenserver_users SET generation = ?,"
        " replaced_at = COALESCE(replaced_at, ?) WHERE service = ? AND email = ?",
        (rules.MAX_GENERATION, now_ms, service, email),
    )
    return all_uids(conn, email, service)
