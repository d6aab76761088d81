"""Conformance: PUT and DELETE (spec §5.3–5.6, §7, §3 X-Last-Modified rules, §4 conflicts)."""

from __future__ import annotations

import json
import urllib.parse
from decimal import Decimal

import trio

from server.settings import StorageLimits

from .conformance_helpers import (
    PLD,
    Signer,
    assert_empty,
    assert_modified_two_decimals,
    assert_weave_error,
    body_ts,
    bsos,
    by_id,
    get_full,
    get_ids,
    hdr_ts,
    jl,
    post_ok,
    put,
    put_ok,
    quota,
    shared_server_fixture,
    storage,
    ts,
    zid,
)

server = shared_server_fixture  # one live server per session, private uids per test

BAD_IV = json.dumps({"ciphertext": "IDontKnowWhatImDoing", "IV": "AAAAAAAAAAAAAAAAAAAAAA=="})


# ----------------------------------------------------------------------------- PUT


async def test_set_item_then_update(server):
    async with storage(server) as c:
        await put_ok(c, "xxx_col2", "12345", {"payload": PLD})
        r = await c.get("/storage/xxx_col2/12345")
        assert jl(r)["payload"] == PLD
        await put_ok(c, "xxx_col2", "12345", {"payload": "YYY"})
        r = await c.get("/storage/xxx_col2/12345")
        assert jl(r)["payload"] == "YYY"


async def test_put_returns_the_new_timestamp_everywhere(server):
    async with storage(server) as c:
        r = await put(c, "col", "a", {"payload": "x"})
        assert r.status_code == 200
        t = body_ts(r)
        assert hdr_ts(r) == t
        assert hdr_ts(r, "X-Weave-Timestamp") == t
        assert r.headers["content-type"].split(";")[0] == "application/json"
        r = await c.get("/storage/col/a")
        assert jl(r)["modified"] == t
        r = await c.get("/info/collections")
        assert jl(r) == {"col": t}
        assert hdr_ts(r) == t


async def test_successive_writes_strictly_increase(server):
    async with storage(server) as c:
        stamps = [await put_ok(c, "col", "a", {"payload": str(i)}) for i in range(8)]
        assert stamps == sorted(stamps) and len(set(stamps)) == 8


async def test_concurrent_writes_to_one_collection_never_conflict(server):
    # DIVERGENCE (Foxden): no 503 write conflicts; the single writer waits for the clock.
    results: list = []
    async with storage(server) as c:
        async def one(i: int) -> None:
            results.append(await put(c, "col", zid(i), {"payload": str(i)}))

        async with trio.open_nursery() as n:
            for i in range(12):
                n.start_soon(one, i)
        assert [r.status_code for r in results] == [200] * 12, [r.text for r in results]
        assert all("Retry-After" not in r.headers for r in results)
        stamps = [body_ts(r) for r in results]
        assert len(set(stamps)) == 12
        items = await by_id(c, "col")
        assert sorted(items) == [zid(i) for i in range(12)]
        r = await c.get("/info/collections")
        assert jl(r)["col"] == max(stamps)


async def test_put_defaults_for_new_bso(server):
    async with storage(server) as c:
        await put_ok(c, "col", "empty", {})
        await put_ok(c, "col", "idx", {"sortindex": 5})
        await put_ok(c, "col", "ttl", {"ttl": 100})
        items = await by_id(c, "col")
        assert items["empty"]["payload"] == ""
        assert "sortindex" not in items["empty"]
        assert items["idx"] == {"id": "idx", "modified": items["idx"]["modified"],
                                "payload": "", "sortindex": 5}
        assert items["ttl"]["payload"] == ""


async def test_partial_updates_keep_unsent_fields(server):
    async with storage(server) as c:
        t1 = await put_ok(c, "col", "a", {"payload": "p1", "sortindex": 3})
        t2 = await put_ok(c, "col", "a", {"payload": "p2"})
        item = (await by_id(c, "col"))["a"]
        assert (item["payload"], item["sortindex"], item["modified"]) == ("p2", 3, t2)
        t3 = await put_ok(c, "col", "a", {"sortindex": 9})
        item = (await by_id(c, "col"))["a"]
        assert (item["payload"], item["sortindex"], item["modified"]) == ("p2", 9, t3)
        # null means "not sent" (RS), so it keeps the stored value.
        t4 = await put_ok(c, "col", "a", {"payload": "p3", "sortindex": None, "ttl": None})
        item = (await by_id(c, "col"))["a"]
        assert (item["payload"], item["sortindex"], item["modified"]) == ("p3", 9, t4)
        assert t1 < t2 < t3 < t4


