"""Conformance: POST /storage/{coll} without batches (spec §6.1, §6.2, §7, §8)."""

from __future__ import annotations

import json

from server.settings import StorageLimits

from .conformance_helpers import (
    PLD,
    assert_modified_two_decimals,
    assert_weave_error,
    bsos,
    by_id,
    get_ids,
    hdr_ts,
    jl,
    post,
    post_ok,
    put_ok,
    shared_server_fixture,
    storage,
    zid,
)

server = shared_server_fixture  # one live server per session, private uids per test

SMALL = StorageLimits(max_post_records=5, max_post_bytes=100, max_record_payload_bytes=60,
                      max_request_bytes=5000, max_total_records=8, max_total_bytes=300)


async def post_raw(c, coll, text, ctype="application/json", params=None):
    return await c.post(f"/storage/{coll}", content=text.encode(), params=params,
                        headers={"Content-Type": ctype})


async def test_set_collection(server):
    async with storage(server) as c:
        await post_ok(c, "xxx_col2", [{"id": "12", "payload": PLD}, {"id": "13", "payload": PLD}])
        items = await by_id(c, "xxx_col2")
        assert items["12"]["payload"] == PLD and items["13"]["payload"] == PLD
        await post_ok(c, "xxx_col2", [{"id": "13", "payload": "XyX"},
                                      {"id": "14", "payload": PLD}])
        items = await by_id(c, "xxx_col2")
        assert items["13"]["payload"] == "XyX" and items["14"]["payload"] == PLD
        res = await post_ok(c, "xxx_col2", [{"id": "one", "payload": PLD},
                                            {"id": "two", "payload": PLD, "sortindex": "FAIL"}])
        assert res["success"] == ["one"]
        assert list(res["failed"]) == ["two"]
        assert_weave_error(await c.get("/storage/xxx_col2/two"), 404, 0)


async def test_post_response_shape_and_timestamps(server):
    async with storage(server) as c:
        r = await post(c, "col", bsos(["a", "b", "c"]))
        assert r.status_code == 200
        assert r.headers["content-type"].split(";")[0] == "application/json"
        body = jl(r)
        assert sorted(body) == ["failed", "modified", "success"]
        assert sorted(body["success"]) == ["a", "b", "c"]
        assert body["failed"] == {}
        assert_modified_two_decimals(r.text, 1)
        t = body["modified"]
        assert hdr_ts(r) == t
        assert hdr_ts(r, "X-Weave-Timestamp") == t
        items = await by_id(c, "col")
        assert {i["modified"] for i in items.values()} == {t}
        assert jl(await c.get("/info/collections")) == {"col": t}


async def test_empty_post_still_bumps_the_collection(server):
    async with storage(server) as c:
        t1 = await put_ok(c, "col", "a", {"payload": "x"})
        body = await post_ok(c, "col", [])
        assert body["success"] == [] and body["failed"] == {}
        assert body["modified"] > t1
        assert jl(await c.get("/info/collections")) == {"col": body["modified"]}
        # Also when every item failed.
        body2 = await post_ok(c, "col", [{"id": "bad\n", "payload": "x"}])
        assert body2["success"] == []
        assert body2["modified"] > body["modified"]
        assert jl(await c.get("/info/collections")) == {"col": body2["modified"]}


async def test_post_input_formats(server):
    async with storage(server) as c:
        items = [{"id": "12", "payload": PLD}, {"id": "13", "payload": PLD}]
        r = await post_raw(c, "xxx_col2", "\n".join(json.dumps(i) for i in items),
                           "application/newlines")
        assert r.status_code == 200, r.text
        assert len(await get_ids(c, "xxx_col2")) == 2
        assert (await c.delete("/storage/xxx_col2")).status_code == 200
        for ctype in ("application/octet-stream", "application/xml", None):
            headers = {} if ctype is None else {"Content-Type": ctype}
            r = await c.post("/storage/xxx_col2", content=json.dumps(items).encode(),
                             headers=headers)
            assert_weave_error(r, 415, 0)
        assert await get_ids(c, "xxx_col2") == []
        for ctype in ("text/plain", "application/json; charset=utf-8",
                      "application/newlines; charset=utf-8"):
            text = json.dumps(items) if "newlines" not in ctype else \
                "\n".join(json.dumps(i) for i in items)
            r = await post_raw(c, "fmt", text, ctype)
            assert r.status_code == 200, (ctype, r.text)
            assert sorted(jl(r)["success"]) == ["12", "13"]


