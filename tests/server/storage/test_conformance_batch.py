"""Conformance: batch uploads (spec §6.3, with §6.1 body rules and §3 headers)."""

from __future__ import annotations

from server.settings import StorageLimits

from .conformance_helpers import (
    assert_empty,
    assert_modified_two_decimals,
    assert_weave_error,
    bsos,
    by_id,
    get_ids,
    hdr_ts,
    jl,
    post,
    post_ok,
    quota,
    shared_server_fixture,
    storage,
    zid,
)

server = shared_server_fixture  # one live server per session, private uids per test


async def open_batch(c, coll, items=(), **kw):
    r = await post(c, coll, list(items), params={"batch": "true"}, **kw)
    assert r.status_code == 202, (r.status_code, r.text)
    body = jl(r)
    assert sorted(body) == ["batch", "failed", "success"], body
    assert isinstance(body["batch"], str) and body["batch"]
    return body["batch"], r


async def append(c, coll, batch, items, **kw):
    r = await post(c, coll, list(items), params={"batch": batch}, **kw)
    assert r.status_code == 202, (r.status_code, r.text)
    body = jl(r)
    assert sorted(body) == ["batch", "failed", "success"], body
    assert body["batch"] == batch
    return r


async def commit(c, coll, batch, items=(), **kw):
    r = await post(c, coll, list(items), params={"batch": batch, "commit": "true"}, **kw)
    assert r.status_code == 200, (r.status_code, r.text)
    body = jl(r)
    assert sorted(body) == ["failed", "modified", "success"], body
    assert_modified_two_decimals(r.text, 1)
    assert hdr_ts(r) == body["modified"]
    assert hdr_ts(r, "X-Weave-Timestamp") == body["modified"]
    return body


async def test_batches(server):
    async with storage(server) as c:
        endpoint = "xxx_col2"
        await post_ok(c, endpoint, [{"id": "12", "payload": "elegance"},
                                    {"id": "13", "payload": "slovenly"}])
        r = await c.get(f"/storage/{endpoint}/12")
        orig = hdr_ts(r)

        batch, r = await open_batch(c, endpoint, [{"id": "a", "payload": "internal"},
                                                  {"id": "b", "payload": "pancreas"}])
        assert hdr_ts(r) == orig
        assert sorted(jl(r)["success"]) == ["a", "b"] and jl(r)["failed"] == {}
        r = await c.get(f"/storage/{endpoint}")
        assert sorted(jl(r)) == ["12", "13"]
        assert r.headers["X-Weave-Records"] == "2"
        assert hdr_ts(r) == orig

        res = await commit(c, endpoint, batch, [{"id": "c", "payload": "tinsel"},
                                                {"id": "13", "payload": "portnoy"},
                                                {"id": "14", "payload": "itsybitsy"}])
        committed = res["modified"]
        assert sorted(res["success"]) == ["13", "14", "c"]
        r = await c.get("/info/collections")
        assert hdr_ts(r) == committed
        assert jl(r)[endpoint] == committed
        r = await c.get(f"/storage/{endpoint}")
        assert sorted(jl(r)) == ["12", "13", "14", "a", "b", "c"]
        assert r.headers["X-Weave-Records"] == "6"
        got = await by_id(c, endpoint)
        assert got["13"]["payload"] == "portnoy"
        assert got["c"]["payload"] == "tinsel" and got["14"]["payload"] == "itsybitsy"
        assert got["a"]["payload"] == "internal"
        for bid in ("13", "14", "a", "b", "c"):
            assert got[bid]["modified"] == committed, bid
        assert got["12"]["modified"] == orig
        r = await c.get(f"/storage/{endpoint}/13")
        assert hdr_ts(r) == committed

        # Empty commit POST applies what was staged.
        batch, _ = await open_batch(c, endpoint, [{"id": "a", "payload": "burrito"},
                                                  {"id": "e", "payload": "chocolate"}])
        res = await commit(c, endpoint, batch, [])
        assert res["success"] == [] and res["failed"] == {}
        committed = res["modified"]
        r = await c.get(f"/storage/{endpoint}/a")
        assert hdr_ts(r) == committed
        assert jl(r)["modified"] == committed and jl(r)["payload"] == "burrito"
        r = await c.get(f"/storage/{endpoint}/e")
        assert jl(r)["modified"] == committed


