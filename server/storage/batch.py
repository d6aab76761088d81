"""Batch uploads (docs: storage-tokenserver.md §6.3): staging tables and commit.

A batch belongs to one user and one collection and lives 2 h from its creation. Staged
items merge per id (fields sent override); a commit upserts every staged item with
``modified = T`` and TTLs counted from T, then deletes the batch.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from .query import BsoIn
from .store import LOOKUP_CHUNK, Connection, upsert_many

LIFETIME_MS = 2 * 3600 * 1000
PURGE_CHUNK = 5000


def new_batch_id() -> int:
    # Opaque, URL-safe (decimal), unguessable per user; 53 bits keep it exact in JSON.
    return secrets.randbelow(2**53 - 1) + 1


def create(conn: Connection, uid: int, cid: int, now: int) -> int:
    while True:
        bid = new_batch_id()
        cur = conn.execute("INSERT INTO storage_batches (uid, id, collection_id, created) "
                           "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", (uid, bid, cid, now))
        if cur.rowcount:
            return bid


def is_open(conn: Connection, uid: int, cid: int | None, bid: int, now: int) -> bool:
    """The batch exists for this user *and* collection and is younger than 2 h."""
    if cid is None:
        return False
    row = conn.execute("SELECT created FROM storage_batches WHERE uid = ? AND id = ? "
                       "AND collection_id = ?", (uid, bid, cid)).fetchone()
    return row is not None and int(row[0]) > now - LIFETIME_MS


def staged_bytes(conn: Connection, uid: int) -> int:
    row = conn.execute("SELECT sum(bytes) FROM storage_batches WHERE uid = ?",
                       (uid,)).fetchone()
    return int(row[0] or 0)


def append(conn: Connection, uid: int, bid: int, items: Iterable[BsoIn]) -> None:
    """Stage items, merging with any already staged under the same id.

    The merge is keyed on (uid, batch, id): re-sending one record must not touch the
    others (a reference fault — RS/MySQL's merge forgot the id filter).
    """
    items = list(items)
    ids = [bso.id for bso in items]
    if len(set(ids)) != len(ids):
        # Repeated ids (no route sends them) merge in order: stage one at a time.
        for bso in items:
            append(conn, uid, bid, [bso])
        return
    # One lookup and one executemany instead of two statements per item (ids are
    # distinct, so the sizes read up front are the ones a per-item loop would see).
    old: dict[str, int] = {}
    for i in range(0, len(ids), LOOKUP_CHUNK):
        part = ids[i:i + LOOKUP_CHUNK]
        marks = ",".join("?" * len(part))
        old.update((bso_id, int(size or 0)) for bso_id, size in conn.execute(
            "SELECT id, payload_size FROM storage_batch_items "  # noqa: S608 - only "?"s
            f"WHERE uid = ? AND batch_id = ? AND id IN ({marks})", (uid, bid, *part)))
    delta = 0
    rows = []
    for bso in items:
        size = bso.payload_size
        rows.append((uid, bid, bso.id, bso.sortindex, bso.ttl, size, bso.payload))
        if size is not None:
            delta += size - old.get(bso.id, 0)
    conn.executemany(
        "INSERT INTO storage_batch_items (uid, batch_id, id, sortindex, ttl, "
        "payload_size, payload) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (uid, batch_id, id) DO UPDATE SET "
        "sortindex = coalesce(excluded.sortindex, sortindex), "
        "ttl = coalesce(excluded.ttl, ttl), "
        "payload_size = coalesce(excluded.payload_size, payload_size), "
        "payload = coalesce(excluded.payload, payload)", rows)
    if delta:
        conn.execute("UPDATE storage_batches SET bytes = bytes + ? WHERE uid = ? AND id = ?",
                     (delta, uid, bid))


def commit(conn: Connection, uid: int, cid: int, bid: int, ts: int) -> None:
    """Upsert the staged items at ``ts`` and delete the batch.

    Every staged item gets ``modified = ts``; fields not sent keep their stored values;
    a new record without a ttl gets the default TTL from ts, so batch-committed records
    never expire early (a reference fault counted TTLs wrongly at commit).
    """
    rows = conn.execute("SELECT id, sortindex, ttl, payload_size, payload "
                        "FROM storage_batch_items WHERE uid = ? AND batch_id = ?",
                        (uid, bid)).fetchall()
    upsert_many(conn, uid, cid, [BsoIn(i, p, s, t) for i, s, t, _, p in rows], ts,
                bump_modified=True, sizes=[size for _, _, _, size, _ in rows])
    conn.execute("DELETE FROM storage_batches WHERE uid = ? AND id = ?", (uid, bid))


def purge_stale(conn: Connection, now: int, limit: int = PURGE_CHUNK) -> int:
    """Delete up to ``limit`` staged items or batches older than 2 h; returns how many.

    Items go first, in chunks, so dropping a huge batch never holds the writer long.
    """
    cutoff = now - LIFETIME_MS
    items = conn.execute(
        "DELETE FROM storage_batch_items WHERE rowid IN (SELECT i.rowid "
        "FROM storage_batches b JOIN storage_batch_items i "
        "ON i.uid = b.uid AND i.batch_id = b.id WHERE b.created <= ? LIMIT ?)",
        (cutoff, limit)).rowcount
    if items >= limit:
        return items
    batches = conn.execute(
        "DELETE FROM storage_batches WHERE (uid, id) IN (SELECT uid, id "
        "FROM storage_batches WHERE created <= ? LIMIT ?)", (cutoff, limit - items)).rowcount
    return items + batches

