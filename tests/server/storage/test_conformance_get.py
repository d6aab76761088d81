"""Conformance: GET /storage/{coll} and /storage/{coll}/{id} (spec §5.1, §5.2, §0, §3)."""

from __future__ import annotations

import json
import random
import string
from decimal import Decimal

from server.settings import StorageLimits

from .conformance_helpers import (
    PLD,
    assert_modified_two_decimals,
    assert_weave_error,
    bsos,
    get_full,
    get_ids,
    hdr_ts,
    jl,
    post_ok,
    put_ok,
    shared_server_fixture,
    storage,
    to_ms,
    zid,
)

server = shared_server_fixture  # one live server per session, private uids per test


def randtext(n: int = 10) -> str:
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(n))


async def make_three_stamps(c, coll="xxx_col2"):
    """12 BSOs "00".."11" written by three POSTs of four: three shared timestamps."""
    stamps = []
    for k in range(3):
        res = await post_ok(c, coll, bsos(map(zid, range(4 * k, 4 * k + 4))))
        stamps.append(res["modified"])
    assert stamps[0] < stamps[1] < stamps[2]
    return stamps


async def page_through(c, coll, params, limit):
    """Follow X-Weave-Next-Offset verbatim; returns (items, page sizes)."""
    items, sizes, offset = [], [], None
    for _ in range(50):
        q = dict(params, limit=str(limit))
        if offset is not None:
            q["offset"] = offset
        r = await c.get(f"/storage/{coll}", params=q)
        assert r.status_code == 200, (q, r.text)
        page = jl(r)
        assert r.headers["X-Weave-Records"] == str(len(page))
        items.extend(page)
        sizes.append(len(page))
        offset = r.headers.get("X-Weave-Next-Offset")
        if offset is None:
            return items, sizes
        assert len(page) == limit, (q, page, offset)
    raise AssertionError("pagination did not terminate")


def oldest_key(item):
    return (item["modified"], item["id"])


# ----------------------------------------------------------------------------- basics


async def test_meta_global_sanity(server):
    async with storage(server) as c:
        r = await c.get("/storage/meta/global")
        assert_weave_error(r, 404, 0)
        r = await c.get("/storage/meta")
        assert r.status_code == 200
        assert jl(r) == []
        assert r.headers["X-Last-Modified"] == "0.00"
        put_ts = await put_ok(c, "meta", "global", {"payload": "blob"})
        assert await get_ids(c, "meta") == ["global"]
        r = await c.get("/storage/meta/global")
        assert r.status_code == 200
        assert sorted(jl(r)) == ["id", "modified", "payload"]
        assert jl(r)["payload"] == "blob"
        assert jl(r)["modified"] == put_ts
        assert_modified_two_decimals(r.text, 1)
        # A client-supplied "modified" is ignored; the stored one is the write time.
        r = await c.put("/storage/meta/global", json={"payload": "blob", "modified": 12})
        assert r.status_code == 200
        wts = hdr_ts(r, "X-Weave-Timestamp")
        r = await c.get("/storage/meta/global")
        assert jl(r)["modified"] == wts


async def test_missing_collection_is_empty_list(server):
    async with storage(server) as c:
        await post_ok(c, "other", bsos(["a"]))
        for params in ({}, {"full": "1"}, {"ids": "a,b"}, {"sort": "index"}):
            r = await c.get("/storage/nonexistent", params=params)
            assert r.status_code == 200
            assert jl(r) == []
            assert r.headers["X-Last-Modified"] == "0.00"
            assert r.headers["X-Weave-Records"] == "0"
            assert "X-Weave-Next-Offset" not in r.headers


async def test_get_collection_ids_and_filters(server):
    async with storage(server) as c:
        await post_ok(c, "xxx_col2", bsos(map(zid, range(5)), "xxx"))
        r = await c.get("/storage/xxx_col2")
        assert sorted(jl(r)) == ["00", "01", "02", "03", "04"]
        assert r.headers["X-Weave-Records"] == "5"
        assert r.headers["content-type"].split(";")[0] == "application/json"
        assert sorted(await get_ids(c, "xxx_col2", ids="01,03,17")) == ["01", "03"]