async def test_append_to_new_collection_does_not_create_it(server):
    async with storage(server) as c:
        batch, r = await open_batch(c, "fresh", bsos(["a"]))
        assert r.headers["X-Last-Modified"] == "0.00"
        hdr_ts(r, "X-Weave-Timestamp")
        r = await append(c, "fresh", batch, bsos(["b"]))
        assert r.headers["X-Last-Modified"] == "0.00"
        assert jl(await c.get("/info/collections")) == {}
        assert (await c.get("/info/collection_counts")).json() == {}
        assert (await c.get("/info/quota")).json() == quota(server, 0)
        res = await commit(c, "fresh", batch)
        assert jl(await c.get("/info/collections")) == {"fresh": res["modified"]}
        assert sorted(await get_ids(c, "fresh")) == ["a", "b"]


async def test_aaa_batch_commit_collision(server):
    async with storage(server) as c:
        batch, _ = await open_batch(c, "xxx_col2", [{"id": "b0", "payload": "orig"}])
        res = await commit(c, "xxx_col2", batch, [{"id": "b0", "payload": "repl"}])
        assert res["failed"] == {}
        assert res["success"] == ["b0"]
        got = await by_id(c, "xxx_col2")
        assert list(got) == ["b0"]
        assert got["b0"]["payload"] == "repl"


async def test_commit_items_merge_over_staged_fields(server):
    async with storage(server) as c:
        batch, _ = await open_batch(c, "col", [{"id": "x", "payload": "staged",
                                                 "sortindex": 5}])
        await commit(c, "col", batch, [{"id": "x", "payload": "commit"}])
        got = (await by_id(c, "col"))["x"]
        assert got["payload"] == "commit"
        assert got["sortindex"] == 5


async def test_we_dont_need_no_stinkin_batches(server):
    async with storage(server) as c:
        r = await post(c, "xxx_col2", [{"id": "f", "payload": "pantomime"}],
                       params={"batch": "sammich"})
        assert_weave_error(r, 400, 0)
        r = await post(c, "xxx_col2", [], params={"commit": "true"})
        assert_weave_error(r, 400, 0)
        r = await post(c, "xxx_col2", [{"id": "f", "payload": "x"}], params={"commit": "true"})
        assert_weave_error(r, 400, 0)
        assert jl(await c.get("/info/collections")) == {}


async def test_batch_and_commit_values(server):
    async with storage(server) as c:
        batch, _ = await open_batch(c, "col", bsos(["a"]))
        for value in ("false", "yes", "1", ""):
            r = await post(c, "col", [], params={"batch": batch, "commit": value})
            assert_weave_error(r, 400, 0)
        assert await get_ids(c, "col") == []
        r = await post(c, "col", [], params={"batch": batch, "commit": "TRUE"})
        assert r.status_code == 200, r.text
        assert await get_ids(c, "col") == ["a"]
        for value in ("TRUE", "True", ""):
            r = await post(c, "col2", bsos([value or "empty"]), params={"batch": value})
            assert r.status_code == 202, (value, r.text)
            assert "batch" in jl(r)
        r = await post(c, "col3", bsos(["i"]), params={"batch": "", "commit": "true"})
        assert r.status_code == 200, r.text
        assert "batch" not in jl(r)
        assert await get_ids(c, "col3") == ["i"]


async def test_unknown_batch_ids_rejected(server):
    async with storage(server) as c:
        batch, _ = await open_batch(c, "col", bsos(["a"]))
        for bogus in (batch + "x", "MTIzNDU2Nzg5MA==", "0", "-1", "a" * 200):
            if bogus == batch:
                continue
            r = await post(c, "col", bsos(["b"]), params={"batch": bogus})
            assert_weave_error(r, 400, 0)
            r = await post(c, "col", [], params={"batch": bogus, "commit": "true"})
            assert_weave_error(r, 400, 0)
        await commit(c, "col", batch)
        assert await get_ids(c, "col") == ["a"]


async def test_batch_with_immediate_commit(server):
    async with storage(server) as c:
        items = [{"id": "a", "payload": "aih"}, {"id": "b", "payload": "bie"},
                 {"id": "c", "payload": "cee"}]
        r = await post(c, "xxx_col2", items, params={"batch": "true", "commit": "true"})
        assert r.status_code == 200
        body = jl(r)
        assert "batch" not in body
        assert sorted(body) == ["failed", "modified", "success"]
        committed = body["modified"]
        r = await c.get("/info/collections")
        assert hdr_ts(r) == committed
        assert jl(r)["xxx_col2"] == committed
        r = await c.get("/storage/xxx_col2", params={"full": "1"})
        assert hdr_ts(r) == committed
        got = {i["id"]: i["payload"] for i in jl(r)}
        assert got == {"a": "aih", "b": "bie", "c": "cee"}


