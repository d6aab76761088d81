"""Conformance: the three known syncstorage-rs faults Foxden must not copy (spec §6.3, §5.6).

1. Re-sending one staged record in a batch must not overwrite the other staged records
   (RS/MySQL's merge query forgets to filter on the item id).
2. DELETE of the storage must drop open batches, so a later commit cannot resurrect data.
3. Records committed through a batch without a TTL must get the default TTL (never expire).
"""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
import trio

from .conformance_helpers import (
    Signer,
    assert_weave_error,
    by_id,
    get_ids,
    jl,
    post,
    quota,
    shared_server_fixture,
    storage,
)

server = shared_server_fixture  # one live server per session, private uids per test


async def _open(c, coll, items):
    r = await post(c, coll, items, params={"batch": "true"})
    assert r.status_code == 202, r.text
    return jl(r)["batch"]


async def _append(c, coll, batch, items):
    r = await post(c, coll, items, params={"batch": batch})
    assert r.status_code == 202, r.text
    return jl(r)


async def _commit(c, coll, batch, items=()):
    r = await post(c, coll, list(items), params={"batch": batch, "commit": "true"})
    assert r.status_code == 200, r.text
    return jl(r)


# ------------------------------------------------------------------ fault 1: staged merge


async def test_resending_one_staged_record_keeps_the_others(server):
    async with storage(server) as c:
        batch = await _open(c, "col", [{"id": "a", "payload": "pa", "sortindex": 1},
                                       {"id": "b", "payload": "pb", "sortindex": 2},
                                       {"id": "c", "payload": "pc", "sortindex": 3}])
        await _append(c, "col", batch, [{"id": "b", "payload": "pb2"}])
        await _commit(c, "col", batch)
        got = await by_id(c, "col")
        assert {k: (v["payload"], v["sortindex"]) for k, v in got.items()} == {
            "a": ("pa", 1), "b": ("pb2", 2), "c": ("pc", 3)}


async def test_resent_staged_fields_merge_per_item(server):
    async with storage(server) as c:
        batch = await _open(c, "col", [{"id": "x", "payload": "px", "sortindex": 5},
                                       {"id": "y", "payload": "py"}])
        await _append(c, "col", batch, [{"id": "x", "ttl": 3600}])
        await _append(c, "col", batch, [{"id": "y", "sortindex": 9}, {"id": "z", "payload": "pz"}])
        await _append(c, "col", batch, [{"id": "z", "payload": "pz2"}])
        await _commit(c, "col", batch)
        got = await by_id(c, "col")
        assert {k: (v["payload"], v.get("sortindex")) for k, v in got.items()} == {
            "x": ("px", 5), "y": ("py", 9), "z": ("pz2", None)}


async def test_resending_in_one_batch_does_not_touch_stored_records(server):
    async with storage(server) as c:
        r = await post(c, "col", [{"id": "s1", "payload": "stored1"},
                                  {"id": "s2", "payload": "stored2"}])
        t0 = jl(r)["modified"]
        batch = await _open(c, "col", [{"id": "n1", "payload": "new1"},
                                       {"id": "n2", "payload": "new2"}])
        await _append(c, "col", batch, [{"id": "n1", "payload": "new1b"}])
        res = await _commit(c, "col", batch)
        got = await by_id(c, "col")
        assert {k: v["payload"] for k, v in got.items()} == {
            "s1": "stored1", "s2": "stored2", "n1": "new1b", "n2": "new2"}
        assert got["s1"]["modified"] == t0
        assert got["n2"]["modified"] == res["modified"]


# ------------------------------------------------------------------ fault 2: DELETE storage