async def test_newer_and_older_are_strict(server):
    async with storage(server) as c:
        ts1 = await put_ok(c, "xxx_col2", "128", {"payload": "x"})
        ts2 = await put_ok(c, "xxx_col2", "129", {"payload": "x"})
        assert ts1 < ts2
        assert await get_ids(c, "xxx_col2", newer=str(ts1)) == ["129"]
        assert await get_ids(c, "xxx_col2", newer=str(ts2)) == []
        assert sorted(await get_ids(c, "xxx_col2", newer=str(ts1 - 1))) == ["128", "129"]
        assert await get_ids(c, "xxx_col2", older=str(ts1)) == []
        assert await get_ids(c, "xxx_col2", older=str(ts2)) == ["128"]
        assert sorted(await get_ids(c, "xxx_col2", older=str(ts2 + 1))) == ["128", "129"]
        assert await get_ids(c, "xxx_col2", older=str(ts2 + 1), newer=str(ts1)) == ["129"]
        assert await get_ids(c, "xxx_col2", newer="0") != []
        assert await get_ids(c, "xxx_col2", newer=str(ts2 + 1000)) == []
        # Timestamps parse as decimal strings, floored to 10 ms.
        assert await get_ids(c, "xxx_col2", newer=f"{ts1}9") == ["129"]
        whole = Decimal(int(ts1))
        expected = ["128", "129"] if whole < ts1 else ["129"]
        assert sorted(await get_ids(c, "xxx_col2", newer=str(int(ts1)))) == expected


async def test_strict_newer_and_older_with_shared_timestamps(server):
    async with storage(server) as c:
        first = await post_ok(c, "xxx_meh", bsos(["01", "02"], PLD))
        second = await post_ok(c, "xxx_meh", bsos(["03", "04"], PLD))
        assert sorted(await get_ids(c, "xxx_meh", newer=str(first["modified"]))) == ["03", "04"]
        assert sorted(await get_ids(c, "xxx_meh", older=str(second["modified"]))) == ["01",
                                                                                      "02"]


async def test_full_is_true_whenever_present(server):
    async with storage(server) as c:
        await post_ok(c, "col", [{"id": "a", "payload": "p"}])
        for value in ("1", "true", "", "0", "false", "no"):
            r = await c.get("/storage/col", params={"full": value})
            assert r.status_code == 200
            items = jl(r)
            assert len(items) == 1 and isinstance(items[0], dict), (value, items)
            assert sorted(items[0]) == ["id", "modified", "payload"]
        r = await c.get("/storage/col")
        assert jl(r) == ["a"]


async def test_full_objects_fields_and_sortindex_only_when_set(server):
    async with storage(server) as c:
        await post_ok(c, "xxx_col1", [{"id": "one", "payload": "blob"},
                                      {"id": "idx", "payload": "b", "sortindex": 0},
                                      {"id": "ttl", "payload": "t", "ttl": 1000}])
        await put_ok(c, "xxx_col1", "two", {"payload": "blub", "ttl": 50})
        items = {i["id"]: i for i in await get_full(c, "xxx_col1")}
        assert sorted(items) == ["idx", "one", "ttl", "two"]
        for bid, item in items.items():
            expected = ["id", "modified", "payload"] + (["sortindex"] if bid == "idx" else [])
            assert sorted(item) == sorted(expected), item
        assert items["idx"]["sortindex"] == 0
        for bid in items:
            r = await c.get(f"/storage/xxx_col1/{bid}")
            assert r.status_code == 200
            body = jl(r)
            for forbidden in ("ttl", "expiry", "payload_size", "collection"):
                assert forbidden not in body
            assert body == items[bid]


async def test_get_item(server):
    async with storage(server) as c:
        await post_ok(c, "xxx_col2", bsos(map(zid, range(5)), "xxx"))
        r = await c.get("/storage/xxx_col2/01")
        assert r.status_code == 200
        body = jl(r)
        assert sorted(body) == ["id", "modified", "payload"]
        assert body["id"] == "01" and body["payload"] == "xxx"
        assert hdr_ts(r) == body["modified"]
        assert_modified_two_decimals(r.text, 1)
        r = await c.get("/storage/xxx_col2/99")
        assert_weave_error(r, 404, 0)
        r = await c.get("/storage/nonexistent/99")
        assert_weave_error(r, 404, 0)


async def test_item_x_last_modified_is_the_bso_time(server):
    async with storage(server) as c:
        t1 = await put_ok(c, "col", "a", {"payload": "x"})
        t2 = await put_ok(c, "col", "b", {"payload": "x"})
        r = await c.get("/storage/col/a")
        assert hdr_ts(r) == t1
        r = await c.get("/storage/col")
        assert hdr_ts(r) == t2
        r = await c.get("/info/collections")
        assert hdr_ts(r) == t2