async def test_batch_uploads_properly_update_info_collections(server):
    async with storage(server) as c:
        items = bsos(["a", "b", "c"])
        ts1 = (await post_ok(c, "xxx_col1", items))["modified"]
        ts2 = (await post_ok(c, "xxx_col2", items))["modified"]
        r = await c.get("/info/collections")
        assert hdr_ts(r) == ts2 and jl(r) == {"xxx_col1": ts1, "xxx_col2": ts2}
        res = await post_ok(c, "xxx_col2", items[:2], params={"batch": "true",
                                                               "commit": "true"})
        assert res["modified"] > ts2
        ts2 = res["modified"]
        r = await c.get("/info/collections")
        assert hdr_ts(r) == ts2 and jl(r) == {"xxx_col1": ts1, "xxx_col2": ts2}
        res = await post_ok(c, "xxx_col1", [{"id": "d", "payload": "dee"}],
                            params={"batch": "true", "commit": "true"})
        assert res["modified"] > ts2
        ts1 = res["modified"]
        r = await c.get("/info/collections")
        assert hdr_ts(r) == ts1 and jl(r) == {"xxx_col1": ts1, "xxx_col2": ts2}


async def test_batch_partial_update(server):
    async with storage(server) as c:
        r = await post(c, "xxx_col2", [{"id": "a", "payload": "aai"},
                                       {"id": "b", "payload": "bee", "sortindex": 17}])
        orig = hdr_ts(r)
        batch, r = await open_batch(c, "xxx_col2", [{"id": "b", "payload": "bii"},
                                                    {"id": "c", "payload": "sea"}])
        assert hdr_ts(r) == orig
        got = await by_id(c, "xxx_col2")
        assert sorted(got) == ["a", "b"]
        assert got["b"] == {"id": "b", "modified": orig, "payload": "bee", "sortindex": 17}
        res = await commit(c, "xxx_col2", batch)
        t = res["modified"]
        got = await by_id(c, "xxx_col2")
        assert got == {
            "a": {"id": "a", "modified": orig, "payload": "aai"},
            "b": {"id": "b", "modified": t, "payload": "bii", "sortindex": 17},
            "c": {"id": "c", "modified": t, "payload": "sea"},
        }


async def test_batch_ttl_only_items_get_commit_time_and_keep_payload(server):
    async with storage(server) as c:
        orig = (await post_ok(c, "xxx_col2", [{"id": "a", "payload": "ayy"},
                                              {"id": "b", "payload": "bea"},
                                              {"id": "c", "payload": "see"}]))["modified"]
        batch, r = await open_batch(c, "xxx_col2")
        assert hdr_ts(r) == orig
        r = await append(c, "xxx_col2", batch, [{"id": "a", "ttl": 200}])
        assert hdr_ts(r) == orig
        r = await append(c, "xxx_col2", batch, [{"id": "b", "ttl": 200}])
        assert hdr_ts(r) == orig
        t = (await commit(c, "xxx_col2", batch))["modified"]
        got = await by_id(c, "xxx_col2")
        assert {k: v["payload"] for k, v in got.items()} == {"a": "ayy", "b": "bea",
                                                              "c": "see"}
        assert {k: v["modified"] for k, v in got.items()} == {"a": t, "b": t, "c": orig}


async def test_batch_with_failing_bsos(server):
    async with storage(server) as c:
        r = await post(c, "xxx_col2", [{"id": "a", "payload": "aai"},
                                       {"id": "b\n", "payload": "i am invalid",
                                        "sortindex": 17}], params={"batch": "true"})
        assert r.status_code == 202
        body = jl(r)
        assert body["success"] == ["a"] and list(body["failed"]) == ["b\n"]
        res = await commit(c, "xxx_col2", body["batch"],
                           [{"id": "c", "payload": "sea"},
                            {"id": "d", "payload": "dii", "ttl": -12}])
        assert res["success"] == ["c"] and list(res["failed"]) == ["d"]
        got = await by_id(c, "xxx_col2")
        assert {k: v["payload"] for k, v in got.items()} == {"a": "aai", "c": "sea"}


