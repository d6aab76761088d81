"""The batched write and SQL-rendered read paths give exactly what the one-row code gave.

``store.upsert_many`` and ``batch.append`` replaced per-record SELECT/INSERT/usage loops,
and full listings are rendered by SQLite (``RENDER_BSO_SQL``) instead of ``render_bso``.
These tests hold them to the old behaviour: a reference copy of the per-row upsert, and
``render_bso`` on the raw columns, over randomised and adversarial inputs.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.db.engine import Database
from server.storage import batch, query, store
from server.storage.query import DEFAULT_TTL_SECONDS, INDEX, OLDEST, BsoIn, BsoQuery

UID = 7
T0 = 1_700_000_000_000


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "w.db", os.urandom(32), readers=1)
    yield database
    database.close()


def _reference_upsert(conn: Any, uid: int, cid: int, bso: BsoIn, ts: int, *,
                      bump_modified: bool = False, payload_size: int | None = None) -> None:
    """The per-row upsert as it was before upsert_many (one SELECT, one write each)."""
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
        store._adjust_usage(conn, uid, size - (int(row[1]) if row is not None else 0))
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
    conn.execute(f"UPDATE storage_bso SET {', '.join(sets)} "  # noqa: S608
                 "WHERE uid = ? AND collection_id = ? AND id = ?", (*args, uid, cid, bso.id))
    if bso.payload is not None:
        store._adjust_usage(conn, uid, int(size or 0) - int(row[1]))


def _random_bso(rng: random.Random, bso_id: str) -> BsoIn:
    payload = rng.choice([None, "", "x" * rng.randint(1, 40), "é€😀" * rng.randint(1, 5)])
    sortindex = rng.choice([None, None, 0, -3, rng.randint(-10**9 + 1, 10**9 - 1)])
    ttl = rng.choice([None, None, 0, 1, 5, 10, 3600])  # 10 s from T0: expiry == ts
    return BsoIn(bso_id, payload, sortindex, ttl)


def _snapshot(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return db.read_sync(lambda c: (
        c.execute("SELECT uid, collection_id, id, modified, expiry, sortindex, payload_size, "
                  "payload FROM storage_bso ORDER BY uid, collection_id, id").fetchall(),
        c.execute("SELECT uid, bytes FROM storage_usage ORDER BY uid").fetchall()))


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("bump", [False, True])
def test_upsert_many_matches_one_row_at_a_time(tmp_path: Path, seed: int, bump: bool) -> None:
    rng = random.Random(seed)
    ids = [f"id{i:03d}" for i in range(60)]
    seed_rows = [(rng.choice(ids), _random_bso(rng, "")) for _ in range(40)]
    writes = [_random_bso(rng, i) for i in rng.sample(ids, rng.randint(1, 60))]
    with_sizes = bump and seed % 2 == 0  # batch commits pass the staged sizes
    sizes = [b.payload_size if rng.random() < 0.5 else None for b in writes]
    results = []
    for name, batched in (("ref", False), ("new", True)):
        database = Database(tmp_path / f"{name}.db", os.urandom(32), readers=1)
        try:
            def prepare(conn: Any) -> int:
                cid = store.ensure_collection(conn, "col")
                for n, (bso_id, b) in enumerate(seed_rows):
                    _reference_upsert(conn, UID, cid, BsoIn(bso_id, b.payload, b.sortindex,
                                                            b.ttl), T0 + 10 * (n % 4))
                return cid
            cid = database.write_sync(prepare)
            ts = T0 + 10_000  # ttl 0/1/5 rows from the seed are expired by now

            def apply(conn: Any, batched: bool = batched) -> None:
                if batched:
                    store.upsert_many(conn, UID, cid, writes, ts, bump_modified=bump,
                                      sizes=sizes if with_sizes else None)
                    return
                for n, b in enumerate(writes):
                    _reference_upsert(conn, UID, cid, b, ts, bump_modified=bump,
                                      payload_size=sizes[n] if with_sizes else None)
            database.write_sync(apply)
            results.append(_snapshot(database))
        finally:
            database.close()
    assert results[0] == results[1]


def test_upsert_many_with_repeated_ids_applies_in_order(db: Database) -> None:
    def run(conn: Any) -> None:
        cid = store.ensure_collection(conn, "col")
        store.upsert_many(conn, UID, cid, [BsoIn("a", "first", 1), BsoIn("a", ttl=9),
                                           BsoIn("a", "xyz")], T0)
    db.write_sync(run)
    rows, usage = _snapshot(db)
    # modified, expiry (the second write's ttl), sortindex (the first's), size, payload
    assert [r[3:] for r in rows] == [(T0, T0 + 9000, 1, 3, "xyz")]
    assert usage == [(UID, 3)]


def test_upsert_lookup_uses_the_primary_key(db: Database) -> None:
    plan = db.read_sync(lambda c: c.execute(
        "EXPLAIN QUERY PLAN SELECT id, expiry, payload_size FROM storage_bso "
        f"INDEXED BY {store.BSO_PRIMARY_KEY} WHERE uid = ? AND collection_id = ? "
        "AND id IN (?, ?)", (1, 1, "a", "b")).fetchall())
    assert "USING INDEX sqlite_autoindex_storage_bso_1 (uid=? AND collection_id=? AND id=?)" \
        in " | ".join(r[-1] for r in plan)


def test_large_upserts_and_appends_cross_the_lookup_chunk(db: Database) -> None:
    n = store.LOOKUP_CHUNK * 2 + 7
    items = [BsoIn(f"r{i:05d}", "p" * (i % 7)) for i in range(n)]

    def run(conn: Any) -> int:
        cid = store.ensure_collection(conn, "col")
        store.upsert_many(conn, UID, cid, items, T0)
        store.upsert_many(conn, UID, cid, [BsoIn(b.id, "q") for b in items], T0 + 10)
        bid = batch.create(conn, UID, cid, T0)
        batch.append(conn, UID, bid, items)
        batch.append(conn, UID, bid, [BsoIn(b.id, "zz") for b in items])
        return bid
    bid = db.write_sync(run)
    rows, usage = _snapshot(db)
    assert len(rows) == n and all(r[3] == T0 + 10 and r[7] == "q" for r in rows)
    assert usage == [(UID, n)]
    assert db.read_sync(lambda c: batch.staged_bytes(c, UID)) == 2 * n
    assert db.read_sync(lambda c: c.execute(
        "SELECT count(*) FROM storage_batch_items WHERE batch_id = ? AND payload = 'zz'",
        (bid,)).fetchone()[0]) == n


def test_append_with_repeated_ids_merges_in_order(db: Database) -> None:
    def run(conn: Any) -> int:
        cid = store.ensure_collection(conn, "col")
        bid = batch.create(conn, UID, cid, T0)
        batch.append(conn, UID, bid, [BsoIn("a", "xxxx", 3), BsoIn("a", ttl=5),
                                      BsoIn("a", "yy")])
        return bid
    bid = db.write_sync(run)
    assert db.read_sync(lambda c: c.execute(
        "SELECT sortindex, ttl, payload_size, payload FROM storage_batch_items "
        "WHERE batch_id = ?", (bid,)).fetchall()) == [(3, 5, 2, "yy")]
    assert db.read_sync(lambda c: batch.staged_bytes(c, UID)) == 2


# --------------------------------------------------------------------------- rendering

# Everything JSON escaping can trip on: quotes, backslashes, every control character,
# DEL, U+2028/2029, non-BMP characters, NUL, and "</script>".
_NASTY = ['"', "\\", "\\u0000", "\x7f", "\u2028\u2029", "😀𝄞", "é", "</script>", "\x00"]
_NASTY += [chr(c) for c in range(0x20)]


def test_sql_rendered_bsos_are_byte_identical_to_render_bso(db: Database) -> None:
    rng = random.Random(5)
    bsos = []
    for i in range(300):
        payload = "".join(rng.choice(_NASTY + ["a", "b", " ", "{}"]) for _ in range(i % 23))
        bso_id = "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(1 + i % 64))
        sortindex = rng.choice([None, 0, -1, 1, 999_999_999, -999_999_999, rng.randint(-99, 99)])
        bsos.append((bso_id, payload, sortindex, T0 + 10 * rng.randint(0, 150)))

    def run(conn: Any) -> None:
        cid = store.ensure_collection(conn, "col")
        for bso_id, payload, sortindex, ts in bsos:
            store.upsert(conn, UID, cid, BsoIn(bso_id, payload, sortindex), ts)
    db.write_sync(run)
    for q in (BsoQuery(full=True), BsoQuery(full=True, sort=OLDEST),
              BsoQuery(full=True, sort=INDEX), BsoQuery(full=True, newer=T0 + 500)):
        def both(conn: Any, q: BsoQuery = q) -> tuple[Any, Any]:
            cid = store.collection_id(conn, "col")
            return (store.list_bsos(conn, UID, cid, q, T0, 10_000),
                    store.list_bsos(conn, UID, cid, q, T0, 10_000, rendered=True))
        (plain, more), (rendered, more2) = db.read_sync(both)
        assert more == more2 and len(plain) == len(rendered) > 0
        assert [r[1] for r in plain] == [r[1] for r in rendered]
        expected = [query.render_bso(*r).encode("utf-8") for r in plain]
        assert [r[0] for r in rendered] == expected
        for kind in (query.JSON, query.NEWLINES):
            assert query.render_list_bytes(expected, kind) == \
                query.render_list([e.decode() for e in expected], kind).encode("utf-8")


def test_render_helpers_on_empty_lists() -> None:
    assert query.render_list_bytes([], query.JSON) == b"[]"
    assert query.render_list_bytes([], query.NEWLINES) == b""


def test_json_string_matches_json_dumps() -> None:
    import json

    for text in _NASTY + ["", "plain", "".join(_NASTY)]:
        assert query.json_string(text) == json.dumps(text, ensure_ascii=False)


def test_payload_size_counts_utf8_bytes() -> None:
    assert BsoIn("a", "abc").payload_size == 3
    assert BsoIn("a", "é😀").payload_size == 6
    assert BsoIn("a", "").payload_size == 0
    assert BsoIn("a").payload_size is None
