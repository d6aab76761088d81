"""Conformance: X-If-Modified-Since / X-If-Unmodified-Since (spec §4, §0 parsing, §3)."""

from __future__ import annotations

from decimal import Decimal

from .conformance_helpers import (
    PLD,
    Signer,
    assert_empty,
    assert_weave_error,
    bsos,
    get_full,
    get_ids,
    hdr_ts,
    jl,
    post,
    post_ok,
    put,
    put_ok,
    shared_server_fixture,
    storage,
    zid,
)

server = shared_server_fixture  # one live server per session, private uids per test

IMS = "X-If-Modified-Since"
IUS = "X-If-Unmodified-Since"
INFO_VIEWS = ("/info/collections", "/info/quota", "/info/collection_usage",
              "/info/collection_counts")


async def test_set_collection_with_if_modified_since(server):
    async with storage(server) as c:
        for i in range(5):
            await post_ok(c, "xxx_col2", [{"id": zid(i), "payload": "xxx"}])
        stamps = sorted(i["modified"] for i in await get_full(c, "xxx_col2"))
        assert len(stamps) == 5
        r = await c.get("/storage/xxx_col2", headers={IMS: str(stamps[0])})
        assert r.status_code == 200
        assert len(jl(r)) == 5
        r = await c.get("/storage/xxx_col2", headers={IMS: str(stamps[-1])})
        assert_empty(r, 304)
        assert hdr_ts(r) == stamps[-1]
        hdr_ts(r, "X-Weave-Timestamp")


async def test_get_item_if_modified_since(server):
    async with storage(server) as c:
        await post_ok(c, "xxx_col2", bsos(map(zid, range(5)), "xxx"))
        item = jl(await c.get("/storage/xxx_col2/01"))
        m = item["modified"]
        assert_empty(await c.get("/storage/xxx_col2/01", headers={IMS: str(m)}), 304)
        assert_empty(await c.get("/storage/xxx_col2/01", headers={IMS: str(m + 1)}), 304)
        r = await c.get("/storage/xxx_col2/01", headers={IMS: str(m - 1)})
        assert r.status_code == 200
        assert jl(r)["id"] == "01"


async def test_ifunmodifiedsince(server):
    async with storage(server) as c:
        r = await put(c, "xxx_col2", "12345", {"id": "12345", "payload": PLD})
        created = hdr_ts(r)
        stale = str(created - 1)
        bso = {"id": "12345", "payload": PLD + "XXX"}
        checks = [
            await put(c, "xxx_col2", "12345", bso, headers={IUS: stale}),
            await c.delete("/storage/xxx_col2/12345", headers={IUS: stale}),
            await post(c, "xxx_col2", [bso], headers={IUS: stale}),
            await c.delete("/storage/xxx_col2", params={"ids": "12345"},
                           headers={IUS: stale}),
            await c.delete("/storage/xxx_col2", headers={IUS: stale}),
            await c.get("/storage/xxx_col2/12345", headers={IUS: stale}),
            await c.get("/storage/xxx_col2", headers={IUS: stale}),
            await c.delete("/storage", headers={IUS: stale}),
        ]
        for r in checks:
            assert_empty(r, 412)
            assert hdr_ts(r) == created
            hdr_ts(r, "X-Weave-Timestamp")
        # Deleting items gives 412 when another item in the collection changed.
        other = await put_ok(c, "xxx_col2", "54321", {"payload": PLD})
        r = await c.delete("/storage/xxx_col2", params={"ids": "12345"},
                           headers={IUS: str(created)})
        assert_empty(r, 412)
        assert hdr_ts(r) == other
        # All of the above left the BSO unchanged.
        r = await c.get("/storage/xxx_col2/12345")
        assert jl(r)["payload"] == PLD
        assert hdr_ts(r) == created
        # Equal to X-Last-Modified: allowed.
        r = await post(c, "xxx_col2", [bso], headers={IUS: str(other)})
        assert r.status_code == 200, r.text
        now = hdr_ts(r)
        r = await c.get("/storage/xxx_col2/12345", headers={IUS: str(now)})
        assert r.status_code == 200
        r = await c.delete("/storage/xxx_col2/12345", headers={IUS: str(now)})
        assert r.status_code == 200
        r = await put(c, "xxx_col2", "12345", bso, headers={IUS: "0"})
        assert r.status_code == 200, r.text
        now = hdr_ts(r)
        r = await c.get("/storage/xxx_col2", headers={IUS: str(now)})
        assert r.status_code == 200
        r = await c.delete("/storage/xxx_col2", params={"ids": "12345"}, headers={IUS: str(now)})
        assert r.status_code == 200


