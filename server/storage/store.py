"""Storage SQL: plain functions on a sqlcipher connection (schema: migrations/0001_storage.sql).

Callers run them inside ``Database.read``/``Database.write``, one transaction per request.
All times are ms (multiples of 10). ``now``/``T`` is the request's single clock reading.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from . import timestamps
from .query import (
    DEFAULT_TTL_SECONDS,
    INDEX,
    OLDEST,
    RENDER_BSO_SQL,
    BsoIn,
    BsoQuery,
    ProtocolError,
)

Connection = Any  # sqlcipher3.Connection; kept loose so tests can pass plain sqlite3

TOMBSTONE = 0  # hidden collection id that carries "a collection was deleted at T"
OVER_QUOTA = 14
PURGE_CHUNK = 5000
MAX_WAIT_MS = 100


# --------------------------------------------------------------------------- collections


def collection_id(conn: Connection, name: str) -> int | None:
    row = conn.execute("SELECT id FROM storage_collections WHERE name = ?", (name,)).fetchone()
    return None if row is None else int(row[0])


def ensure_collection(conn: Connection, name: str) -> int:
    conn.execute("INSERT INTO storage_collections (name) VALUES (?) "
                 "ON CONFLICT (name) DO NOTHING", (name,))
    cid = collection_id(conn, name)
    assert cid is not None
    return cid


def storage_ts(conn: Connection, uid: int) -> int:
    row = conn.execute("SELECT max(last_modified) FROM storage_user_collections WHERE uid = ?",
                       (uid,)).fetchone()
    return int(row[0] or 0)


def collection_ts(conn: Connection, uid: int, cid: int | None) -> int:
    if cid is None:
        return 0
    row = conn.execute("SELECT last_modified FROM storage_user_collections "
                       "WHERE uid = ? AND collection_id = ?", (uid, cid)).fetchone()
    return 0 if row is None else int(row[0])


def bso_ts(conn: Connection, uid: int, cid: int | None, bso_id: str) -> int:
    """The BSO's modified time; expired rows still count (doc §4)."""
    if cid is None:
        return 0
    row = conn.execute("SELECT modified FROM storage_bso WHERE uid = ? AND collection_id = ? "
                       "AND id = ?", (uid, cid, bso_id)).fetchone()
    return 0 if row is None else int(row[0])


def write_time(conn: Connection, uid: int) -> int:
    """The write's T, read inside the write transaction.

    DIVERGENCE: syncstorage-rs answers 503 when the collection's last-modified is >= T
    (two writes in one 10 ms tick). With one writer at a time we instead wait (in this
    worker thread, normally < 10 ms) until the clock passes the user's storage timestamp,
    so every write strictly advances both the collection and the storage timestamp and
    no client ever sees a conflict. T stays a real clock reading, so ``ttl: 0`` still
    means "expired at once" for the next request. Only if the clock stepped back by more
    than MAX_WAIT_MS is T moved past the last timestamp instead of waiting.
    """
    floor = storage_ts(conn, uid) + 10
    now = timestamps.now_ms()
    if now >= floor:
        return now
    if floor - now > MAX_WAIT_MS:
        return floor
    while now < floor:
        # Sleep to the tick boundary itself: ``now`` is floored to 10 ms, so sleeping
        # ``floor - now`` overslept by however far into its tick the clock already was
        # (up to 10 ms per back-to-back write of one user).
        time.sleep(max(0.0002, (floor * 1_000_000 - time.time_ns()) / 1e9))
        now = timestamps.now_ms()
    return now


def touch(conn: Connection, uid: int, cid: int, ts: int) -> None:
    conn.execute("INSERT INTO storage_user_collections (uid, collection_id, last_modified) "
                 "VALUES (?, ?, ?) ON CONFLICT (uid, collection_id) "
                 "DO UPDATE SET last_modified = excluded.last_modified", (uid, cid, ts))