async def test_delete_storage_drops_open_batches(server):
    async with storage(server) as c:
        batch = await _open(c, "col", [{"id": "a", "payload": "secret"}])
        other = await _open(c, "other", [{"id": "b", "payload": "secret2"}])
        r = await c.delete("/storage")
        assert r.status_code == 200 and r.text == "null"
        r = await post(c, "col", [], params={"batch": batch, "commit": "true"})
        assert_weave_error(r, 400, 0)
        r = await post(c, "other", [{"id": "c", "payload": "x"}], params={"batch": other})
        assert_weave_error(r, 400, 0)
        r = await post(c, "other", [], params={"batch": other, "commit": "true"})
        assert_weave_error(r, 400, 0)
        assert await get_ids(c, "col") == []
        assert await get_ids(c, "other") == []
        assert jl(await c.get("/info/collections")) == {}
        assert (await c.get("/info/quota")).json() == quota(server, 0)
        # A fresh batch after the wipe starts empty.
        fresh = await _open(c, "col", [{"id": "new", "payload": "n"}])
        await _commit(c, "col", fresh)
        assert await get_ids(c, "col") == ["new"]


async def test_delete_uid_root_drops_open_batches(server):
    s = Signer(server, 777)
    r = await s.send("POST", "/storage/col?batch=true",
                     content=b'[{"id": "a", "payload": "secret"}]',
                     content_type="application/json")
    assert r.status_code == 202, r.text
    batch = jl(r)["batch"]
    r = await s.send("DELETE", "")
    assert r.status_code == 200 and r.text == "null"
    r = await s.send("POST", f"/storage/col?batch={quote(batch, safe='')}&commit=true",
                     content=b"[]", content_type="application/json")
    assert_weave_error(r, 400, 0)
    r = await s.send("GET", "/storage/col")
    assert jl(r) == []
    r = await s.send("GET", "/info/collections")
    assert jl(r) == {}


# ------------------------------------------------------------------ fault 3: default TTL


async def test_batch_committed_records_without_ttl_do_not_expire(server):
    async with storage(server) as c:
        batch = await _open(c, "col", [{"id": "plain", "payload": "x"},
                                       {"id": "nullttl", "payload": "x", "ttl": None},
                                       {"id": "short", "payload": "x", "ttl": 1}])
        await _append(c, "col", batch, [{"id": "later", "payload": "x"}])
        await _commit(c, "col", batch, [{"id": "oncommit", "payload": "x"}])
        r = await post(c, "col2", [{"id": "immediate", "payload": "x"}],
                       params={"batch": "true", "commit": "true"})
        assert r.status_code == 200
        await trio.sleep(1.1)
        assert sorted(await get_ids(c, "col")) == ["later", "nullttl", "oncommit", "plain"]
        assert await get_ids(c, "col2") == ["immediate"]
        assert (await c.get("/info/collection_counts")).json() == {"col": 4, "col2": 1}


def _expiry_values(conn):
    """Every value of an ``expiry`` column in tables that also hold a ``payload``."""
    found = []
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]
    for table in tables:
        cols = [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")').fetchall()]
        if "expiry" in cols and "payload" in cols:
            found.append((table, [row[0] for row in conn.execute(
                f'SELECT expiry FROM "{table}"').fetchall()]))
    return found


async def test_batch_committed_records_get_the_default_expiry_in_the_store(make_server):
    # Best effort white-box look (schema unknown to this suite): skipped when no table
    # has both `payload` and `expiry` columns.
    server = await make_server()
    async with storage(server) as c:
        batch = await _open(c, "col", [{"id": "a", "payload": "x"}])
        await _append(c, "col", batch, [{"id": "b", "payload": "y"}, {"id": "a", "sortindex": 2}])
        await _commit(c, "col", batch, [{"id": "c", "payload": "z"}])
    found = await server.db.read(_expiry_values)
    if not found:
        pytest.fail("no table with payload+expiry columns: the schema changed under this test")
    horizon_s = time.time() + 2_000_000_000
    values = [v for _, vals in found for v in vals]
    assert len(values) >= 3, found
    for v in values:
        assert v is not None
        # Absolute ms (spec §11) or seconds: either way ~2.1e9 s in the future.
        assert v >= horizon_s * 1000 or (v < 1e11 and v >= horizon_s), (v, found)