async def test_newlines_body_parsing(server):
    async with storage(server) as c:
        crlf = '{"id": "a", "payload": "1"}\r\n{"id": "b", "payload": "2"}\r\n'
        r = await post_raw(c, "nl", crlf, "application/newlines")
        assert r.status_code == 200, r.text
        assert sorted(jl(r)["success"]) == ["a", "b"]
        r = await post_raw(c, "nl", '{"id": "c", "payload": "3"}', "application/newlines")
        assert jl(r)["success"] == ["c"]
        r = await post_raw(c, "nl", "", "application/newlines")
        assert r.status_code == 200
        assert jl(r)["success"] == [] and jl(r)["failed"] == {}
        for bad in ("\n", '{"id": "d", "payload": "4"}\n\n', "not json\n",
                    '{"id": "e"}\n[1, 2]\n', "[]", "{}", '"str"', "\n{\"id\": \"f\"}"):
            r = await post_raw(c, "nl", bad, "application/newlines")
            assert_weave_error(r, 400, 8)
        assert sorted(await get_ids(c, "nl")) == ["a", "b", "c"]


async def test_body_must_be_a_list(server):
    async with storage(server) as c:
        for text in ('"notalist"', "42", "{}", '{"id": "a", "payload": "x"}', "", "null",
                     "[", "true"):
            r = await post_raw(c, "xxx_col2", text)
            assert_weave_error(r, 400, 8)
        assert jl(await c.get("/info/collections")) == {}


async def test_whole_request_failures(server):
    async with storage(server) as c:
        cases = [
            [{"id": "01", "payload": "GOOD"}, "BAD"],
            [{"id": "01", "payload": "GOOD"}, 42],
            [{"id": "01", "payload": "GOOD"}, None],
            [{"id": "01", "payload": "GOOD"}, [{"id": "x"}]],
            [{"id": "01", "payload": "GOOD"}, {"payload": "no id"}],
            [{"id": "01", "payload": "GOOD"}, {"id": 5, "payload": "numeric id"}],
            [{"id": "01", "payload": "GOOD"}, {"id": None, "payload": "null id"}],
            [{"id": "01", "payload": "A"}, {"id": "02", "payload": "B"},
             {"id": "01", "payload": "C"}],
        ]
        for items in cases:
            r = await post(c, "xxx_col2", items)
            assert_weave_error(r, 400, 8)
        assert await get_ids(c, "xxx_col2") == []
        assert jl(await c.get("/info/collections")) == {}


async def test_unknown_field_fails_only_that_item(server):
    async with storage(server) as c:
        res = await post_ok(c, "xxx_col2", [{"id": "01", "payload": "GOOD"},
                                            {"id": "02", "invalid": "ya"}])
        assert res["success"] == ["01"]
        assert res["failed"] == {"02": "unknown field invalid"}
        assert await get_ids(c, "xxx_col2") == ["01"]