# --------------------------------------------------------------------------- info views


def collection_timestamps(conn: Connection, uid: int) -> list[tuple[str, int]]:
    # The tombstone (id 0) has no name row, so the join hides it.
    return [(name, int(ts)) for name, ts in conn.execute(
        "SELECT c.name, u.last_modified FROM storage_user_collections u "
        "JOIN storage_collections c ON c.id = u.collection_id WHERE u.uid = ? "
        "ORDER BY c.name", (uid,))]


def collection_counts(conn: Connection, uid: int, now: int) -> list[tuple[str, int]]:
    return [(name, int(n)) for name, n in conn.execute(
        "SELECT c.name, b.n FROM (SELECT collection_id, count(*) AS n FROM storage_bso "
        "WHERE uid = ? AND expiry > ? GROUP BY collection_id) b "
        "JOIN storage_collections c ON c.id = b.collection_id ORDER BY c.name", (uid, now))]


def collection_usage(conn: Connection, uid: int, now: int) -> list[tuple[str, int]]:
    return [(name, int(n)) for name, n in conn.execute(
        "SELECT c.name, b.n FROM (SELECT collection_id, sum(payload_size) AS n "
        "FROM storage_bso WHERE uid = ? AND expiry > ? GROUP BY collection_id) b "
        "JOIN storage_collections c ON c.id = b.collection_id ORDER BY c.name", (uid, now))]


def live_bytes(conn: Connection, uid: int, now: int) -> int:
    """Payload bytes of unexpired BSOs (what /info/quota reports)."""
    row = conn.execute("SELECT sum(payload_size) FROM storage_bso WHERE uid = ? AND expiry > ?",
                       (uid, now)).fetchone()
    return int(row[0] or 0)


def stored_bytes(conn: Connection, uid: int) -> int:
    """Payload bytes on disk for the user, expired-but-unpurged included (the counter)."""
    row = conn.execute("SELECT bytes FROM storage_usage WHERE uid = ?", (uid,)).fetchone()
    return 0 if row is None else int(row[0])


def _adjust_usage(conn: Connection, uid: int, delta: int) -> None:
    if delta:
        conn.execute("INSERT INTO storage_usage (uid, bytes) VALUES (?, ?) ON CONFLICT (uid) "
                     "DO UPDATE SET bytes = bytes + excluded.bytes", (uid, delta))


# --------------------------------------------------------------------------- reads

_ORDER = {
    None: "modified DESC, id DESC",
    "newest": "modified DESC, id DESC",
    OLDEST: "modified ASC, id ASC",
    INDEX: "sortindex DESC, id DESC",
}


def list_bsos(conn: Connection, uid: int, cid: int | None, q: BsoQuery, now: int,
              limit: int, *, rendered: bool = False) -> tuple[list[tuple[Any, ...]], bool]:
    """One page of a collection listing and whether more rows follow.

    Rows are ``(id, modified, payload, sortindex)`` when ``q.full``, else ``(id, modified)``;
    with ``rendered`` (and ``q.full``) they are ``(render_bso JSON as UTF-8 bytes, modified)``.
    """
    if cid is None or limit == 0:
        return [], False
    if q.full:
        cols = f"{RENDER_BSO_SQL}, modified" if rendered else "id, modified, payload, sortindex"
    else:
        cols = "id, modified"
    sql = [f"SELECT {cols} FROM storage_bso "  # noqa: S608 - fixed column lists only
           "WHERE uid = ? AND collection_id = ? AND expiry > ?"]
    args: list[Any] = [uid, cid, now]
    if q.newer is not None:
        sql.append("AND modified > ?")
        args.append(q.newer)
    if q.older is not None:
        sql.append("AND modified < ?")
        args.append(q.older)
    if q.ids:
        sql.append(f"AND id IN ({','.join('?' * len(q.ids))})")
        args.extend(q.ids)
    skip = 0
    if q.offset is not None:
        skip = q.offset.skip
        if q.offset.ts is not None and q.sort != INDEX:
            # Keyset continuation: resume at the last page's timestamp, then skip.
            sql.append("AND modified >= ?" if q.sort == OLDEST else "AND modified <= ?")
            args.append(q.offset.ts)
    sql.append(f"ORDER BY {_ORDER[q.sort]} LIMIT ? OFFSET ?")
    args.extend((limit + 1, skip))
    # Only fixed fragments and "?" placeholders are joined; values are all bound.
    rows = conn.execute(" ".join(sql), args).fetchall()
    more = len(rows) > limit
    return rows[:limit], more


