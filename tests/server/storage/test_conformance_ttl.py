"""Conformance: TTLs and expiry (spec §5.3, §6.2, §6.3, §7).

One timeline test drives every real-time expiry case together so the suite sleeps
about 1.8 s in total here instead of once per case.
"""

from __future__ import annotations

import trio

from .conformance_helpers import (
    assert_weave_error,
    by_id,
    get_ids,
    hdr_ts,
    jl,
    post,
    post_ok,
    put_ok,
    shared_server_fixture,
    storage,
)

server = shared_server_fixture  # one live server per session, private uids per test


async def test_ttl_timeline(server):
    async with storage(server) as c:
        # ---- t0: create everything --------------------------------------------------
        await post_ok(c, "bz", [{"id": "a", "payload": "ayy"}, {"id": "b", "payload": "bea"}])
        await put_ok(c, "col", "nottl", {"payload": "x"})
        await put_ok(c, "col", "put1", {"payload": "x", "ttl": 1})
        t_upd = await put_ok(c, "col", "upd", {"payload": "x", "ttl": 1})
        await put_ok(c, "col", "keep", {"payload": "x", "ttl": 1})
        await post_ok(c, "col", [{"id": "p1", "payload": "x", "ttl": 1}])
        t_bulk = (await post_ok(c, "bulk", [{"id": f"b{i}", "payload": "x", "ttl": 1}
                                            for i in range(3)]))["modified"]
        r = await post(c, "bx", [{"id": "late", "payload": "x", "ttl": 1}],
                       params={"batch": "true"})
        assert r.status_code == 202
        batch_x = jl(r)["batch"]
        r = await post(c, "by", [{"id": "forever", "payload": "x"}], params={"batch": "true"})
        assert r.status_code == 202
        batch_y = jl(r)["batch"]
        r = await post(c, "bz", [], params={"batch": "true"})
        batch_z = jl(r)["batch"]
        r = await post(c, "bz", [{"id": "a", "ttl": 1}], params={"batch": batch_z})
        assert r.status_code == 202

        await trio.sleep(0.5)

        # ---- t0.5: updates, then the commits last (closest to the next check) --------
        t_new3 = await put_ok(c, "col", "new3", {"ttl": 10})
        await put_ok(c, "col", "upd", {"ttl": 10})
        await put_ok(c, "col", "keep", {"sortindex": 3})
        r = await post(c, "bulk", [{"id": "b1", "ttl": 10}])
        assert jl(r)["success"] == ["b1"]
        for coll, batch in (("by", batch_y), ("bz", batch_z), ("bx", batch_x)):
            r = await post(c, coll, [], params={"batch": batch, "commit": "true"})
            assert r.status_code == 200, r.text
        t_commit_x = hdr_ts(r)

        await trio.sleep(0.4)

        # ---- commit + 0.4: TTL counted from the commit, not from when it was staged ------
        assert await get_ids(c, "bx") == ["late"]
        assert (await by_id(c, "bx"))["late"]["modified"] == t_commit_x
        assert sorted(await get_ids(c, "bz")) == ["a", "b"]
        assert await get_ids(c, "by") == ["forever"]

        await trio.sleep(0.4)

        # ---- t0 + >=1.3: the t0 ttl=1 writes are gone ------------------------------------
        col = await by_id(c, "col")
        assert sorted(col) == ["new3", "nottl", "upd"]
        assert col["upd"]["payload"] == "x" and col["upd"]["modified"] == t_upd
        assert col["new3"]["payload"] == "" and col["new3"]["modified"] == t_new3
        assert t_new3 > t_upd
        assert_weave_error(await c.get("/storage/col/put1"), 404, 0)
        assert_weave_error(await c.get("/storage/col/keep"), 404, 0)
        bulk = await by_id(c, "bulk")
        assert list(bulk) == ["b1"]
        assert bulk["b1"]["payload"] == "x" and bulk["b1"]["modified"] == t_bulk
        counts = (await c.get("/info/collection_counts")).json()
        assert counts["col"] == 3 and counts["bulk"] == 1 and counts["by"] == 1

        await trio.sleep(0.5)

        # ---- commit + >=1.3: the committed ttl=1 items are gone too -----------------------
        assert await get_ids(c, "bx") == []
        assert await get_ids(c, "bz") == ["b"]
        assert (await by_id(c, "bz"))["b"]["payload"] == "bea"
        assert await get_ids(c, "by") == ["forever"]
        assert sorted(await get_ids(c, "col")) == ["new3", "nottl", "upd"]
        # Expired BSOs leave the collections themselves in place.
        assert set(jl(await c.get("/info/collections"))) == {"bx", "by", "bz", "col", "bulk"}
        assert (await c.get("/info/collection_counts")).json() == {"by": 1, "bz": 1,
                                                                   "col": 3, "bulk": 1}

async def test_ttl_counts_from_the_write(server):
    async with storage(server) as c:
        await put_ok(c, "col", "long", {"payload": "x", "ttl": 3600})
        await post_ok(c, "col", [{"id": "long2", "payload": "x", "ttl": 999_999_999}])
        assert sorted(await get_ids(c, "col")) == ["long", "long2"]