async def test_invalid_bso_fields_in_post(server):
    async with storage(server) as c:
        bad_items = [
            {"id": "A\nB", "payload": "testing"},
            {"id": "A\n", "payload": "testing"},
            {"id": "\nN", "payload": "testing"},
            {"id": "A\tB", "payload": "testing"},
            {"id": "caf\u00e9", "payload": "testing"},
            {"id": "", "payload": "testing"},
            {"id": "X" * 65, "payload": "testing"},
            {"id": "TEST", "payload": "testing", "sortindex": "xxx_meh"},
            {"id": "TEST", "payload": "testing", "sortindex": "2.6"},
            {"id": "TEST", "payload": "testing", "sortindex": "1" + "0" * 9},
            {"id": "TEST", "payload": "testing", "sortindex": 1_000_000_000},
            {"id": "TEST", "payload": "testing", "sortindex": 1.5},
            {"id": "TEST", "payload": "testing", "sortindex": False},
            {"id": "TEST", "payload": 42},
            {"id": "TEST", "payload": "testing", "ttl": "eh?"},
            {"id": "TEST", "payload": "testing", "ttl": "4.2"},
            {"id": "TEST", "payload": "testing", "ttl": -12},
            {"id": "TEST", "payload": "testing", "ttl": 1_000_000_000},
            {"id": "TEST", "payload": "testing", "ttl": 4.2},
        ]
        for item in bad_items:
            res = await post_ok(c, "xxx_col2", [item])
            assert res["success"] == [], item
            assert list(res["failed"]) == [item["id"]], item
            reason = res["failed"][item["id"]]
            assert isinstance(reason, str) and reason.startswith("invalid"), (item, reason)
        # §6.1 step 4: a value of the right JSON type breaking a rule → "invalid bso: …";
        # a value of the wrong JSON type → "invalid json".
        rule_broken = [{"id": "A\nB", "payload": "x"}, {"id": "", "payload": "x"},
                       {"id": "X" * 65, "payload": "x"}, {"id": "s", "sortindex": 1_000_000_000},
                       {"id": "t", "ttl": 1_000_000_000}]
        wrong_type = [{"id": "p", "payload": 42}, {"id": "q", "sortindex": "xxx_meh"},
                      {"id": "r", "sortindex": 1.5}, {"id": "u", "ttl": "eh?"},
                      {"id": "v", "payload": ["x"]}]
        res = await post_ok(c, "xxx_col2", rule_broken + wrong_type)
        assert res["success"] == []
        for item in rule_broken:
            assert res["failed"][item["id"]].startswith("invalid bso"), (item, res["failed"])
        for item in wrong_type:
            assert res["failed"][item["id"]] == "invalid json", (item, res["failed"])
        res = await post_ok(c, "xxx_col2", [{"id": "TEST", "unexpected": "spanish-inquisition"}])
        assert res["failed"] == {"TEST": "unknown field unexpected"}
        assert await get_ids(c, "xxx_col2") == []
        # Boundaries that are fine: 64 printable characters, sortindex/ttl at their limits.
        ok = [{"id": "X" * 64, "payload": "x"}, {"id": " ~", "payload": "x"},
              {"id": "s", "sortindex": 999_999_999}, {"id": "t", "sortindex": -999_999_999},
              {"id": "u", "ttl": 999_999_999}, {"id": "v", "payload": "x", "ttl": None,
                                                "sortindex": None}]
        res = await post_ok(c, "ok_col", ok)
        assert sorted(res["success"]) == sorted(i["id"] for i in ok)
        assert res["failed"] == {}


async def test_items_fail_independently(server):
    async with storage(server) as c:
        items = [{"id": "a", "payload": "1"}, {"id": "b\n", "payload": "2"},
                 {"id": "c", "payload": "3", "sortindex": 7}, {"id": "d", "ttl": -1},
                 {"id": "e", "payload": "5", "extra": 1}]
        res = await post_ok(c, "col", items)
        assert sorted(res["success"]) == ["a", "c"]
        assert sorted(res["failed"]) == ["b\n", "d", "e"]
        assert res["failed"]["e"] == "unknown field extra"
        got = await by_id(c, "col")
        assert sorted(got) == ["a", "c"]
        assert got["c"]["sortindex"] == 7


async def test_more_than_max_post_records(server):
    async with storage(server) as c:
        res = await post_ok(c, "xxx_col2", bsos(map(zid, range(95)), "X"))
        assert len(res["success"]) == 95 and res["failed"] == {}
        ids = [zid(i) for i in range(105)]
        res = await post_ok(c, "xxx_col2", bsos(ids, "X"))
        assert sorted(res["success"]) == sorted(ids[:100])
        assert res["failed"] == {i: "retry bso" for i in ids[100:]}
        assert len(await get_ids(c, "xxx_col2")) == 100


async def test_record_count_limit_counts_valid_items_only(make_server):
    srv = await make_server(limits=SMALL)
    async with storage(srv) as c:
        items = bsos(["a", "b", "c", "d", "e", "f", "g"])
        res = await post_ok(c, "col", items)
        assert sorted(res["success"]) == ["a", "b", "c", "d", "e"]
        assert res["failed"] == {"f": "retry bso", "g": "retry bso"}
        items = bsos(["h", "i"]) + [{"id": "bad\n", "payload": "x"}] + bsos(["j", "k", "l"])
        res = await post_ok(c, "col2", items)
        assert sorted(res["success"]) == ["h", "i", "j", "k", "l"]
        assert list(res["failed"]) == ["bad\n"]
        assert res["failed"]["bad\n"] != "retry bso"