def get_bso(conn: Connection, uid: int, cid: int | None, bso_id: str,
            now: int) -> tuple[str, int, str, int | None] | None:
    if cid is None:
        return None
    row = conn.execute("SELECT id, modified, payload, sortindex FROM storage_bso "
                       "WHERE uid = ? AND collection_id = ? AND id = ? AND expiry > ?",
                       (uid, cid, bso_id, now)).fetchone()
    return None if row is None else (row[0], int(row[1]), row[2], row[3])


# --------------------------------------------------------------------------- writes


def upsert(conn: Connection, uid: int, cid: int, bso: BsoIn, ts: int, *,
           bump_modified: bool = False, payload_size: int | None = None) -> None:
    """Apply one BSO write with PUT semantics (doc §5.3).

    Only fields sent (not None) change; ``modified`` moves to ``ts`` if payload or
    sortindex was sent (or ``bump_modified``, for batch commits); ``ttl`` counts from ts.
    DIVERGENCE: an expired row is replaced as if absent (fields not sent get their
    defaults) — RS updates it in place, which can resurrect an expired payload.
    """
    upsert_many(conn, uid, cid, [bso], ts, bump_modified=bump_modified,
                sizes=None if payload_size is None else [payload_size])


# Ids per "IN (...)" lookup: well under SQLite's oldest variable limit (999).
LOOKUP_CHUNK = 500
# SQLite's name for the index of storage_bso's PRIMARY KEY (uid, collection_id, id).
BSO_PRIMARY_KEY = "sqlite_autoindex_storage_bso_1"
_INSERT_SQL = ("INSERT INTO storage_bso (uid, collection_id, id, modified, expiry, "
               "sortindex, payload_size, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (uid, collection_id, id) DO UPDATE SET "
               "modified = excluded.modified, expiry = excluded.expiry, "
               "sortindex = excluded.sortindex, payload_size = excluded.payload_size, "
               "payload = excluded.payload")