async def test_batch_id_is_correctly_scoped_to_a_collection(server):
    async with storage(server) as c:
        items = [{"id": "a", "payload": "aih"}, {"id": "b", "payload": "bie"},
                 {"id": "c", "payload": "cee"}]
        batch, _ = await open_batch(c, "xxx_col1", items)
        r = await post(c, "xxx_col2", [{"id": "d", "payload": "dii"}], params={"batch": batch})
        assert_weave_error(r, 400, 0)
        r = await post(c, "xxx_col2", [], params={"batch": batch, "commit": "true"})
        assert_weave_error(r, 400, 0)
        assert await get_ids(c, "xxx_col2") == []
        await append(c, "xxx_col1", batch, [{"id": "d", "payload": "dii"}])
        await commit(c, "xxx_col1", batch)
        got = await by_id(c, "xxx_col1")
        assert {k: v["payload"] for k, v in got.items()} == {"a": "aih", "b": "bie",
                                                              "c": "cee", "d": "dii"}
        assert set(jl(await c.get("/info/collections"))) == {"xxx_col1"}


async def test_batch_id_is_correctly_scoped_to_a_user(server):
    async with storage(server, 501) as c, storage(server, 502) as other:
        items = [{"id": "a", "payload": "aih"}, {"id": "b", "payload": "bie"},
                 {"id": "c", "payload": "cee"}]
        batch, _ = await open_batch(c, "xxx_col1", items)
        r = await post(other, "xxx_col1", [{"id": "d", "payload": "di"}],
                       params={"batch": batch})
        assert_weave_error(r, 400, 0)
        r = await post(other, "xxx_col1", [], params={"batch": batch, "commit": "true"})
        assert_weave_error(r, 400, 0)
        assert await get_ids(other, "xxx_col1") == []
        await append(c, "xxx_col1", batch, [{"id": "d", "payload": "di"}])
        await commit(c, "xxx_col1", batch)
        got = await by_id(c, "xxx_col1")
        assert {k: v["payload"] for k, v in got.items()} == {"a": "aih", "b": "bie",
                                                              "c": "cee", "d": "di"}


async def test_users_get_separate_data_for_their_batches(server):
    async with storage(server, 601) as a, storage(server, 602) as b:
        batch_a, _ = await open_batch(a, "xxx_col1", [{"id": "a", "payload": "aih"}])
        batch_b, _ = await open_batch(b, "xxx_col1", [{"id": "b", "payload": "bee"}])
        await commit(b, "xxx_col1", batch_b)
        assert await get_ids(b, "xxx_col1") == ["b"]
        assert await get_ids(a, "xxx_col1") == []
        await commit(a, "xxx_col1", batch_a)
        assert await get_ids(a, "xxx_col1") == ["a"]
        assert await get_ids(b, "xxx_col1") == ["b"]


async def test_that_we_dont_resurrect_committed_batches(server):
    async with storage(server) as c:
        batch1, _ = await open_batch(c, "xxx_col1", [{"id": "i", "payload": "aye"}])
        await commit(c, "xxx_col1", batch1)
        # The committed batch is gone: it can be neither appended to nor committed again.
        r = await post(c, "xxx_col1", [{"id": "k", "payload": "kay"}], params={"batch": batch1})
        assert_weave_error(r, 400, 0)
        r = await post(c, "xxx_col1", [], params={"batch": batch1, "commit": "true"})
        assert_weave_error(r, 400, 0)
        batch2, _ = await open_batch(c, "xxx_col2")
        await commit(c, "xxx_col2", batch2, [{"id": "j", "payload": "jay"}])
        assert await get_ids(c, "xxx_col2") == ["j"]
        assert await get_ids(c, "xxx_col1") == ["i"]
        # Many quick batches never see each other's items.
        for n in range(5):
            b, _ = await open_batch(c, "loop", [{"id": f"n{n}", "payload": "x"}])
            res = await commit(c, "loop", b)
            assert res["success"] == []
            assert sorted(await get_ids(c, "loop")) == sorted(f"n{k}" for k in range(n + 1))


async def test_concurrently_open_batches_are_independent(server):
    async with storage(server) as c:
        b1, _ = await open_batch(c, "col", bsos(["one"]))
        b2, _ = await open_batch(c, "col", bsos(["two"]))
        assert b1 != b2
        await append(c, "col", b1, bsos(["one-more"]))
        await commit(c, "col", b2)
        assert await get_ids(c, "col") == ["two"]
        await commit(c, "col", b1)
        assert sorted(await get_ids(c, "col")) == ["one", "one-more", "two"]