async def test_ttl_only_put_keeps_modified_but_bumps_collection(server):
    async with storage(server) as c:
        t1 = await put_ok(c, "col", "a", {"payload": "x"})
        t2 = await put_ok(c, "col", "a", {"ttl": 100})
        assert t2 > t1
        r = await c.get("/storage/col/a")
        assert jl(r)["modified"] == t1
        assert jl(r)["payload"] == "x"
        r = await c.get("/info/collections")
        assert jl(r)["col"] == t2
        # The newer filter sees the BSO at its old time.
        assert await get_ids(c, "col", newer=str(t1)) == []


async def test_url_id_wins_and_body_id_is_validated(server):
    async with storage(server) as c:
        await put_ok(c, "col", "urlid", {"id": "urlid", "payload": "1"})
        await put_ok(c, "col", "urlid", {"id": "other", "payload": "2"})
        assert await get_ids(c, "col") == ["urlid"]
        assert (await by_id(c, "col"))["urlid"]["payload"] == "2"
        for bad in ("A\n", "X" * 65, "", 12, ["x"]):
            r = await put(c, "col", "urlid", {"id": bad, "payload": "3"})
            assert_weave_error(r, 400, 8)
        assert (await by_id(c, "col"))["urlid"]["payload"] == "2"


async def test_client_modified_and_collection_fields_are_ignored(server):
    async with storage(server) as c:
        t = await put_ok(c, "col", "a", {"payload": "x", "modified": 12, "collection": "zzz"})
        r = await c.get("/storage/col/a")
        assert jl(r)["modified"] == t
        r = await c.get("/info/collections")
        assert set(jl(r)) == {"col"}


async def test_invalid_put_bodies_are_400_8(server):
    async with storage(server) as c:
        bad_json = ['"notabso"', "42", "[]", "null", "true", "{", "not json at all",
                    '{"payload": "x"} trailing', ""]
        for text in bad_json:
            r = await c.put("/storage/xxx_col2/invalid", content=text.encode(),
                            headers={"Content-Type": "application/json"})
            assert_weave_error(r, 400, 8)
        bad_objects = [
            {"id": ["01", "02"], "payload": {"3": "4"}},
            {"unexpected": "spanish-inquisition"},
            {"payload": "x", "foo": 1},
            {"payload": 42},
            {"payload": ["x"]},
            {"payload": True},
            {"sortindex": "xxx_meh"},
            {"sortindex": "2.6"},
            {"sortindex": "1000000000"},
            {"sortindex": "5"},
            {"sortindex": 1_000_000_000},
            {"sortindex": -1_000_000_000},
            {"sortindex": 1.5},
            {"sortindex": 2.0},
            {"sortindex": True},
            {"sortindex": [1]},
            {"ttl": "eh?"},
            {"ttl": "4.2"},
            {"ttl": "10"},
            {"ttl": -1},
            {"ttl": 1_000_000_000},
            {"ttl": 4.2},
            {"ttl": True},
            {"ttl": {}},
        ]
        for body in bad_objects:
            r = await put(c, "xxx_col2", "invalid", body)
            assert_weave_error(r, 400, 8)
        assert_weave_error(await c.get("/storage/xxx_col2/invalid"), 404, 0)
        assert (await c.get("/info/collections")).json() == {}


async def test_field_bounds_accepted(server):
    async with storage(server) as c:
        for body in ({"sortindex": 999_999_999}, {"sortindex": -999_999_999},
                     {"sortindex": 0}, {"sortindex": -42}, {"ttl": 999_999_999},
                     {"ttl": 0}, {"ttl": None}, {"payload": ""}):
            r = await put(c, "col", "a", body)
            assert r.status_code == 200, (body, r.text)
        r = await put(c, "col", "b", {"payload": "x", "sortindex": -999_999_999})
        assert r.status_code == 200
        assert (await by_id(c, "col"))["b"]["sortindex"] == -999_999_999


async def test_null_ttl_uses_the_default(server):
    async with storage(server) as c:
        await put_ok(c, "xxx_col2", "TEST1", {"payload": "x", "ttl": None})
        r = await c.get("/storage/xxx_col2/TEST1", params={"full": "1"})
        assert r.status_code == 200
        assert jl(r)["payload"] == "x"


