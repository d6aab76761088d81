"""Conformance: limits, quota, error responses and common headers (spec §1, §3, §8, §9)."""

from __future__ import annotations

import json
import time

import httpx

from server.settings import StorageLimits

from .conformance_helpers import (
    TS_RE,
    Signer,
    assert_empty,
    assert_weave_error,
    bsos,
    by_id,
    get_ids,
    hdr_ts,
    jl,
    post,
    post_ok,
    put,
    put_ok,
    quota,
    raw_request,
    shared_server_fixture,
    storage,
)

server = shared_server_fixture  # one live server per session, private uids per test

SMALL = StorageLimits(max_post_records=5, max_post_bytes=100, max_record_payload_bytes=60,
                      max_request_bytes=5000, max_total_records=8, max_total_bytes=300)
HEADER_LIMITS = [("X-Weave-Records", "max_post_records"), ("X-Weave-Bytes", "max_post_bytes"),
                 ("X-Weave-Total-Records", "max_total_records"),
                 ("X-Weave-Total-Bytes", "max_total_bytes")]


# ----------------------------------------------------------------------------- X-Weave-*


async def test_declared_size_headers_are_inclusive_limits(make_server):
    srv = await make_server(limits=SMALL)
    async with storage(srv) as c:
        conf = (await c.get("/info/configuration")).json()
        for header, key in HEADER_LIMITS:
            limit = conf[key]
            assert limit == getattr(SMALL, key)
            for params, ok in (({}, 200), ({"batch": "true"}, 202),
                               ({"batch": "true", "commit": "true"}, 200)):
                r = await post(c, "col", [], params=params, headers={header: str(limit)})
                assert r.status_code == ok, (header, params, r.status_code, r.text)
                r = await post(c, "col", [], params=params, headers={header: str(limit + 1)})
                assert_weave_error(r, 400, 17)
                hdr_ts(r, "X-Weave-Timestamp")


async def test_declared_size_headers_checked_on_append_and_commit(make_server):
    srv = await make_server(limits=SMALL)
    async with storage(srv) as c:
        r = await post(c, "col", bsos(["a"]), params={"batch": "true"})
        batch = jl(r)["batch"]
        r = await post(c, "col", bsos(["b"]), params={"batch": batch},
                       headers={"X-Weave-Total-Records": "9"})
        assert_weave_error(r, 400, 17)
        r = await post(c, "col", bsos(["c"]), params={"batch": batch, "commit": "true"},
                       headers={"X-Weave-Bytes": "101"})
        assert_weave_error(r, 400, 17)
        assert await get_ids(c, "col") == []
        r = await post(c, "col", [], params={"batch": batch, "commit": "true"},
                       headers={"X-Weave-Total-Records": "8", "X-Weave-Total-Bytes": "300"})
        assert r.status_code == 200, r.text
        assert await get_ids(c, "col") == ["a"]


async def test_declared_size_headers_must_be_unsigned_integers(server):
    async with storage(server) as c:
        for header, _ in HEADER_LIMITS:
            for value in ("abc", "-1", "1.5", "1e3", "0x10"):
                for params in ({}, {"batch": "true"}):
                    r = await post(c, "col", bsos(["a"]), params=params,
                                   headers={header: value})
                    assert_weave_error(r, 400, 0)
        assert await get_ids(c, "col") == []


async def test_total_bytes_limit_with_default_configuration(server):
    async with storage(server) as c:
        limits = (await c.get("/info/configuration")).json()
        r = await post(c, "xxx_col2", [], params={"batch": "true"},
                       headers={"X-Weave-Total-Bytes": str(limits["max_total_bytes"])})
        assert r.status_code == 202
        r = await post(c, "xxx_col2", [], params={"batch": "true"},
                       headers={"X-Weave-Total-Bytes": str(limits["max_total_bytes"] + 1)})
        assert_weave_error(r, 400, 17)
        r = await post(c, "xxx_col2", [], params={"batch": "true"},
                       headers={"X-Weave-Records": str(limits["max_post_records"] + 1)})
        assert_weave_error(r, 400, 17)


# ----------------------------------------------------------------------------- 413