async def test_batch_empty_commit(server):
    async with storage(server) as c:
        cases = [("application/json", "[]", 200), ("application/json", "{}", 400),
                 ("application/json", "", 400), ("application/newlines", "", 200),
                 ("application/newlines", "\n", 400), ("application/newlines", "{}", 400),
                 ("application/newlines", "[]", 400)]
        for ctype, text, status in cases:
            r = await post(c, "xxx_col", bsos(map(zid, range(5)), "X"),
                           params={"batch": "true"})
            body = jl(r)
            assert len(body["success"]) == 5 and body["failed"] == {}
            r = await c.post("/storage/xxx_col", content=text.encode(),
                             params={"commit": "true", "batch": body["batch"]},
                             headers={"Content-Type": ctype})
            if status == 400:
                assert_weave_error(r, 400, 8)
            else:
                assert r.status_code == 200, (ctype, text, r.text)


async def test_batch_append_body_errors(server):
    async with storage(server) as c:
        batch, _ = await open_batch(c, "col", bsos(["a"]))
        r = await c.post("/storage/col", content=b'"notalist"', params={"batch": batch},
                         headers={"Content-Type": "application/json"})
        assert_weave_error(r, 400, 8)
        r = await post(c, "col", [{"id": "x", "payload": "1"}, {"id": "x", "payload": "2"}],
                       params={"batch": batch})
        assert_weave_error(r, 400, 8)
        r = await c.post("/storage/col", content=b"[]", params={"batch": batch},
                         headers={"Content-Type": "application/octet-stream"})
        assert_weave_error(r, 415, 0)
        await commit(c, "col", batch)
        assert await get_ids(c, "col") == ["a"]


async def test_batch_append_respects_per_post_limits(make_server):
    srv = await make_server(limits=StorageLimits(max_post_records=5, max_post_bytes=1000,
                                                 max_record_payload_bytes=1000))
    async with storage(srv) as c:
        ids = [zid(i) for i in range(7)]
        r = await post(c, "col", bsos(ids), params={"batch": "true"})
        assert r.status_code == 202
        body = jl(r)
        assert sorted(body["success"]) == ids[:5]
        assert body["failed"] == {"05": "retry bso", "06": "retry bso"}
        await append(c, "col", body["batch"], bsos(ids[5:]))
        res = await commit(c, "col", body["batch"], bsos(["x", "y"]))
        assert sorted(res["success"]) == ["x", "y"]
        assert sorted(await get_ids(c, "col")) == sorted(ids + ["x", "y"])


async def test_batch_commit_honours_preconditions(server):
    async with storage(server) as c:
        t0 = (await post_ok(c, "col", bsos(["base"])))["modified"]
        batch, _ = await open_batch(c, "col", bsos(["staged"]))
        t1 = (await post_ok(c, "col", bsos(["other"])))["modified"]
        r = await post(c, "col", [], params={"batch": batch, "commit": "true"},
                       headers={"X-If-Unmodified-Since": str(t0)})
        assert_empty(r, 412)
        assert hdr_ts(r) == t1
        assert sorted(await get_ids(c, "col")) == ["base", "other"]
        await commit(c, "col", batch, headers={"X-If-Unmodified-Since": str(t1)})
        assert sorted(await get_ids(c, "col")) == ["base", "other", "staged"]


async def test_staged_items_are_invisible_everywhere(server):
    async with storage(server) as c:
        await post_ok(c, "col", [{"id": "a", "payload": "x" * 100}])
        before = [(await c.get(f"/info/{v}")).text for v in
                  ("collections", "collection_counts", "collection_usage", "quota")]
        batch, _ = await open_batch(c, "col", [{"id": "b", "payload": "y" * 300},
                                               {"id": "a", "payload": "z"}])
        after = [(await c.get(f"/info/{v}")).text for v in
                 ("collections", "collection_counts", "collection_usage", "quota")]
        assert after == before
        assert_weave_error(await c.get("/storage/col/b"), 404, 0)
        assert (await by_id(c, "col"))["a"]["payload"] == "x" * 100
        await commit(c, "col", batch)
        assert (await c.get("/info/collection_counts")).json() == {"col": 2}
        assert (await c.get("/info/quota")).json() == quota(server, 301)


async def test_known_bad_iv_rejected_in_batches(server):
    async with storage(server) as c:
        bad = {"id": "keys", "payload": '{"IV": "AAAAAAAAAAAAAAAAAAAAAA==", "ciphertext": "x"}'}
        r = await post(c, "crypto", [bad], params={"batch": "true"})
        assert_weave_error(r, 400, 8)
        batch, _ = await open_batch(c, "crypto", [{"id": "ok", "payload": "fine"}])
        r = await post(c, "crypto", [bad], params={"batch": batch, "commit": "true"})
        assert_weave_error(r, 400, 8)
