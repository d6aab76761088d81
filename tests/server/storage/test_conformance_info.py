"""Conformance: /info/* views (spec §5.7, §8, §3 X-Weave-Records / X-Last-Modified)."""

from __future__ import annotations

import re
from decimal import Decimal

from server.settings import StorageLimits

from .conformance_helpers import (
    PLD,
    TS_RE,
    bsos,
    hdr_ts,
    jl,
    post_ok,
    put_ok,
    quota,
    raw_request,
    shared_server_fixture,
    storage,
    zid,
)

server = shared_server_fixture  # one live server per session, private uids per test

SEVEN = {"max_post_records", "max_post_bytes", "max_record_payload_bytes",
         "max_request_bytes", "max_total_records", "max_total_bytes", "max_quota_limit"}


def raw_values_two_decimals(text: str) -> None:
    for raw in re.findall(r':\s*([^,}\s]+)', text):
        assert TS_RE.match(raw), f"info/collections value {raw!r} lacks two decimals: {text}"


async def test_info_collections_lists_timestamps(server):
    async with storage(server) as c:
        ts1 = (await post_ok(c, "xxx_col1", bsos(map(zid, range(3)), "xxx")))["modified"]
        ts2 = (await post_ok(c, "xxx_col2", bsos(map(zid, range(5)), "xxx")))["modified"]
        r = await c.get("/info/collections")
        assert r.status_code == 200
        assert jl(r) == {"xxx_col1": ts1, "xxx_col2": ts2}
        raw_values_two_decimals(r.text)
        assert r.headers["X-Weave-Records"] == "2"
        assert hdr_ts(r) == ts2
        assert r.headers["content-type"].split(";")[0] == "application/json"

        ts3 = (await post_ok(c, "xxx_col2", bsos(map(zid, range(2)), "yyy")))["modified"]
        assert ts3 > ts2
        r = await c.get("/info/collections")
        assert jl(r) == {"xxx_col1": ts1, "xxx_col2": ts3}
        assert hdr_ts(r) == ts3


async def test_info_views_of_a_fresh_user(server):
    async with storage(server, 5555) as c:
        for view, empty in [("collections", {}), ("collection_counts", {}),
                            ("collection_usage", {})]:
            r = await c.get(f"/info/{view}")
            assert r.status_code == 200, (view, r.text)
            assert jl(r) == empty
            assert r.headers["X-Last-Modified"] == "0.00"
            assert r.headers["X-Weave-Records"] == "0"
        r = await c.get("/info/quota")
        assert r.status_code == 200
        assert r.json() == quota(server, 0)
        assert r.headers["X-Last-Modified"] == "0.00"


async def test_new_collection_shows_up(server):
    # test_bad_cache: a freshly created collection is visible at once.
    async with storage(server) as c:
        r = await c.get("/info/collections")
        before = len(jl(r))
        await put_ok(c, "xxxx", "125", {"payload": PLD})
        r = await c.get("/info/collections")
        assert len(jl(r)) == before + 1


async def test_collection_counts(server):
    async with storage(server) as c:
        await post_ok(c, "xxx_col1", bsos(map(zid, range(3)), "xxx"))
        await post_ok(c, "xxx_col2", bsos(map(zid, range(5)), "xxx"))
        r = await c.get("/info/collection_counts")
        assert r.status_code == 200
        assert r.text.replace(" ", "") in ('{"xxx_col1":3,"xxx_col2":5}',
                                           '{"xxx_col2":5,"xxx_col1":3}')
        assert r.headers["X-Weave-Records"] == "2"
        hdr_ts(r)


async def test_counts_omit_collections_without_live_bsos(server):
    async with storage(server) as c:
        await post_ok(c, "live", bsos(["a", "b"]))
        await post_ok(c, "emptied", bsos(["a", "b"]))
        r = await c.delete("/storage/emptied", params={"ids": "a,b"})
        assert r.status_code == 200
        await put_ok(c, "expired", "gone", {"payload": "x", "ttl": 0})
        r = await c.get("/info/collection_counts")
        assert jl(r) == {"live": 2}
        assert r.headers["X-Weave-Records"] == "1"
        # info/collections keeps them (regardless of live BSOs).
        r = await c.get("/info/collections")
        assert set(jl(r)) == {"live", "emptied", "expired"}