async def test_ttl_zero_expires_at_once_and_can_be_overwritten(server):
    async with storage(server) as c:
        await put_ok(c, "xxx_col2", "TEST", {"payload": "XYZ", "ttl": 0})
        assert_weave_error(await c.get("/storage/xxx_col2/TEST"), 404, 0)
        assert await get_ids(c, "xxx_col2") == []
        t = await put_ok(c, "xxx_col2", "TEST", {"payload": "XYZ", "ttl": 42})
        r = await c.get("/storage/xxx_col2/TEST")
        assert r.status_code == 200
        assert jl(r) == {"id": "TEST", "modified": t, "payload": "XYZ"}


async def test_put_content_types(server):
    async with storage(server) as c:
        body = json.dumps({"payload": PLD}).encode()
        for ctype in ("application/json", "application/json; charset=utf-8", "text/plain",
                      "text/plain; charset=UTF-8"):
            r = await c.put("/storage/xxx_col2/TEST", content=body,
                            headers={"Content-Type": ctype})
            assert r.status_code == 200, (ctype, r.text)
        r = await c.delete("/storage/xxx_col2")
        assert r.status_code == 200
        for ctype in ("application/octet-stream", "text/html", "application/x-www-form-"
                      "urlencoded", None):
            headers = {} if ctype is None else {"Content-Type": ctype}
            r = await c.put("/storage/xxx_col2/TEST", content=body, headers=headers)
            assert_weave_error(r, 415, 0)
        assert_weave_error(await c.get("/storage/xxx_col2/TEST"), 404, 0)


async def test_known_bad_crypto_payloads_rejected(server):
    async with storage(server) as c:
        bso = {"id": "keys", "payload": BAD_IV}
        assert_weave_error(await put(c, "crypto", "keys", bso), 400, 8)
        assert_weave_error(await put(c, "crypto", "blerg", bso), 400, 8)
        compact = {"payload": '{"IV":"AAAAAAAAAAAAAAAAAAAAAA==","hmac":"x"}'}
        assert_weave_error(await put(c, "crypto", "keys", compact), 400, 8)
        r = await c.post("/storage/crypto", json=[{"id": "ok", "payload": "fine"}, bso])
        assert_weave_error(r, 400, 8)
        assert await get_ids(c, "crypto") == []
        # Allowed elsewhere, and a real IV is fine in crypto.
        assert (await put(c, "xxx_col2", "keys", bso)).status_code == 200
        assert (await c.post("/storage/xxx_col2", json=[bso])).status_code == 200
        good = json.dumps({"ciphertext": "abc", "IV": "MTIzNDU2Nzg5MDEyMzQ1Ng==", "hmac": "h"})
        assert (await put(c, "crypto", "keys", {"payload": good})).status_code == 200


async def test_put_payload_size_limit_counts_bytes(make_server):
    srv = await make_server(limits=StorageLimits(max_record_payload_bytes=100,
                                                 max_post_bytes=1000))
    async with storage(srv) as c:
        assert (await put(c, "col", "a", {"payload": "x" * 100})).status_code == 200
        assert_weave_error(await put(c, "col", "b", {"payload": "x" * 101}), 400, 8)
        # 51 characters, 102 UTF-8 bytes.
        assert_weave_error(await put(c, "col", "c", {"payload": "\u00e9" * 51}), 400, 8)
        assert (await put(c, "col", "d", {"payload": "\u00e9" * 50})).status_code == 200
        assert sorted(await get_ids(c, "col")) == ["a", "d"]


async def test_invalid_collection_or_id_in_url_is_404(server):
    async with storage(server) as c:
        for path in ("/storage/" + "c" * 33 + "/a", "/storage/bad*name/a",
                     "/storage/col/" + "i" * 65, "/storage/bad%20name/a"):
            r = await c.put(path, json={"payload": "x"})
            assert_weave_error(r, 404, 0)
        assert (await put(c, "c" * 32, "i" * 64, {"payload": "x"})).status_code == 200
        assert (await put(c, "a.B-c_9", "x", {"payload": "x"})).status_code == 200


# ----------------------------------------------------------------------------- DELETE item


