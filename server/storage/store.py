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
from .query import DEFAULT_TTL_SECONDS, INDEX, OLDEST, BsoIn, BsoQuery, ProtocolError

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
        time.sleep(max(0.001, (floor - now) / 1000))
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
              limit: int) -> tuple[list[tuple[Any, ...]], bool]:
    """One page of a collection listing and whether more rows follow.

    Rows are ``(id, modified, payload, sortindex)`` when ``q.full``, else ``(id, modified)``.
    """
    if cid is None or limit == 0:
        return [], False
    cols = "id, modified, payload, sortindex" if q.full else "id, modified"
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
    # Batch items carry their stored size; otherwise measure (None: payload not sent).
    size = bso.payload_size if payload_size is None else payload_size
    row = conn.execute("SELECT expiry, payload_size FROM storage_bso "
                       "WHERE uid = ? AND collection_id = ? AND id = ?",
                       (uid, cid, bso.id)).fetchone()
    ttl_ms = None if bso.ttl is None else bso.ttl * 1000
    if row is None or row[0] <= ts:
        payload = bso.payload if bso.payload is not None else ""
        size = size or 0
        expiry = ts + (ttl_ms if ttl_ms is not None else DEFAULT_TTL_SECONDS * 1000)
        conn.execute("INSERT INTO storage_bso (uid, collection_id, id, modified, expiry, "
                     "sortindex, payload_size, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                     "ON CONFLICT (uid, collection_id, id) DO UPDATE SET "
                     "modified = excluded.modified, expiry = excluded.expiry, "
                     "sortindex = excluded.sortindex, payload_size = excluded.payload_size, "
                     "payload = excluded.payload",
                     (uid, cid, bso.id, ts, expiry, bso.sortindex, size, payload))
        _adjust_usage(conn, uid, size - (int(row[1]) if row is not None else 0))
        return
    sets: list[str] = []
    args: list[Any] = []
    if bso.payload is not None:
        sets += ["payload = ?", "payload_size = ?"]
        args += [bso.payload, size]
    if bso.sortindex is not None:
        sets.append("sortindex = ?")
        args.append(bso.sortindex)
    if ttl_ms is not None:
        sets.append("expiry = ?")
        args.append(ts + ttl_ms)
    if bump_modified or bso.payload is not None or bso.sortindex is not None:
        sets.append("modified = ?")
        args.append(ts)
    if not sets:
        return
    conn.execute(f"UPDATE storage_bso SET {', '.join(sets)} "  # noqa: S608 - fixed columns
                 "WHERE uid = ? AND collection_id = ? AND id = ?", (*args, uid, cid, bso.id))
    if bso.payload is not None:
        _adjust_usage(conn, uid, int(size or 0) - int(row[1]))


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