async def test_timestamp_numbers_are_two_decimals(server):
    async with storage(server) as c:
        for i in range(5):
            await post_ok(c, "xxx_col2", [{"id": zid(i), "payload": "xxx"}])
        r = await c.get("/storage/xxx_col2", params={"full": "1"})
        stamps = sorted(assert_modified_two_decimals(r.text, 5))
        assert len(set(stamps)) == 5
        for s in stamps:
            assert to_ms(s) % 10 == 0
        assert sorted(await get_ids(c, "xxx_col2", newer=str(stamps[-3]))) == ["03", "04"]


async def test_expired_bsos_are_never_returned(server):
    async with storage(server) as c:
        await put_ok(c, "col", "live", {"payload": "x"})
        await put_ok(c, "col", "dead", {"payload": "x", "ttl": 0})
        assert_weave_error(await c.get("/storage/col/dead"), 404, 0)
        assert await get_ids(c, "col") == ["live"]
        assert await get_ids(c, "col", ids="dead,live") == ["live"]
        assert [i["id"] for i in await get_full(c, "col", sort="index")] == ["live"]


# ----------------------------------------------------------------------------- sorting


async def test_sort_orders(server):
    async with storage(server) as c:
        for bid, sortindex in (("00", -1), ("01", 34), ("02", 12)):
            await post_ok(c, "xxx_col2", [{"id": bid, "payload": "x", "sortindex": sortindex}])
        assert await get_ids(c, "xxx_col2", sort="newest") == ["02", "01", "00"]
        assert await get_ids(c, "xxx_col2", sort="oldest") == ["00", "01", "02"]
        assert await get_ids(c, "xxx_col2", sort="index") == ["01", "02", "00"]
        full = await get_full(c, "xxx_col2", sort="index")
        assert [i["sortindex"] for i in full] == [34, 12, -1]
        # No sort: full results come newest first.
        assert [i["id"] for i in await get_full(c, "xxx_col2")] == ["02", "01", "00"]


async def test_sort_ties_broken_by_id(server):
    async with storage(server) as c:
        await post_ok(c, "col", bsos(["b", "d", "a", "c"]))
        await post_ok(c, "col", bsos(["f", "e"]))
        assert await get_ids(c, "col", sort="newest") == ["f", "e", "d", "c", "b", "a"]
        assert await get_ids(c, "col", sort="oldest") == ["a", "b", "c", "d", "e", "f"]
        full = await get_full(c, "col", sort="oldest")
        assert [i["id"] for i in full] == ["a", "b", "c", "d", "e", "f"]
        full = await get_full(c, "col", sort="newest")
        assert [i["id"] for i in full] == ["f", "e", "d", "c", "b", "a"]


# ----------------------------------------------------------------------------- paging


async def test_limit_and_offset_every_sort(server):
    async with storage(server) as c:
        await post_ok(c, "xxx_col2", [{"id": zid(i), "payload": "x", "sortindex": i}
                                      for i in range(10)])
        for sort in ("index", "newest", "oldest", None):
            for full in (False, True):
                params = {} if sort is None else {"sort": sort}
                if full:
                    params["full"] = "1"
                r = await c.get("/storage/xxx_col2", params=params)
                all_items = jl(r)
                assert len(all_items) == 10
                assert "X-Weave-Next-Offset" not in r.headers

                r = await c.get("/storage/xxx_col2", params={**params, "limit": "2"})
                assert jl(r) == all_items[:2]
                off = r.headers["X-Weave-Next-Offset"]
                if sort == "index" or not full:
                    assert off == "2", (sort, full, off)
                r = await c.get("/storage/xxx_col2",
                                params={**params, "limit": "3", "offset": off})
                assert jl(r) == all_items[2:5], (sort, full)
                off = r.headers["X-Weave-Next-Offset"]
                if sort == "index" or not full:
                    assert off == "5", (sort, full, off)
                r = await c.get("/storage/xxx_col2", params={**params, "offset": off})
                assert jl(r) == all_items[5:], (sort, full)
                assert "X-Weave-Next-Offset" not in r.headers
                r = await c.get("/storage/xxx_col2",
                                params={**params, "limit": "10000", "offset": off})
                assert jl(r) == all_items[5:]
                assert "X-Weave-Next-Offset" not in r.headers
        assert await get_ids(c, "xxx_col2", sort="index") == [zid(i) for i in range(9, -1, -1)]