async def test_unmodified_since_zero_means_create_only(server):
    async with storage(server) as c:
        r = await put(c, "col", "new", {"payload": "first"}, headers={IUS: "0"})
        assert r.status_code == 200, r.text
        r = await put(c, "col", "new", {"payload": "second"}, headers={IUS: "0"})
        assert_empty(r, 412)
        assert (await c.get("/storage/col/new")).json()["payload"] == "first"
        # A missing collection has time 0 too.
        r = await post(c, "fresh", bsos(["a"]), headers={IUS: "0"})
        assert r.status_code == 200, r.text
        r = await post(c, "fresh", bsos(["b"]), headers={IUS: "0"})
        assert_empty(r, 412)
        assert await get_ids(c, "fresh") == ["a"]


async def test_expired_bso_still_counts_for_preconditions(server):
    async with storage(server) as c:
        t = await put_ok(c, "col", "gone", {"payload": "x", "ttl": 0})
        r = await put(c, "col", "gone", {"payload": "y"}, headers={IUS: "0"})
        assert_empty(r, 412)
        assert hdr_ts(r) == t


async def test_bso_preconditions_use_the_bso_time(server):
    async with storage(server) as c:
        t1 = await put_ok(c, "col", "a", {"payload": "x"})
        t2 = await put_ok(c, "col", "b", {"payload": "x"})
        assert t2 > t1
        r = await c.get("/storage/col/a", headers={IUS: str(t1)})
        assert r.status_code == 200
        r = await put(c, "col", "a", {"payload": "y"}, headers={IUS: str(t1)})
        assert r.status_code == 200, r.text
        r = await c.get("/storage/col/b", headers={IMS: str(t1)})
        assert r.status_code == 200
        r = await c.get("/storage/col/missing", headers={IMS: "0"})
        assert_empty(r, 304)
        assert r.headers["X-Last-Modified"] == "0.00"


async def test_missing_collection_is_time_zero(server):
    async with storage(server) as c:
        r = await c.get("/storage/nothing", headers={IMS: "0"})
        assert_empty(r, 304)
        assert r.headers["X-Last-Modified"] == "0.00"
        r = await c.get("/storage/nothing", headers={IUS: "0"})
        assert r.status_code == 200
        assert jl(r) == []


async def test_both_precondition_headers_are_400(server):
    async with storage(server) as c:
        t = await put_ok(c, "col", "a", {"payload": "x"})
        both = {IMS: str(t), IUS: str(t)}
        for r in (await c.get("/storage/col", headers=both),
                  await c.get("/storage/col/a", headers=both),
                  await put(c, "col", "a", {"payload": "y"}, headers=both),
                  await post(c, "col", bsos(["b"]), headers=both),
                  await c.delete("/storage/col/a", headers=both),
                  await c.get("/info/collections", headers=both)):
            assert_weave_error(r, 400, 0)
        assert (await c.get("/storage/col/a")).json()["payload"] == "x"


async def test_bad_precondition_values_are_400(server):
    async with storage(server) as c:
        await put_ok(c, "col", "a", {"payload": "x"})
        for value in ("-3", "-0.01", "abc", "NaN", "nan", "1.2.3", "12abc"):
            for name in (IMS, IUS):
                r = await c.get("/storage/xxx_col2", headers={name: value})
                assert_weave_error(r, 400, 0)
                r = await put(c, "col", "a", {"payload": "TEST"}, headers={name: value})
                assert_weave_error(r, 400, 0)
        assert (await c.get("/storage/col/a")).json()["payload"] == "x"