def _existing(conn: Connection, uid: int, cid: int,
              ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """{id: (expiry, payload_size)} of the stored rows among ``ids``, expired ones too."""
    found: dict[str, tuple[int, int]] = {}
    for i in range(0, len(ids), LOOKUP_CHUNK):
        part = ids[i:i + LOOKUP_CHUNK]
        marks = ",".join("?" * len(part))
        # INDEXED BY the primary key: left alone, the planner prefers the covering
        # storage_bso_modified index and scans the user's whole collection per lookup.
        for bso_id, expiry, size in conn.execute(
                "SELECT id, expiry, payload_size FROM storage_bso "  # noqa: S608 - only "?"s
                f"INDEXED BY {BSO_PRIMARY_KEY} "
                f"WHERE uid = ? AND collection_id = ? AND id IN ({marks})", (uid, cid, *part)):
            found[bso_id] = (int(expiry), int(size))
    return found


def upsert_many(conn: Connection, uid: int, cid: int, bsos: Sequence[BsoIn], ts: int, *,
                bump_modified: bool = False,
                sizes: Sequence[int | None] | None = None) -> None:
    """:func:`upsert` of every BSO in ``bsos``, with the same result as one call each.

    Why not a loop of upserts: a 100-record POST was 300 statements (SELECT, INSERT or
    UPDATE, usage counter) each paying the sqlite3 call overhead. Here it is one
    ``IN (...)`` lookup, one ``executemany`` per statement shape and one usage update.
    That is only equivalent because ids are distinct (a POST rejects duplicates; batch
    items are keyed by id): rows do not depend on each other, so order does not matter.
    A list with repeated ids (no caller sends one) falls back to one upsert at a time.
    ``sizes[i]`` is the stored size of a batch item (None: measure ``bsos[i]``).
    """
    if not bsos:
        return
    ids = [bso.id for bso in bsos]
    if len(bsos) > 1 and len(set(ids)) != len(ids):
        for n, bso in enumerate(bsos):
            upsert_many(conn, uid, cid, [bso], ts, bump_modified=bump_modified,
                        sizes=None if sizes is None else [sizes[n]])
        return
    existing = _existing(conn, uid, cid, ids)
    default_expiry = ts + DEFAULT_TTL_SECONDS * 1000
    inserts: list[tuple[Any, ...]] = []
    # Live rows: one UPDATE shape per combination of fields sent.
    updates: dict[tuple[bool, bool, bool, bool], list[tuple[Any, ...]]] = {}
    delta = 0
    for n, bso in enumerate(bsos):
        size = bso.payload_size if sizes is None or sizes[n] is None else sizes[n]
        row = existing.get(bso.id)
        if row is None or row[0] <= ts:
            size = size or 0
            expiry = default_expiry if bso.ttl is None else ts + bso.ttl * 1000
            inserts.append((uid, cid, bso.id, ts, expiry, bso.sortindex, size,
                            bso.payload if bso.payload is not None else ""))
            delta += size - (row[1] if row is not None else 0)
            continue
        has_payload, has_sortindex = bso.payload is not None, bso.sortindex is not None
        shape = (has_payload, has_sortindex, bso.ttl is not None,
                 bump_modified or has_payload or has_sortindex)
        if not any(shape):
            continue  # nothing sent: the row stays as it is
        args: list[Any] = []
        if has_payload:
            args += [bso.payload, size]
            delta += int(size or 0) - row[1]
        if has_sortindex:
            args.append(bso.sortindex)
        if bso.ttl is not None:
            args.append(ts + bso.ttl * 1000)
        if shape[3]:
            args.append(ts)
        updates.setdefault(shape, []).append((*args, uid, cid, bso.id))
    if inserts:
        conn.executemany(_INSERT_SQL, inserts)
    for (has_payload, has_sortindex, has_ttl, bump), rows in updates.items():
        sets = (["payload = ?", "payload_size = ?"] if has_payload else []) + (
            ["sortindex = ?"] if has_sortindex else []) + (
            ["expiry = ?"] if has_ttl else []) + (["modified = ?"] if bump else [])
        conn.executemany(f"UPDATE storage_bso SET {', '.join(sets)} "  # noqa: S608 - fixed
                         "WHERE uid = ? AND collection_id = ? AND id = ?", rows)
    _adjust_usage(conn, uid, delta)


def delete_bso(conn: Connection, uid: int, cid: int | None, bso_id: str, now: int) -> bool:
    """Delete one live BSO; False if it is missing or expired (→ 404)."""
    if cid is None:
        return False
    rows = conn.execute("DELETE FROM storage_bso WHERE uid = ? AND collection_id = ? "
                        "AND id = ? AND expiry > ? RETURNING payload_size",
                        (uid, cid, bso_id, now)).fetchall()
    _adjust_usage(conn, uid, -sum(int(r[0]) for r in rows))
    return bool(rows)


def delete_bsos(conn: Connection, uid: int, cid: int, ids: Sequence[str]) -> None:
    """DELETE ?ids=: expired rows too (doc §11)."""
    if not ids:
        return
    marks = ",".join("?" * len(ids))
    rows = conn.execute("DELETE FROM storage_bso WHERE uid = ? AND collection_id = ? "  # noqa: S608
                        f"AND id IN ({marks}) RETURNING payload_size",
                        (uid, cid, *ids)).fetchall()
    _adjust_usage(conn, uid, -sum(int(r[0]) for r in rows))


def delete_collection(conn: Connection, uid: int, cid: int | None, ts: int) -> bool:
    """Drop the collection, its BSOs and its open batches; record ts on the tombstone.

    False (nothing written) if the user had no such collection.
    """
    if cid is None:
        return False
    count, size = conn.execute("SELECT count(*), coalesce(sum(payload_size), 0) "
                               "FROM storage_bso WHERE uid = ? AND collection_id = ?",
                               (uid, cid)).fetchone()
    conn.execute("DELETE FROM storage_bso WHERE uid = ? AND collection_id = ?", (uid, cid))
    gone = conn.execute("DELETE FROM storage_user_collections WHERE uid = ? "
                        "AND collection_id = ?", (uid, cid)).rowcount
    # DIVERGENCE: open batches of a deleted collection are dropped too, so a later commit
    # cannot resurrect records into it (the same reasoning as for DELETE storage).
    conn.execute("DELETE FROM storage_batches WHERE uid = ? AND collection_id = ?", (uid, cid))
    if not count and not gone:
        return False
    _adjust_usage(conn, uid, -int(size))
    touch(conn, uid, TOMBSTONE, ts)
    return True


def delete_storage(conn: Connection, uid: int) -> None:
    """Everything of the user: BSOs, collections, tombstone, usage and open batches.

    Dropping the batches fixes a reference fault: a commit after DELETE storage must not
    resurrect records staged before it.
    """
    conn.execute("DELETE FROM storage_bso WHERE uid = ?", (uid,))
    conn.execute("DELETE FROM storage_user_collections WHERE uid = ?", (uid,))
    conn.execute("DELETE FROM storage_usage WHERE uid = ?", (uid,))
    conn.execute("DELETE FROM storage_batches WHERE uid = ?", (uid,))


# --------------------------------------------------------------------------- quota


def check_quota(conn: Connection, uid: int, before: int, now: int, limit: int,
                extra: int = 0) -> int:
    """Raise 403/14 if this write took the user's bytes (+ ``extra``) over ``limit``.

    ``before`` is the usage (incl. extra) at the start of the write; writes that do not
    grow usage always pass. Returns the usage after the write.
    DIVERGENCE: syncstorage-rs ships with quota off (and, when on, refuses writes once
    usage is already >= the limit); a household server enforces it on the result.
    """
    used = stored_bytes(conn, uid) + extra
    if used > limit and used > before:
        # Expired rows still count until the hourly purge; drop this user's now.
        _purge_user_expired(conn, uid, now)
        used = stored_bytes(conn, uid) + extra
        if used > limit:
            raise ProtocolError(403, OVER_QUOTA)
    return used


def _purge_user_expired(conn: Connection, uid: int, now: int) -> None:
    rows = conn.execute("DELETE FROM storage_bso WHERE uid = ? AND expiry <= ? "
                        "RETURNING payload_size", (uid, now)).fetchall()
    _adjust_usage(conn, uid, -sum(int(r[0]) for r in rows))


# --------------------------------------------------------------------------- purge


def purge_expired(conn: Connection, now: int, limit: int = PURGE_CHUNK) -> int:
    """Delete up to ``limit`` expired BSOs (one bounded chunk); returns how many."""
    rows = conn.execute("DELETE FROM storage_bso WHERE rowid IN (SELECT rowid FROM storage_bso "
                        "WHERE expiry <= ? LIMIT ?) RETURNING uid, payload_size",
                        (now, limit)).fetchall()
    freed: defaultdict[int, int] = defaultdict(int)
    for uid, size in rows:
        freed[int(uid)] += int(size)
    for uid, size in freed.items():
        _adjust_usage(conn, uid, -size)
    return len(rows)