async def test_no_next_offset_when_page_exactly_fits(server):
    async with storage(server) as c:
        await post_ok(c, "col", bsos(map(zid, range(4))))
        for params in ({}, {"full": "1"}, {"sort": "index"}, {"sort": "oldest", "full": "1"}):
            r = await c.get("/storage/col", params={**params, "limit": "4"})
            assert len(jl(r)) == 4
            assert "X-Weave-Next-Offset" not in r.headers, params
            r = await c.get("/storage/col", params={**params, "limit": "3"})
            assert len(jl(r)) == 3
            assert "X-Weave-Next-Offset" in r.headers, params


async def test_offset_past_the_end(server):
    async with storage(server) as c:
        await post_ok(c, "col", bsos(map(zid, range(3))))
        r = await c.get("/storage/col", params={"offset": "10", "limit": "2"})
        assert r.status_code == 200
        assert jl(r) == []
        assert "X-Weave-Next-Offset" not in r.headers


async def test_limit_zero(server):
    async with storage(server) as c:
        await post_ok(c, "col", bsos(map(zid, range(3))))
        r = await c.get("/storage/col", params={"limit": "0", "full": "1"})
        assert r.status_code == 200
        assert jl(r) == []
        assert r.headers.get("X-Weave-Next-Offset") == "0"


async def test_pagination_with_newer_and_sort_by_oldest(server):
    async with storage(server) as c:
        stamps = await make_three_stamps(c)
        every = await get_full(c, "xxx_col2", sort="oldest")
        assert every == sorted(every, key=oldest_key)
        for limit in (2, 3, 4, 5, 6):
            for k, stamp in enumerate(stamps):
                params = {"full": "true", "sort": "oldest", "newer": str(stamp)}
                items, sizes = await page_through(c, "xxx_col2", params, limit)
                expected = [i for i in every if i["modified"] > stamp]
                assert [i["id"] for i in items] == [i["id"] for i in expected], (limit, k)
                assert sorted(int(i["id"]) for i in items) == list(range(4 * k + 4, 12))
                assert items == expected
                if expected:
                    assert sizes[-1] > 0


async def test_pagination_with_older_and_sort_by_newest(server):
    async with storage(server) as c:
        stamps = await make_three_stamps(c)
        every = await get_full(c, "xxx_col2", sort="newest")
        assert every == sorted(every, key=oldest_key, reverse=True)
        for limit in (2, 3, 4, 5, 6):
            for k, stamp in enumerate(stamps):
                params = {"full": "true", "sort": "newest", "older": str(stamp)}
                items, sizes = await page_through(c, "xxx_col2", params, limit)
                expected = [i for i in every if i["modified"] < stamp]
                assert items == expected, (limit, k)
                assert sorted(int(i["id"]) for i in items) == list(range(0, 4 * k))
                if expected:
                    assert sizes[-1] > 0