async def test_precondition_timestamps_floor_to_10ms(server):
    async with storage(server) as c:
        t = await put_ok(c, "col", "a", {"payload": "x"})
        # t + 9 ms floors to t: "not modified since t".
        r = await c.get("/storage/col/a", headers={IMS: f"{t}9"})
        assert_empty(r, 304)
        # t - 1 ms floors to t - 10 ms: the BSO is newer → 412.
        r = await c.get("/storage/col/a", headers={IUS: str(t - Decimal("0.001"))})
        assert_empty(r, 412)
        r = await put(c, "col", "a", {"payload": "y"}, headers={IUS: f"{t}9"})
        assert r.status_code == 200, r.text
        # Integer seconds are fine too.
        r = await c.get("/storage/col/a", headers={IMS: str(int(t) + 10)})
        assert_empty(r, 304)


async def test_if_modified_since_applies_to_writes_too(server):
    async with storage(server) as c:
        t = await put_ok(c, "col", "a", {"payload": "x"})
        r = await put(c, "col", "a", {"payload": "y"}, headers={IMS: str(t)})
        assert_empty(r, 304)
        r = await post(c, "col", [{"id": "a", "payload": "z"}], headers={IMS: str(t)})
        assert_empty(r, 304)
        r = await c.delete("/storage/col/a", headers={IMS: str(t)})
        assert_empty(r, 304)
        got = await get_full(c, "col")
        assert [(i["id"], i["payload"], i["modified"]) for i in got] == [("a", "x", t)]
        r = await put(c, "col", "a", {"payload": "y"}, headers={IMS: str(t - 1)})
        assert r.status_code == 200


async def test_if_modified_since_on_info_views(server):
    async with storage(server) as c:
        await post_ok(c, "xxx_col1", bsos(map(zid, range(3)), "xxx"))
        r = await c.get("/info/collections")
        ts1 = hdr_ts(r)
        assert ts1 > 0
        for view in INFO_VIEWS:
            r = await c.get(view, headers={IMS: str(ts1 - 1)})
            assert r.status_code == 200, view
            r = await c.get(view, headers={IMS: str(ts1)})
            assert_empty(r, 304)
            assert hdr_ts(r) == ts1
        ts2 = await put_ok(c, "xxx_col2", "TEST", {"payload": "TEST"})
        for view in INFO_VIEWS:
            assert (await c.get(view, headers={IMS: str(ts1)})).status_code == 200, view
            assert_empty(await c.get(view, headers={IMS: str(ts2)}), 304)
        # Deleting a collection still moves the storage timestamp (hidden tombstone).
        r = await c.delete("/storage/xxx_col2")
        assert r.status_code == 200
        ts3 = Decimal(r.text)
        assert ts3 > ts2
        for view in INFO_VIEWS:
            assert (await c.get(view, headers={IMS: str(ts2)})).status_code == 200, view
            r = await c.get(view, headers={IMS: str(ts3)})
            assert_empty(r, 304)
            assert hdr_ts(r) == ts3


async def test_storage_level_preconditions(server):
    async with storage(server) as c:
        t1 = await put_ok(c, "a", "1", {"payload": "x"})
        t2 = await put_ok(c, "b", "1", {"payload": "x"})
        r = await c.delete("/storage", headers={IUS: str(t1)})
        assert_empty(r, 412)
        assert hdr_ts(r) == t2
        assert set(jl(await c.get("/info/collections"))) == {"a", "b"}
        r = await c.delete("/storage", headers={IUS: str(t2)})
        assert r.status_code == 200
        assert r.text == "null"
        r = await Signer(server, 42).send("DELETE", "", headers={IUS: "0"})
        assert r.status_code == 200, r.text


async def test_x_last_modified_is_sent_for_all_get_requests(server):
    async with storage(server) as c:
        await post_ok(c, "xxx_col2", bsos(map(zid, range(5)), "xxx"))
        for path in ("/info/collections", "/info/collection_counts", "/info/collection_usage",
                     "/info/quota", "/storage/xxx_col2", "/storage/xxx_col2/01",
                     "/info/configuration"):
            r = await c.get(path)
            assert r.status_code == 200, path
            hdr_ts(r)