async def test_delete_item(server):
    async with storage(server) as c:
        res = await post_ok(c, "xxx_col2", bsos(["12", "13", "14"], PLD))
        old = res["modified"]
        r = await c.delete("/storage/xxx_col2/13")
        assert r.status_code == 200
        assert_modified_two_decimals(r.text, 1)
        body = jl(r)
        assert list(body) == ["modified"]
        new = body["modified"]
        assert new > old
        # Header: the resource time read before the action (the BSO's old time).
        assert hdr_ts(r) == old
        assert hdr_ts(r, "X-Weave-Timestamp") >= new
        assert sorted(await get_ids(c, "xxx_col2")) == ["12", "14"]
        r = await c.get("/info/collections")
        assert jl(r)["xxx_col2"] == new
        assert hdr_ts(r) == new
        assert_weave_error(await c.delete("/storage/xxx_col2/12982"), 404, 0)
        assert_weave_error(await c.delete("/storage/nonexistent/1"), 404, 0)
        await put_ok(c, "xxx_col2", "dead", {"payload": "x", "ttl": 0})
        assert_weave_error(await c.delete("/storage/xxx_col2/dead"), 404, 0)


# ----------------------------------------------------------------------------- DELETE coll


async def test_delete_collection(server):
    async with storage(server) as c:
        await post_ok(c, "keep", bsos(["k"]))
        old = (await post_ok(c, "xxx_col2", bsos(["12", "13", "14"], PLD)))["modified"]
        r = await c.delete("/storage/xxx_col2")
        assert r.status_code == 200
        new = body_ts(r)
        assert new > old
        assert hdr_ts(r) == old
        assert hdr_ts(r, "X-Weave-Timestamp") >= new
        assert await get_ids(c, "xxx_col2") == []
        r = await c.get("/storage/xxx_col2")
        assert r.headers["X-Last-Modified"] == "0.00"
        r = await c.get("/info/collections")
        assert set(jl(r)) == {"keep"}
        assert hdr_ts(r) == new
        assert (await c.get("/info/collection_counts")).json() == {"keep": 1}


async def test_delete_absent_collection_returns_storage_timestamp(server):
    async with storage(server) as c:
        r = await c.delete("/storage/never")
        assert r.status_code == 200
        assert r.text == "0.00"
        t = await put_ok(c, "col", "a", {"payload": "x"})
        r = await c.delete("/storage/never")
        assert r.status_code == 200
        assert body_ts(r) == t
        r = await c.get("/info/collections")
        assert hdr_ts(r) == t
        assert set(jl(r)) == {"col"}


async def test_delete_ids(server):
    async with storage(server) as c:
        old = (await post_ok(c, "xxx_col2", bsos(["12", "13", "14"], PLD)))["modified"]
        r = await c.delete("/storage/xxx_col2", params={"ids": "12,14"})
        assert r.status_code == 200
        t = body_ts(r)
        assert t > old
        assert hdr_ts(r) == t
        assert await get_ids(c, "xxx_col2") == ["13"]
        r = await c.get("/info/collections")
        assert jl(r) == {"xxx_col2": t}
        # Nothing matched: the collection time still moves, and the collection stays.
        r = await c.delete("/storage/xxx_col2", params={"ids": "nope"})
        t2 = body_ts(r)
        assert t2 > t
        r = await c.delete("/storage/xxx_col2", params={"ids": "13"})
        t3 = body_ts(r)
        assert await get_ids(c, "xxx_col2") == []
        assert jl(await c.get("/info/collections")) == {"xxx_col2": t3}


async def test_delete_ids_limits_and_validation(server):
    async with storage(server) as c:
        bso = {"payload": "testing"}
        await put_ok(c, "xxx_col2", "01", bso)
        r = await c.delete("/storage/xxx_col2", params={"ids": ",".join(map(zid, range(99)))})
        assert r.status_code == 200
        await put_ok(c, "xxx_col2", "01", bso)
        r = await c.delete("/storage/xxx_col2", params={"ids": ",".join(map(zid, range(100)))})
        assert r.status_code == 200
        assert await get_ids(c, "xxx_col2") == []
        await put_ok(c, "xxx_col2", "01", bso)
        r = await c.delete("/storage/xxx_col2", params={"ids": ",".join(map(zid, range(101)))})
        assert_weave_error(r, 400, 0)
        r = await c.delete("/storage/xxx_col2", params={"ids": "ok,bad\tid"})
        assert_weave_error(r, 400, 0)
        assert await get_ids(c, "xxx_col2") == ["01"]


async def test_delete_ids_removes_expired_rows_too(server):
    # §5.5: DELETE ?ids= deletes expired rows as well; observable through §4, where an
    # expired row still carries its modified time.
    async with storage(server) as c:
        await put_ok(c, "col", "gone", {"payload": "x", "ttl": 0})
        assert_empty(await put(c, "col", "gone", {"payload": "y"},
                               headers={"X-If-Unmodified-Since": "0"}), 412)
        r = await c.delete("/storage/col", params={"ids": "gone"})
        assert r.status_code == 200
        r = await put(c, "col", "gone", {"payload": "y"}, headers={"X-If-Unmodified-Since": "0"})
        assert r.status_code == 200, r.text
        assert (await by_id(c, "col"))["gone"]["payload"] == "y"