async def test_pagination_without_filters_every_mode(server):
    async with storage(server) as c:
        await make_three_stamps(c, "col")
        for sort in ("newest", "oldest", None, "index"):
            for full in (True, False):
                params = {} if sort is None else {"sort": sort}
                if full:
                    params["full"] = "1"
                r = await c.get("/storage/col", params=params)
                every = jl(r)
                for limit in (2, 3, 4, 5, 6, 12, 13):
                    items, sizes = await page_through(c, "col", params, limit)
                    assert items == every, (sort, full, limit)
                    assert len(sizes) == -(-12 // limit), (sort, full, limit, sizes)


async def test_timestamp_offset_outside_newer_older_window_rejected(server):
    async with storage(server) as c:
        stamps = await make_three_stamps(c)
        newer_ms = to_ms(stamps[1])
        bad = f"{newer_ms - 10}:0"
        r = await c.get("/storage/xxx_col2", params={"full": "1", "sort": "newest",
                                                      "newer": str(stamps[1]), "offset": bad})
        assert_weave_error(r, 400, 0)
        older_ms = to_ms(stamps[1])
        bad = f"{older_ms + 10}:0"
        r = await c.get("/storage/xxx_col2", params={"full": "1", "sort": "oldest",
                                                      "older": str(stamps[1]), "offset": bad})
        assert_weave_error(r, 400, 0)
        # A well-formed TS:N offset inside the window is accepted.
        ok = f"{to_ms(stamps[2])}:0"
        r = await c.get("/storage/xxx_col2", params={"full": "1", "sort": "newest",
                                                      "newer": str(stamps[0]), "offset": ok})
        assert r.status_code == 200, r.text


async def test_default_limit_is_max_total_records(make_server):
    srv = await make_server(limits=StorageLimits(max_total_records=3))
    async with storage(srv) as c:
        await post_ok(c, "col", bsos(map(zid, range(5))))
        for params in ({}, {"full": "1"}):
            r = await c.get("/storage/col", params={**params, "sort": "oldest"})
            assert r.status_code == 200
            page = jl(r)
            assert len(page) == 3
            off = r.headers["X-Weave-Next-Offset"]
            r = await c.get("/storage/col", params={**params, "sort": "oldest", "offset": off})
            rest = jl(r)
            ids = [x if isinstance(x, str) else x["id"] for x in page + rest]
            assert ids == [zid(i) for i in range(5)]
            assert "X-Weave-Next-Offset" not in r.headers


# ----------------------------------------------------------------------------- bad args


async def test_weird_args(server):
    async with storage(server) as c:
        await post_ok(c, "xxx_col2", bsos(map(zid, range(10)), PLD))
        for arg in ("newer", "older", "limit"):
            r = await c.get("/storage/xxx_col2", params={arg: randtext()})
            assert_weave_error(r, 400, 0)
        ids = ",".join(randtext(10) for _ in range(100))
        assert await get_ids(c, "xxx_col2", ids=ids) == []
        r = await c.get("/storage/xxx_col2", params={"blabla": "1"})
        assert r.status_code == 200
        assert len(jl(r)) == 10


async def test_bad_query_parameters_are_400(server):
    async with storage(server) as c:
        await post_ok(c, "col", bsos(["a", "b"]))
        bad = [
            {"newer": "abc"}, {"newer": "-1"}, {"newer": "nan"}, {"newer": "NaN"},
            {"older": "xyz"}, {"older": "-5"},
            {"limit": "-1"}, {"limit": "1.5"}, {"limit": "ten"}, {"limit": ""},
            {"offset": "abc"}, {"offset": "-1"}, {"offset": "1:x"}, {"offset": "x:1"},
            {"offset": "1.5"},
            {"sort": "random"}, {"sort": "NEWEST"}, {"sort": ""},
            {"ids": "a\tb"}, {"ids": "X" * 65}, {"ids": "caf\u00e9"}, {"ids": "ok,b\x7fad"},
        ]
        for params in bad:
            r = await c.get("/storage/col", params=params)
            assert_weave_error(r, 400, 0)
            hdr_ts(r, "X-Weave-Timestamp")


async def test_ids_limited_to_100(server):
    async with storage(server) as c:
        await put_ok(c, "xxx_col2", "01", {"payload": "testing"})
        ids = ",".join(zid(i) for i in range(99))
        assert await get_ids(c, "xxx_col2", ids=ids) == ["01"]
        ids = ",".join(zid(i) for i in range(100))
        assert await get_ids(c, "xxx_col2", ids=ids) == ["01"]
        ids = ",".join(zid(i) for i in range(101))
        r = await c.get("/storage/xxx_col2", params={"ids": ids})
        assert_weave_error(r, 400, 0)


async def test_ids_are_trimmed_and_empties_dropped(server):
    async with storage(server) as c:
        await post_ok(c, "col", bsos(["01", "02", "03"]))
        assert sorted(await get_ids(c, "col", ids=" 01 , 03 ")) == ["01", "03"]
        assert sorted(await get_ids(c, "col", ids="01,,03,")) == ["01", "03"]
        # 100 real ids plus empties is still within the limit.
        ids = ",".join(zid(i) for i in range(100)) + ",,,"
        assert sorted(await get_ids(c, "col", ids=ids)) == ["01", "02", "03"]


async def test_ids_with_spaces_and_punctuation(server):
    async with storage(server) as c:
        weird = ["a b", "x.y~z", "{guid}", "ends-", "!#$&'()*+;=@"]
        res = await post_ok(c, "col", bsos(weird))
        assert sorted(res["success"]) == sorted(weird)
        got = await get_ids(c, "col", ids="a b,{guid}")
        assert sorted(got) == ["a b", "{guid}"]


# ----------------------------------------------------------------------------- formats


async def test_alternative_formats(server):
    async with storage(server) as c:
        await post_ok(c, "xxx_col2", bsos(map(zid, range(5)), "xxx"))
        for accept in (None, "application/json", "*/*"):
            headers = {} if accept is None else {"Accept": accept}
            r = await c.get("/storage/xxx_col2", headers=headers)
            assert r.status_code == 200, accept
            assert r.headers["content-type"].split(";")[0] == "application/json"
            assert sorted(json.loads(r.text)) == ["00", "01", "02", "03", "04"]
        r = await c.get("/storage/xxx_col2", headers={"Accept": "application/newlines"})
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/newlines"
        assert r.text.endswith("\n")
        lines = r.text.split("\n")
        assert lines[-1] == ""
        assert sorted(json.loads(line) for line in lines[:-1]) == ["00", "01", "02", "03",
                                                                   "04"]
        assert r.headers["X-Weave-Records"] == "5"
        for accept in ("x/yy", "text/plain", "application/xml"):
            r = await c.get("/storage/xxx_col2", headers={"Accept": accept})
            assert_weave_error(r, 406, 0)


async def test_newlines_output_with_embedded_newlines(server):
    async with storage(server) as c:
        items = [{"id": "01", "payload": "hello\nworld"},
                 {"id": "02", "payload": "\nmarco\npolo\n"}]
        body = "\n".join(json.dumps(i) for i in items)
        r = await c.post("/storage/xxx_col2", content=body.encode(),
                         headers={"Content-Type": "application/newlines"})
        assert r.status_code == 200, r.text
        assert sorted(jl(r)["success"]) == ["01", "02"]
        got = sorted(await get_full(c, "xxx_col2"), key=lambda i: i["id"])
        assert [i["payload"] for i in got] == [items[0]["payload"], items[1]["payload"]]
        r = await c.get("/storage/xxx_col2", params={"full": "1", "sort": "oldest"},
                        headers={"Accept": "application/newlines"})
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/newlines"
        lines = r.text.split("\n")
        assert len(lines) == 3 and lines[-1] == ""
        parsed = [json.loads(line, parse_float=Decimal) for line in lines[:2]]
        assert [p["id"] for p in parsed] == ["01", "02"]
        assert [p["payload"] for p in parsed] == [items[0]["payload"], items[1]["payload"]]
        assert_modified_two_decimals(r.text, 2)


async def test_newlines_output_of_empty_collection(server):
    async with storage(server) as c:
        r = await c.get("/storage/nothing", headers={"Accept": "application/newlines"})
        assert r.status_code == 200
        assert r.text == ""
        assert r.headers["X-Weave-Records"] == "0"


async def test_bso_ids_of_every_printable_character_roundtrip(server):
    async with storage(server) as c:
        printable = "".join(chr(x) for x in range(0x20, 0x7F))
        ids = [printable[i:i + 16] for i in range(0, len(printable), 16)]
        res = await post_ok(c, "col", bsos(ids))
        assert sorted(res["success"]) == sorted(ids)
        full = await get_full(c, "col")
        assert sorted(i["id"] for i in full) == sorted(ids)
        for bid in ids:
            if not set(bid) & set("/?#%\\"):
                r = await c.get("/storage/col/" + bid.replace(" ", "%20"))
                assert r.status_code == 200, (bid, r.status_code)


async def test_timestamp_offset_semantics(server):
    # §5.1: "TS:N" means newest/none → modified <= TS, oldest → modified >= TS, then skip N.
    async with storage(server) as c:
        stamps = await make_three_stamps(c)
        mid = to_ms(stamps[1])
        r = await c.get("/storage/xxx_col2", params={"full": "1", "sort": "newest",
                                                      "offset": f"{mid}:2"})
        assert r.status_code == 200, r.text
        assert [i["id"] for i in jl(r)] == ["05", "04", "03", "02", "01", "00"]
        r = await c.get("/storage/xxx_col2", params={"full": "1", "offset": f"{mid}:0"})
        assert [i["id"] for i in jl(r)] == ["07", "06", "05", "04", "03", "02", "01", "00"]
        r = await c.get("/storage/xxx_col2", params={"full": "1", "sort": "oldest",
                                                      "offset": f"{mid}:1", "limit": "3"})
        assert [i["id"] for i in jl(r)] == ["05", "06", "07"]
        assert "X-Weave-Next-Offset" in r.headers
        # Plain numeric offsets are accepted in every mode.
        r = await c.get("/storage/xxx_col2", params={"full": "1", "sort": "oldest",
                                                      "offset": "10"})
        assert [i["id"] for i in jl(r)] == ["10", "11"]