async def test_content_length_over_max_request_bytes_is_413(make_server):
    limits = StorageLimits(max_request_bytes=1000, max_record_payload_bytes=2000,
                           max_post_bytes=5000)
    srv = await make_server(limits=limits)
    async with storage(srv) as c:
        exact = json.dumps({"payload": "x" * 985}).encode()
        assert len(exact) == 1000
        r = await c.put("/storage/col/fits", content=exact,
                        headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        over = json.dumps({"payload": "x" * 986}).encode()
        r = await c.put("/storage/col/big", content=over,
                        headers={"Content-Type": "application/json"})
        assert_weave_error(r, 413, 17)
        hdr_ts(r, "X-Weave-Timestamp")
        body = json.dumps([{"id": "p", "payload": "x" * 1000}]).encode()
        r = await c.post("/storage/col", content=body,
                         headers={"Content-Type": "application/json"})
        assert_weave_error(r, 413, 17)
        r = await c.post("/storage/col", content=body, params={"batch": "true"},
                         headers={"Content-Type": "application/json"})
        assert_weave_error(r, 413, 17)
        # Content-Type is checked first.
        r = await c.put("/storage/col/big", content=over,
                        headers={"Content-Type": "application/octet-stream"})
        assert_weave_error(r, 415, 0)
        assert await get_ids(c, "col") == ["fits"]


async def test_oversized_chunked_body_is_413(make_server):
    srv = await make_server(limits=StorageLimits(max_request_bytes=1000))

    async def chunks():
        yield b'[{"id": "a", "payload": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}]'

    async with storage(srv) as c:
        c.timeout = httpx.Timeout(5)
        r = await c.post("/storage/col", content=chunks(),
                         headers={"Content-Type": "application/json"})
        assert r.status_code == 413, r.text
    # A fresh connection: the server may close the one that carried the oversized body.
    async with storage(srv) as c:
        assert await get_ids(c, "col") == []


# ----------------------------------------------------------------------------- quota


async def test_quota_is_enforced_with_403_14(make_server):
    # DIVERGENCE (Foxden): quota on; over it, writes get 403 with WEAVE code 14.
    srv = await make_server(enforce_quota=True, limits=StorageLimits(max_quota_limit=1000))
    async with storage(srv) as c:
        statuses = []
        for i in range(5):
            r = await put(c, "col", f"q{i}", {"payload": "x" * 400})
            statuses.append(r.status_code)
            if r.status_code != 200:
                assert_weave_error(r, 403, 14)
                hdr_ts(r, "X-Weave-Timestamp")
                break
        assert statuses in ([200, 200, 403], [200, 200, 200, 403]), statuses
        stored = await by_id(c, "col")
        used = sum(len(v["payload"]) for v in stored.values())
        assert used <= 1000 + 400
        assert (await c.get("/info/quota")).json() == quota(srv, used)
        r = await post(c, "col", [{"id": "more", "payload": "y" * 400}])
        assert_weave_error(r, 403, 14)
        r = await post(c, "col", [{"id": "more", "payload": "y" * 400}],
                       params={"batch": "true", "commit": "true"})
        assert_weave_error(r, 403, 14)
        assert "more" not in await get_ids(c, "col")
        # Deleting is always allowed and frees room again.
        r = await c.delete("/storage/col/q0")
        assert r.status_code == 200
        r = await c.delete("/storage/col/q1")
        assert r.status_code == 200
        r = await put(c, "col", "small", {"payload": "z" * 10})
        assert r.status_code == 200, r.text


async def test_quota_remaining_header_on_writes(make_server):
    # DIVERGENCE (Foxden): X-Weave-Quota-Remaining (KB, two decimals) on writes.
    srv = await make_server(enforce_quota=True, limits=StorageLimits(max_quota_limit=100_000))
    async with storage(srv) as c:
        r = await put(c, "col", "a", {"payload": "x" * 10_240})
        assert r.status_code == 200
        raw = r.headers.get("X-Weave-Quota-Remaining")
        assert raw is not None and TS_RE.match(raw.lstrip("-")), raw
        after = (100_000 - 10_240) / 1024
        before = 100_000 / 1024
        assert abs(float(raw) - after) < 0.011 or abs(float(raw) - before) < 0.011, raw
        r = await post(c, "col", [{"id": "b", "payload": "y" * 20_480}])
        assert r.status_code == 200
        raw2 = r.headers.get("X-Weave-Quota-Remaining")
        assert raw2 is not None and TS_RE.match(raw2.lstrip("-")), raw2
        assert float(raw2) < float(raw) - 9.9


async def test_default_server_enforces_quota_flag(server):
    async with storage(server) as c:
        r = await put(c, "col", "a", {"payload": "x"})
        assert r.status_code == 200
        if server.settings.enforce_quota:
            assert "X-Weave-Quota-Remaining" in r.headers


# ----------------------------------------------------------------------------- 404 / 405


async def test_unknown_paths_are_404_with_json_zero(server):
    async with storage(server, 42) as c:
        for path in ("/nonexistent/url", "/info/unknown", "/storage/col/id/extra",
                     "/info", "/storage/col/id/extra/more"):
            r = await c.get(path)
            assert_weave_error(r, 404, 0)
            hdr_ts(r, "X-Weave-Timestamp")
    for target in ("/nonexistent", "/1.5", "/1.5/abc/info/collections",
                   "/1.5/12345678901/info/collections", "/2.0/42/info/collections",
                   "/1.5/42/storage/" + "c" * 33):
        r = await raw_request(server, "GET", target)
        assert_weave_error(r, 404, 0)


async def test_methods_not_allowed_are_405_with_empty_body(server):
    s = Signer(server, 42)
    cases = [("PATCH", "/storage/xxx_col1"), ("POST", "/storage/col/id"),
             ("PUT", "/storage/col"), ("POST", "/info/collections"),
             ("DELETE", "/info/collections"), ("PUT", "/info/quota"),
             ("POST", "/info/configuration"), ("GET", "/storage"), ("PUT", "/storage"),
             ("POST", ""), ("PATCH", "/storage/col/id")]
    for method, rest in cases:
        content = b"[]" if method in ("POST", "PUT", "PATCH") else None
        ctype = "application/json" if content else None
        r = await s.send(method, rest, content=content, content_type=ctype)
        assert_empty(r, 405)
        hdr_ts(r, "X-Weave-Timestamp")
    r = await s.send("GET", "/storage/xxx_col1")
    assert r.status_code == 200


# ----------------------------------------------------------------------------- bad input


async def test_non_json_edge_cases_are_400_8_not_500(server):
    async with storage(server) as c:
        put_bodies = [
            b'{"payload": "\\ud800"}',
            b'{"payload": "x", "sortindex": NaN}',
            b'{"payload": "x", "ttl": Infinity}',
            b'{"payload": "x", "sortindex": 1e400}',
            b'{"payload": "x", "ttl": 1000000000000000000000000000000}',
            b'{"payload": "\xff\xfe"}',
            b'{"payload": "x", "sortindex": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            b'{"payload": "x", "payload": 5}',
        ]
        for body in put_bodies:
            r = await c.put("/storage/col/a", content=body,
                            headers={"Content-Type": "application/json"})
            assert_weave_error(r, 400, 8)
        post_bodies = [
            b'[{"id": "a", "payload": "\\udc00"}]',
            b'[{"id": "a", "payload": "x", "ttl": NaN}]',
            b"[" * 5000 + b"]" * 5000,
            b'[{"id": "\xc3\x28", "payload": "x"}]',
        ]
        for body in post_bodies:
            r = await c.post("/storage/col", content=body,
                             headers={"Content-Type": "application/json"})
            assert_weave_error(r, 400, 8)
        assert await get_ids(c, "col") == []


async def test_duplicate_json_keys_do_not_crash(server):
    async with storage(server) as c:
        r = await c.post("/storage/col", content=b'[{"id": "a", "id": "b", "payload": "x"}]',
                         headers={"Content-Type": "application/json"})
        assert r.status_code in (200, 400), r.text


# ----------------------------------------------------------------------------- headers


async def test_x_weave_timestamp_on_every_storage_response(server):
    async with storage(server) as c:
        t = await put_ok(c, "col", "a", {"payload": "x"})
        responses = [
            await c.get("/storage/col"),                                   # 200
            await c.get("/storage/col", headers={"X-If-Modified-Since": str(t)}),  # 304
            await c.get("/storage/col", params={"limit": "x"}),           # 400
            await c.get("/storage/col/missing"),                          # 404
            await c.get("/storage/col", headers={"Accept": "x/yy"}),      # 406
            await put(c, "col", "a", {"payload": "y"},
                      headers={"X-If-Unmodified-Since": str(t - 1)}),     # 412
            await c.put("/storage/col/a", content=b"{}"),                 # 415
            await c.get("/info/configuration"),
        ]
        for r in responses:
            stamp = hdr_ts(r, "X-Weave-Timestamp")
            assert abs(float(stamp) - time.time()) < 10
            if "X-Last-Modified" in r.headers:
                assert stamp >= hdr_ts(r)
    r = await raw_request(server, "GET", "/1.5/42/info/collections")   # 401
    assert r.status_code == 401
    hdr_ts(r, "X-Weave-Timestamp")


async def test_no_x_weave_timestamp_on_dockerflow(server):
    for path in ("/__heartbeat__", "/__lbheartbeat__", "/__version__"):
        r = await raw_request(server, "GET", path)
        assert r.status_code == 200
        assert "X-Weave-Timestamp" not in r.headers, path


async def test_get_x_weave_timestamp_not_before_request(server):
    async with storage(server) as c:
        await post_ok(c, "col", bsos(["a"]))
        before = time.time()
        r = await c.get("/storage/col")
        after = time.time()
        stamp = float(hdr_ts(r, "X-Weave-Timestamp"))
        assert before - 0.011 <= stamp <= after + 0.011


async def test_no_retry_after_on_normal_writes(server):
    async with storage(server) as c:
        for i in range(5):
            r = await put(c, "col", "a", {"payload": str(i)})
            assert r.status_code == 200
            assert "Retry-After" not in r.headers


async def test_old_firefox_ios_user_agent_is_503(server):
    # §9: RS rejects old Firefox-iOS builds (web/middleware/rejectua.rs) with 503 / 0.
    async with storage(server) as c:
        old = "Firefox-iOS-Sync/18.0b1 (iPhone; iPhone OS 13.2.2) (Fennec (synctesting))"
        r = await c.get("/info/collections", headers={"User-Agent": old})
        assert_weave_error(r, 503, 0)
        for ua in ("Firefox-iOS-Sync/120.0b1 (iPhone; iPhone OS 17.0) (Firefox)",
                   "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0"):
            r = await c.get("/info/collections", headers={"User-Agent": ua})
            assert r.status_code == 200, (ua, r.text)