async def test_guid_deletion(server):
    async with storage(server) as c:
        guids = [f"6820f3ca-6e8a-4ff4-8af7-8b3625d7d65{i}" for i in range(5)]
        res = await post_ok(c, "passwords", bsos(guids, PLD))
        assert len(res["success"]) == 5
        ids = ",".join(guids[:2])
        r = await c.delete("/storage/passwords", params={"ids": ids})
        assert r.status_code == 200
        assert await get_ids(c, "passwords", ids=ids) == []
        assert len(await get_ids(c, "passwords")) == 3


async def test_ids_with_percent_encoded_query_string(server):
    s = Signer(server, 77)
    items = [{"id": f"test-{i}", "payload": PLD} for i in range(5)]
    r = await s.send("POST", "/storage/xxx_col2", content=json.dumps(items).encode(),
                     content_type="application/json")
    assert r.status_code == 200
    ids = urllib.parse.quote("test-0,test-1")
    assert "%2C" in ids
    r = await s.send("DELETE", f"/storage/xxx_col2?ids={ids}")
    assert r.status_code == 200, r.text
    r = await s.send("GET", f"/storage/xxx_col2?ids={ids}")
    assert jl(r) == []
    r = await s.send("GET", "/storage/xxx_col2")
    assert sorted(jl(r)) == ["test-2", "test-3", "test-4"]


# ----------------------------------------------------------------------------- DELETE storage


async def _fill(c):
    await post_ok(c, "a", bsos(["1", "2"]))
    return (await post_ok(c, "b", bsos(["3"])))["modified"]


async def test_delete_storage(server):
    async with storage(server) as c:
        old = await _fill(c)
        r = await c.delete("/storage")
        assert r.status_code == 200
        assert r.text == "null"
        assert r.headers["content-type"].split(";")[0] == "application/json"
        assert hdr_ts(r) == old
        assert hdr_ts(r, "X-Weave-Timestamp") >= old
        assert await get_ids(c, "a") == []
        r = await c.get("/info/collections")
        assert jl(r) == {}
        assert r.headers["X-Last-Modified"] == "0.00"
        assert (await c.get("/info/quota")).json() == quota(server, 0)
        assert (await c.get("/info/collection_counts")).json() == {}
        # test_delete_storage: deleting an already-empty collection is fine.
        assert (await c.delete("/storage/a")).status_code == 200
        # Writing again works and moves forward.
        assert await put_ok(c, "a", "1", {"payload": "again"}) > old


async def test_delete_uid_root(server):
    s = Signer(server, 88)
    for i in range(2):
        r = await s.send("PUT", f"/storage/c{i}/x", content=b'{"payload": "p"}',
                         content_type="application/json")
        assert r.status_code == 200
    old = ts(r.text)
    r = await s.send("DELETE", "")
    assert r.status_code == 200, r.text
    assert r.text == "null"
    assert hdr_ts(r) == old
    r = await s.send("GET", "/info/collections")
    assert jl(r) == {}
    r = await s.send("GET", "/storage/c0/x")
    assert_weave_error(r, 404, 0)


async def test_delete_storage_of_empty_user(server):
    async with storage(server, 4242) as c:
        r = await c.delete("/storage")
        assert r.status_code == 200
        assert r.text == "null"
        assert r.headers["X-Last-Modified"] == "0.00"


async def test_delete_leaves_other_users_alone(server):
    async with storage(server, 1) as a, storage(server, 2) as b:
        await put_ok(a, "col", "x", {"payload": "a"})
        t = await put_ok(b, "col", "x", {"payload": "b"})
        assert (await a.delete("/storage")).status_code == 200
        r = await b.get("/storage/col/x")
        assert jl(r)["payload"] == "b"
        assert jl(await b.get("/info/collections")) == {"col": t}


async def test_full_listing_after_mixed_deletes(server):
    async with storage(server) as c:
        await post_ok(c, "col", bsos(map(zid, range(6))))
        await c.delete("/storage/col/02")
        await c.delete("/storage/col", params={"ids": "03,04"})
        items = await get_full(c, "col", sort="oldest")
        assert [i["id"] for i in items] == ["00", "01", "05"]
        assert all(isinstance(i["modified"], Decimal) for i in items)