async def test_running_byte_sum(make_server):
    srv = await make_server(limits=SMALL)
    async with storage(srv) as c:
        # test_batch_size_limits style, inclusive: 3 + 57 == 60 per item, 100 total.
        items = [{"id": "little", "payload": "XXX"}, {"id": "big", "payload": "X" * 57},
                 {"id": "more", "payload": "X" * 40}]
        res = await post_ok(c, "col", items)
        assert res["failed"] == {}
        items[2]["payload"] += "X"
        res = await post_ok(c, "col", items)
        assert sorted(res["success"]) == ["big", "little"]
        assert res["failed"] == {"more": "retry bytes"}
        # One item over max_record_payload_bytes fails by itself …
        res = await post_ok(c, "col", [{"id": "huge", "payload": "X" * 61},
                                       {"id": "tiny", "payload": "X"}])
        assert res["failed"] == {"huge": "retry bytes"}
        assert res["success"] == ["tiny"]
        # … and its size still counts towards the running sum.
        res = await post_ok(c, "col", [{"id": "h1", "payload": "X" * 61},
                                       {"id": "h2", "payload": "X" * 40}])
        assert res["success"] == []
        assert res["failed"] == {"h1": "retry bytes", "h2": "retry bytes"}
        # UTF-8 bytes, not characters.
        res = await post_ok(c, "col", [{"id": "u", "payload": "\u00e9" * 31}])
        assert res["failed"] == {"u": "retry bytes"}


async def test_multi_item_post_limits_from_configuration(make_server):
    srv = await make_server(limits=SMALL)
    async with storage(srv) as c:
        conf = (await c.get("/info/configuration")).json()
        max_bytes, max_count = conf["max_post_bytes"], conf["max_post_records"]
        item_size = 23
        n, leftover = divmod(max_bytes, item_size)
        items = [{"id": zid(i), "payload": "X" * item_size} for i in range(n)]
        items.append({"id": zid(n), "payload": "X" * (leftover + 1)})
        assert len(items) <= max_count
        res = await post_ok(c, "col", items)
        assert len(res["success"]) == n
        assert res["failed"] == {zid(n): "retry bytes"}


async def test_bulk_update_of_ttls_without_sending_data(server):
    async with storage(server) as c:
        r = await post(c, "xxx_col2", [{"id": zid(i), "payload": "x", "ttl": 100}
                                       for i in range(5)])
        ts1 = hdr_ts(r)
        items = [{"id": zid(i), "ttl": 1000} for i in range(3, 7)]
        items[0]["payload"] = "xx"
        r = await post(c, "xxx_col2", items)
        assert sorted(jl(r)["success"]) == ["03", "04", "05", "06"]
        ts2 = hdr_ts(r)
        assert ts2 > ts1
        got = await by_id(c, "xxx_col2")
        assert {k: v["payload"] for k, v in got.items()} == {
            "00": "x", "01": "x", "02": "x", "03": "xx", "04": "x", "05": "", "06": ""}
        assert {k: v["modified"] for k, v in got.items()} == {
            "00": ts1, "01": ts1, "02": ts1, "03": ts2, "04": ts1, "05": ts2, "06": ts2}
        assert jl(await c.get("/info/collections")) == {"xxx_col2": ts2}


async def test_sortindex_update_bumps_modified_in_post(server):
    async with storage(server) as c:
        t1 = (await post_ok(c, "col", bsos(["a", "b"])))["modified"]
        t2 = (await post_ok(c, "col", [{"id": "a", "sortindex": 4}]))["modified"]
        got = await by_id(c, "col")
        assert got["a"] == {"id": "a", "modified": t2, "payload": "x", "sortindex": 4}
        assert got["b"]["modified"] == t1


async def test_client_modified_and_collection_ignored_in_post(server):
    async with storage(server) as c:
        res = await post_ok(c, "col", [{"id": "a", "payload": "x", "modified": 1.5,
                                        "collection": "elsewhere"}])
        assert res["success"] == ["a"]
        got = await by_id(c, "col")
        assert got["a"]["modified"] == res["modified"]
        assert set(jl(await c.get("/info/collections"))) == {"col"}