async def test_collection_usage_is_kilobytes(server):
    async with storage(server) as c:
        await post_ok(c, "xxx_col2", [{"id": "13", "payload": "XyX"},
                                      {"id": "14", "payload": PLD}])
        await post_ok(c, "other", [{"id": "1", "payload": "x" * 2048}])
        await put_ok(c, "other", "dead", {"payload": "y" * 999, "ttl": 0})
        r = await c.get("/info/collection_usage")
        assert r.status_code == 200
        usage = r.json()
        assert usage == {"xxx_col2": (3 + 500) / 1024.0, "other": 2.0}
        assert r.headers["X-Weave-Records"] == "2"


async def test_quota_delta_is_payload_length_over_1024(server):
    async with storage(server) as c:
        await put_ok(c, "a", "1", {"payload": "abc"})
        r = await c.get("/info/quota")
        assert r.status_code == 200
        used0, _ = r.json()
        assert r.json() == quota(server, 3)
        await put_ok(c, "xxx_col2", "12345", {"payload": PLD})
        used1 = (await c.get("/info/quota")).json()[0]
        assert used1 - used0 == len(PLD) / 1024.0
        # Overwriting replaces the size, expired rows do not count.
        await put_ok(c, "xxx_col2", "12345", {"payload": "z"})
        await put_ok(c, "xxx_col2", "dead", {"payload": "q" * 700, "ttl": 0})
        assert (await c.get("/info/quota")).json() == quota(server, 4)


async def test_info_views_report_storage_last_modified(server):
    async with storage(server) as c:
        t1 = await put_ok(c, "a", "1", {"payload": "x"})
        t2 = await put_ok(c, "b", "1", {"payload": "x"})
        assert t2 > t1
        for view in ("collections", "collection_counts", "collection_usage", "quota"):
            r = await c.get(f"/info/{view}")
            assert hdr_ts(r) == t2, view
            assert hdr_ts(r, "X-Weave-Timestamp") >= t2


async def test_delete_collection_leaves_info_collections_but_storage_time_advances(server):
    async with storage(server) as c:
        await post_ok(c, "keep", bsos(["a"]))
        t_gone = (await post_ok(c, "gone", bsos(["a"])))["modified"]
        r = await c.delete("/storage/gone")
        assert r.status_code == 200
        t_del = Decimal(r.text)
        assert t_del > t_gone
        r = await c.get("/info/collections")
        assert set(jl(r)) == {"keep"}
        assert hdr_ts(r) == t_del


async def test_info_configuration_lists_exactly_the_limits(server):
    r = await raw_request(server, "GET", "/1.5/1/info/configuration")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) - {"collections"} == SEVEN
    assert {k: body[k] for k in SEVEN} == server.settings.limits.as_json()
    assert {k: body[k] for k in SEVEN} == StorageLimits().as_json()
    assert r.headers["X-Last-Modified"] == "0.00"
    hdr_ts(r, "X-Weave-Timestamp")
    assert r.headers["content-type"].split(";")[0] == "application/json"
    # Signed requests get the same answer; preconditions do not apply to it.
    async with storage(server) as c:
        await put_ok(c, "a", "1", {"payload": "x"})
        r2 = await c.get("/info/configuration", headers={"X-If-Modified-Since": "9999999999"})
        assert r2.status_code == 200
        assert r2.json() == body
        assert r2.headers["X-Last-Modified"] == "0.00"


async def test_info_configuration_reflects_overrides(make_server):
    limits = StorageLimits(max_post_records=7, max_post_bytes=7000,
                           max_record_payload_bytes=6000, max_request_bytes=9000,
                           max_total_records=70, max_total_bytes=70000,
                           max_quota_limit=123456)
    srv = await make_server(limits=limits)
    async with storage(srv) as c:
        r = await c.get("/info/configuration")
        assert r.status_code == 200
        body = r.json()
        assert {k: body[k] for k in SEVEN} == limits.as_json()
