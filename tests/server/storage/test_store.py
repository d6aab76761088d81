"""Storage SQL on a real SQLCipher file: upsert rules, listings, batches, quota, purge."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from server.db.engine import Database
from server.storage import batch, purge_all, store
from server.storage.query import (
    DEFAULT_TTL_SECONDS,
    INDEX,
    OLDEST,
    BsoIn,
    BsoQuery,
    ProtocolError,
    next_offset,
    parse_offset,
)

UID = 42
T0 = 1_700_000_000_000


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "store.db", os.urandom(32), readers=1)
    yield database
    database.close()


def write(db: Database, fn: Any) -> Any:
    return db.write_sync(fn)


def read(db: Database, fn: Any) -> Any:
    return db.read_sync(fn)


def put(db: Database, coll: str, bso: BsoIn, ts: int, uid: int = UID) -> int:
    def run(conn: Any) -> int:
        cid = store.ensure_collection(conn, coll)
        store.upsert(conn, uid, cid, bso, ts)
        store.touch(conn, uid, cid, ts)
        return cid
    return write(db, run)


def row(db: Database, coll: str, bso_id: str, uid: int = UID) -> tuple[Any, ...] | None:
    return read(db, lambda conn: conn.execute(
        "SELECT b.modified, b.expiry, b.sortindex, b.payload, b.payload_size FROM storage_bso b "
        "JOIN storage_collections c ON c.id = b.collection_id "
        "WHERE b.uid = ? AND c.name = ? AND b.id = ?", (uid, coll, bso_id)).fetchone())


def usage_is_consistent(db: Database, uid: int = UID) -> bool:
    def run(conn: Any) -> bool:
        real = conn.execute("SELECT coalesce(sum(payload_size), 0) FROM storage_bso "
                            "WHERE uid = ?", (uid,)).fetchone()[0]
        return store.stored_bytes(conn, uid) == real
    return read(db, run)


# --------------------------------------------------------------------------- upsert


def test_new_bso_defaults(db: Database) -> None:
    put(db, "col", BsoIn("a", ttl=10), T0)
    assert row(db, "col", "a") == (T0, T0 + 10_000, None, "", 0)
    put(db, "col", BsoIn("b", "é"), T0)
    assert row(db, "col", "b") == (T0, T0 + DEFAULT_TTL_SECONDS * 1000, None, "é", 2)


def test_ttl_only_update_keeps_modified_and_payload(db: Database) -> None:
    put(db, "col", BsoIn("a", "x", sortindex=3, ttl=1), T0)
    put(db, "col", BsoIn("a", ttl=10), T0 + 200)
    assert row(db, "col", "a") == (T0, T0 + 200 + 10_000, 3, "x", 1)
    put(db, "col", BsoIn("a", sortindex=4), T0 + 300)  # sortindex bumps modified, keeps ttl
    assert row(db, "col", "a") == (T0 + 300, T0 + 10_200, 4, "x", 1)


def test_expired_row_is_replaced_as_new(db: Database) -> None:
    put(db, "col", BsoIn("a", "old", sortindex=1, ttl=0), T0)
    put(db, "col", BsoIn("a", ttl=42), T0 + 20)
    assert row(db, "col", "a") == (T0 + 20, T0 + 20 + 42_000, None, "", 0)
    assert usage_is_consistent(db)


def test_usage_counter_tracks_every_write(db: Database) -> None:
    cid = put(db, "col", BsoIn("a", "xxxx"), T0)
    put(db, "col", BsoIn("b", "yy", ttl=0), T0)
    put(db, "col", BsoIn("a", "z"), T0 + 10)
    put(db, "other", BsoIn("c", "12345"), T0 + 20)
    assert usage_is_consistent(db)
    assert read(db, lambda c: store.stored_bytes(c, UID)) == 1 + 2 + 5
    assert read(db, lambda c: store.live_bytes(c, UID, T0 + 30)) == 1 + 5
    write(db, lambda c: store.delete_bsos(c, UID, cid, ["b", "nope"]))
    assert usage_is_consistent(db)
    write(db, lambda c: store.delete_bso(c, UID, cid, "a", T0 + 30))
    assert usage_is_consistent(db)
    write(db, lambda c: store.delete_collection(c, UID, store.collection_id(c, "other"), T0))
    assert read(db, lambda c: store.stored_bytes(c, UID)) == 0


def test_timestamps_and_tombstone(db: Database) -> None:
    put(db, "a", BsoIn("1", "x"), T0)
    put(db, "b", BsoIn("1", "x"), T0 + 10)
    assert read(db, lambda c: store.storage_ts(c, UID)) == T0 + 10
    assert write(db, lambda c: store.delete_collection(c, UID, store.collection_id(c, "b"),
                                                       T0 + 50))
    assert read(db, lambda c: store.storage_ts(c, UID)) == T0 + 50
    assert read(db, lambda c: store.collection_timestamps(c, UID)) == [("a", T0)]
    # Deleting a collection the user does not have writes nothing.
    assert not write(db, lambda c: store.delete_collection(c, UID, store.collection_id(c, "b"),
                                                           T0 + 90))
    assert read(db, lambda c: store.storage_ts(c, UID)) == T0 + 50
    write(db, lambda c: store.delete_storage(c, UID))
    assert read(db, lambda c: store.storage_ts(c, UID)) == 0


def test_write_time_strictly_increases(db: Database) -> None:
    seen = []
    for i in range(20):
        def run(conn: Any, i: int = i) -> int:
            ts = store.write_time(conn, UID)
            store.touch(conn, UID, store.ensure_collection(conn, "c"), ts)
            return ts
        seen.append(write(db, run))
    assert seen == sorted(set(seen)) and all(t % 10 == 0 for t in seen)


def test_write_time_moves_past_a_future_timestamp(db: Database) -> None:
    future = store.timestamps.now_ms() + 3_600_000  # the clock stepped back an hour
    write(db, lambda c: store.touch(c, UID, store.ensure_collection(c, "c"), future))
    assert write(db, lambda c: store.write_time(c, UID)) == future + 10


# --------------------------------------------------------------------------- listings


def seed_three_timestamps(db: Database) -> None:
    # Twelve BSOs sharing three timestamps, like the Mozilla pagination tests.
    for i in range(12):
        put(db, "col", BsoIn(f"{i:02d}", "x", sortindex=i % 5), T0 + 10 * (i // 4))


def page_through(db: Database, base: BsoQuery, limit: int) -> list[str]:
    """Follow next offsets the way a client does; returns the ids in order."""
    got: list[str] = []
    q = replace(base, limit=limit)
    for _ in range(50):
        def run(conn: Any, q: BsoQuery = q) -> tuple[list[Any], bool]:
            return store.list_bsos(conn, UID, store.collection_id(conn, "col"), q, T0 + 100,
                                   limit)
        rows, more = read(db, run)
        got += [r[0] for r in rows]
        if not more:
            return got
        token = next_offset(q, limit, [r[1] for r in rows])
        q = replace(q, offset=parse_offset(token))
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 6, 11, 12, 13])
@pytest.mark.parametrize("sort", [None, "newest", OLDEST, INDEX])
@pytest.mark.parametrize("full", [True, False])
def test_pagination_visits_everything_once(db: Database, limit: int, sort: str | None,
                                           full: bool) -> None:
    seed_three_timestamps(db)
    everything = page_through(db, BsoQuery(full=full, sort=sort), 1000)
    assert sorted(everything) == [f"{i:02d}" for i in range(12)]
    assert page_through(db, BsoQuery(full=full, sort=sort), limit) == everything


def test_pagination_with_newer_and_older(db: Database) -> None:
    seed_three_timestamps(db)
    got = page_through(db, BsoQuery(full=True, sort=OLDEST, newer=T0), 3)
    assert got == [f"{i:02d}" for i in range(4, 12)]
    got = page_through(db, BsoQuery(full=True, sort="newest", older=T0 + 20), 3)
    assert got == [f"{i:02d}" for i in reversed(range(8))]


def test_listing_orders_and_filters(db: Database) -> None:
    seed_three_timestamps(db)

    def ids(**kw: Any) -> list[str]:
        q = BsoQuery(**kw)
        return [r[0] for r in read(db, lambda c: store.list_bsos(
            c, UID, store.collection_id(c, "col"), q, T0 + 100, 100)[0])]

    assert ids()[:4] == ["11", "10", "09", "08"]
    assert ids(sort=OLDEST)[:4] == ["00", "01", "02", "03"]
    assert ids(sort=INDEX)[:3] == ["09", "04", "08"]  # sortindex 4 first, id desc
    assert ids(newer=T0 + 10) == ["11", "10", "09", "08"]
    assert ids(older=T0 + 10) == ["03", "02", "01", "00"]
    assert ids(ids=["01", "11", "zz"]) == ["11", "01"]
    put(db, "col", BsoIn("dead", "x", ttl=0), T0 + 20)
    assert "dead" not in ids()


def test_listing_queries_use_indexes(db: Database) -> None:
    seed_three_timestamps(db)

    def plan(sql: str, *args: Any) -> str:
        rows = read(db, lambda c: c.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall())
        return " | ".join(r[-1] for r in rows)

    base = "FROM storage_bso WHERE uid = ? AND collection_id = ? AND expiry > ?"
    p = plan(f"SELECT id {base} AND modified > ? ORDER BY modified DESC, id DESC LIMIT 5",
             1, 1, 0, 0)
    assert "storage_bso_modified" in p and "TEMP B-TREE" not in p
    p = plan(f"SELECT id, payload {base} ORDER BY modified ASC, id ASC LIMIT 5", 1, 1, 0)
    assert "storage_bso_modified" in p and "TEMP B-TREE" not in p
    p = plan(f"SELECT id {base} ORDER BY sortindex DESC, id DESC LIMIT 5", 1, 1, 0)
    assert "storage_bso_sortindex" in p and "TEMP B-TREE" not in p
    p = plan("SELECT collection_id, count(*) FROM storage_bso WHERE uid = ? AND expiry > ? "
             "GROUP BY collection_id", 1, 0)
    assert "COVERING INDEX storage_bso_modified" in p
    p = plan("SELECT rowid FROM storage_bso WHERE expiry <= ? LIMIT 5", 0)
    assert "storage_bso_expiry" in p


# --------------------------------------------------------------------------- batches


def open_batch(db: Database, coll: str = "col", uid: int = UID, now: int = T0) -> tuple[int, int]:
    def run(conn: Any) -> tuple[int, int]:
        cid = store.ensure_collection(conn, coll)
        return cid, batch.create(conn, uid, cid, now)
    return write(db, run)


def test_batch_scope_and_lifetime(db: Database) -> None:
    cid, bid = open_batch(db)
    other = write(db, lambda c: store.ensure_collection(c, "other"))
    assert read(db, lambda c: batch.is_open(c, UID, cid, bid, T0 + 1000))
    assert not read(db, lambda c: batch.is_open(c, UID, other, bid, T0))
    assert not read(db, lambda c: batch.is_open(c, UID + 1, cid, bid, T0))
    assert not read(db, lambda c: batch.is_open(c, UID, cid, bid, T0 + batch.LIFETIME_MS))


def test_resending_one_staged_record_keeps_the_others(db: Database) -> None:
    """Reference fault 1: the staged-item merge must be keyed on the record id."""
    cid, bid = open_batch(db)
    write(db, lambda c: batch.append(c, UID, bid, [BsoIn("a", "A1", 1), BsoIn("b", "B1", 2)]))
    write(db, lambda c: batch.append(c, UID, bid, [BsoIn("a", "A2")]))
    write(db, lambda c: batch.commit(c, UID, cid, bid, T0 + 10))
    assert row(db, "col", "a")[2:4] == (1, "A2")
    assert row(db, "col", "b")[2:4] == (2, "B1")
    assert usage_is_consistent(db)


def test_delete_storage_drops_open_batches(db: Database) -> None:
    """Reference fault 2: a commit after DELETE storage cannot resurrect staged data."""
    cid, bid = open_batch(db)
    write(db, lambda c: batch.append(c, UID, bid, [BsoIn("a", "staged")]))
    write(db, lambda c: store.delete_storage(c, UID))
    assert not read(db, lambda c: batch.is_open(c, UID, cid, bid, T0 + 10))
    assert read(db, lambda c: c.execute("SELECT count(*) FROM storage_batch_items")
                .fetchone()[0]) == 0


def test_delete_collection_drops_its_batches(db: Database) -> None:
    cid, bid = open_batch(db)
    put(db, "col", BsoIn("x", "x"), T0)
    write(db, lambda c: store.delete_collection(c, UID, cid, T0 + 10))
    assert not read(db, lambda c: batch.is_open(c, UID, cid, bid, T0 + 20))


def test_committed_records_without_ttl_get_the_default(db: Database) -> None:
    """Reference fault 3: batch records without a TTL never expire (default TTL at commit)."""
    put(db, "col", BsoIn("old", "o", ttl=100), T0)
    cid, bid = open_batch(db)
    write(db, lambda c: batch.append(c, UID, bid, [BsoIn("new", "n"), BsoIn("old", "o2"),
                                                   BsoIn("ttl", "t", ttl=3)]))
    commit_at = T0 + 60_000
    write(db, lambda c: batch.commit(c, UID, cid, bid, commit_at))
    assert row(db, "col", "new")[:2] == (commit_at, commit_at + DEFAULT_TTL_SECONDS * 1000)
    assert row(db, "col", "old")[:2] == (commit_at, T0 + 100_000)  # keeps its own expiry
    assert row(db, "col", "ttl")[:2] == (commit_at, commit_at + 3000)  # counted from commit


def test_commit_bumps_ttl_only_items_and_keeps_fields(db: Database) -> None:
    put(db, "col", BsoIn("b", "bee", sortindex=17), T0)
    cid, bid = open_batch(db)
    write(db, lambda c: batch.append(c, UID, bid, [BsoIn("b", ttl=5)]))
    write(db, lambda c: batch.commit(c, UID, cid, bid, T0 + 10))
    assert row(db, "col", "b") == (T0 + 10, T0 + 10 + 5000, 17, "bee", 3)


def test_staged_bytes_follow_merges(db: Database) -> None:
    _, bid = open_batch(db)
    write(db, lambda c: batch.append(c, UID, bid, [BsoIn("a", "xxxx"), BsoIn("b", "yy")]))
    write(db, lambda c: batch.append(c, UID, bid, [BsoIn("a", "x"), BsoIn("b", ttl=1)]))
    assert read(db, lambda c: batch.staged_bytes(c, UID)) == 3


# --------------------------------------------------------------------------- quota


def test_quota_rejects_growth_over_the_limit(db: Database) -> None:
    put(db, "col", BsoIn("a", "x" * 60), T0)

    def grow(conn: Any, size: int) -> int:
        before = store.stored_bytes(conn, UID)
        store.upsert(conn, UID, store.collection_id(conn, "col"), BsoIn("b", "y" * size), T0)
        return store.check_quota(conn, UID, before, T0, 100)

    assert write(db, lambda c: grow(c, 40)) == 100  # inclusive
    with pytest.raises(ProtocolError) as exc:
        write(db, lambda c: grow(c, 41))
    assert (exc.value.status, exc.value.code) == (403, 14)
    assert row(db, "col", "b")[3] == "y" * 40  # rolled back


def test_quota_forgets_expired_rows_before_refusing(db: Database) -> None:
    put(db, "col", BsoIn("dead", "x" * 90, ttl=0), T0)

    def grow(conn: Any) -> int:
        before = store.stored_bytes(conn, UID)
        store.upsert(conn, UID, store.collection_id(conn, "col"), BsoIn("b", "y" * 50), T0 + 10)
        return store.check_quota(conn, UID, before, T0 + 10, 100)

    assert write(db, grow) == 50
    assert row(db, "col", "dead") is None


# --------------------------------------------------------------------------- purge


def test_purge_expired_in_chunks(db: Database) -> None:
    for i in range(7):
        put(db, "col", BsoIn(f"d{i}", "xx", ttl=0), T0)
    put(db, "col", BsoIn("live", "x"), T0)
    assert write(db, lambda c: store.purge_expired(c, T0 + 10, limit=5)) == 5
    assert write(db, lambda c: store.purge_expired(c, T0 + 10, limit=5)) == 2
    assert usage_is_consistent(db)
    assert row(db, "col", "live") is not None


def test_purge_stale_batches_in_chunks(db: Database) -> None:
    _, old = open_batch(db, now=T0)
    _, fresh = open_batch(db, now=T0 + batch.LIFETIME_MS)
    write(db, lambda c: batch.append(c, UID, old, [BsoIn(str(i), "x") for i in range(7)]))
    write(db, lambda c: batch.append(c, UID, fresh, [BsoIn("f", "x")]))
    later = T0 + batch.LIFETIME_MS + 10
    assert write(db, lambda c: batch.purge_stale(c, later, limit=5)) == 5
    assert write(db, lambda c: batch.purge_stale(c, later, limit=5)) == 3  # 2 items + batch
    assert write(db, lambda c: batch.purge_stale(c, later, limit=5)) == 0
    assert read(db, lambda c: batch.is_open(c, UID, store.collection_id(c, "col"), fresh,
                                            later))


async def test_purge_all_runs_every_chunk(db: Database) -> None:
    for i in range(12):
        put(db, "col", BsoIn(f"d{i}", "x", ttl=0), T0)
    open_batch(db, now=T0)
    assert await purge_all(db, now=T0 + batch.LIFETIME_MS, chunk=5) == 13
    assert read(db, lambda c: c.execute("SELECT count(*) FROM storage_bso").fetchone()[0]) == 0
