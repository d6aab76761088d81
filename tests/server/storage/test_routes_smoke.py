"""End-to-end smoke tests over a real Hypercorn + SQLCipher: the main flows of every route."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx

from server.settings import StorageLimits
from server.storage import purge_all
from tests.conftest import HawkAuth, LiveServer

TS = re.compile(r"^[0-9]+\.[0-9]{2}$")


def body_ts(r: httpx.Response) -> str:
    assert TS.match(r.text), r.text
    return r.text


async def test_put_get_and_two_decimal_timestamps(server: LiveServer) -> None:
    async with server.storage_client(11) as c:
        r = await c.put("/storage/meta/global", json={"payload": "blob", "modified": 12})
        assert r.status_code == 200
        ts = body_ts(r)
        assert r.headers["X-Last-Modified"] == ts == r.headers["X-Weave-Timestamp"]
        assert TS.match(r.headers["X-Weave-Quota-Remaining"])
        r = await c.get("/storage/meta/global")
        assert re.search(r'"modified":\s*[0-9]+\.[0-9][0-9]\s*[,}]', r.text)
        assert r.json() == {"id": "global", "modified": float(ts), "payload": "blob"}
        assert r.headers["X-Last-Modified"] == ts
        r = await c.get("/info/collections")
        assert r.text == f'{{"meta":{ts}}}' and r.headers["X-Weave-Records"] == "1"
        assert r.headers["X-Last-Modified"] == ts


async def test_post_list_page_and_newlines(server: LiveServer) -> None:
    async with server.storage_client(12) as c:
        items = [{"id": f"{i:02d}", "payload": "x", "sortindex": i} for i in range(5)]
        items.append({"id": "bad\n", "payload": "x"})
        r = await c.post("/storage/col", json=items)
        res = r.json()
        assert r.status_code == 200 and len(res["success"]) == 5 and list(res["failed"]) == [
            "bad\n"]
        assert TS.match(r.headers["X-Last-Modified"])
        assert re.match(r'\{"modified":[0-9]+\.[0-9]{2},', r.text)
        r = await c.get("/storage/col", params={"sort": "index", "limit": 2})
        assert r.json() == ["04", "03"] and r.headers["X-Weave-Records"] == "2"
        r = await c.get("/storage/col", params={"sort": "index", "limit": 2,
                                                "offset": r.headers["X-Weave-Next-Offset"]})
        assert r.json() == ["02", "01"]
        r = await c.get("/storage/col", params={"full": "1", "limit": 2})
        first = r.json()
        r = await c.get("/storage/col", params={"full": "1", "limit": 10,
                                                "offset": r.headers["X-Weave-Next-Offset"]})
        assert len(first + r.json()) == 5 and "X-Weave-Next-Offset" not in r.headers
        r = await c.get("/storage/col", headers={"Accept": "application/newlines"})
        assert r.headers["Content-Type"] == "application/newlines"
        assert sorted(json.loads(line) for line in r.text.splitlines()) == [
            f"{i:02d}" for i in range(5)]
        assert (await c.get("/storage/col", headers={"Accept": "x/yy"})).status_code == 406
        body = "\n".join(json.dumps({"id": f"n{i}", "payload": "a\nb"}) for i in range(2))
        r = await c.post("/storage/nl", content=body,
                         headers={"Content-Type": "application/newlines"})
        assert r.status_code == 200 and r.json()["success"] == ["n0", "n1"]
        assert (await c.get("/storage/nl/n0")).json()["payload"] == "a\nb"


async def test_deletes_and_tombstone(server: LiveServer) -> None:
    async with server.storage_client(13) as c:
        await c.post("/storage/a", json=[{"id": "1", "payload": "x"}, {"id": "2"}])
        ts_a = (await c.get("/info/collections")).headers["X-Last-Modified"]
        r = await c.delete("/storage/a/1")
        # The header keeps the BSO's old time; the body carries the new one.
        assert r.status_code == 200 and r.headers["X-Last-Modified"] == ts_a
        assert re.fullmatch(r'\{"modified":[0-9]+\.[0-9]{2}\}', r.text)
        assert r.headers["X-Weave-Timestamp"] == r.text[12:-1]
        assert (await c.delete("/storage/a/1")).text == "0"
        r = await c.delete("/storage/a", params={"ids": "2,3"})
        assert r.headers["X-Last-Modified"] == body_ts(r)
        assert "a" in (await c.get("/info/collections")).json()
        before = (await c.get("/info/collections")).headers["X-Last-Modified"]
        r = await c.delete("/storage/a")
        assert r.status_code == 200 and float(body_ts(r)) > float(before)
        assert float(r.headers["X-Weave-Timestamp"]) >= float(r.text)
        r = await c.get("/info/collections")
        assert r.json() == {} and float(r.headers["X-Last-Modified"]) > float(before)
        storage_ts = (await c.get("/info/collections")).headers["X-Last-Modified"]
        r = await c.delete("/storage/never")
        assert (r.status_code, body_ts(r)) == (200, storage_ts)
        r = await c.delete("/storage")
        assert r.status_code == 200 and r.text == "null"
        assert (await c.get("/info/collections")).headers["X-Last-Modified"] == "0.00"


async def test_preconditions_304_412(server: LiveServer) -> None:
    async with server.storage_client(14) as c:
        ts = (await c.put("/storage/col/a", json={"payload": "x"})).text
        r = await c.get("/storage/col/a", headers={"X-If-Modified-Since": ts})
        assert r.status_code == 304 and r.content == b"" and r.headers["X-Last-Modified"] == ts
        assert "Content-Type" not in r.headers
        r = await c.put("/storage/col/a", json={"payload": "y"},
                        headers={"X-If-Unmodified-Since": str(float(ts) - 1)})
        assert r.status_code == 412 and r.content == b""
        assert (await c.get("/storage/col/a")).json()["payload"] == "x"
        r = await c.put("/storage/col/new", json={"payload": "z"},
                        headers={"X-If-Unmodified-Since": "0"})
        assert r.status_code == 200
        r = await c.get("/info/quota", headers={"X-If-Modified-Since": r.text})
        assert r.status_code == 304
        for bad in ({"X-If-Modified-Since": "-3"},
                    {"X-If-Modified-Since": "1", "X-If-Unmodified-Since": "1"}):
            r = await c.get("/storage/col", headers=bad)
            assert (r.status_code, r.text) == (400, "0")


async def test_batches_and_known_faults(server: LiveServer) -> None:
    async with server.storage_client(15) as c:
        await c.post("/storage/col", json=[{"id": "k", "payload": "keep", "sortindex": 17}])
        orig = (await c.get("/storage/col/k")).headers["X-Last-Modified"]
        r = await c.post("/storage/col", params={"batch": "true"},
                         json=[{"id": "a", "payload": "A1"}, {"id": "b", "payload": "B1"}])
        assert r.status_code == 202 and r.headers["X-Last-Modified"] == orig
        bid = r.json()["batch"]
        # Fault 1: re-sending one staged record keeps the others.
        r = await c.post("/storage/col", params={"batch": bid}, json=[{"id": "a", "payload": "A2"}])
        assert r.status_code == 202 and r.json() == {"success": ["a"], "failed": {},
                                                     "batch": bid}
        assert sorted((await c.get("/storage/col")).json()) == ["k"]
        r = await c.post("/storage/col", params={"batch": bid, "commit": "true"},
                         json=[{"id": "k", "ttl": 100}])
        assert r.status_code == 200
        committed = r.json()["modified"]
        got = {b["id"]: b for b in (await c.get("/storage/col", params={"full": 1})).json()}
        assert got["a"]["payload"] == "A2" and got["b"]["payload"] == "B1"
        assert got["k"]["sortindex"] == 17 and got["a"]["modified"] == committed
        # The batch is gone once committed.
        r = await c.post("/storage/col", params={"batch": bid}, json=[])
        assert (r.status_code, r.text) == (400, "0")
        # Fault 2: DELETE storage drops open batches.
        bid = (await c.post("/storage/col", params={"batch": "true"},
                            json=[{"id": "z", "payload": "staged"}])).json()["batch"]
        assert (await c.delete("/storage")).status_code == 200
        r = await c.post("/storage/col", params={"batch": bid, "commit": "true"}, json=[])
        assert r.status_code == 400
        assert (await c.get("/storage/col")).json() == []
        # Scoping and malformed batch parameters.
        bid = (await c.post("/storage/one", params={"batch": "true"}, json=[])).json()["batch"]
        for params in ({"batch": bid}, {"batch": "sammich"}, {"commit": "true"},
                       {"batch": bid, "commit": "no"}):
            assert (await c.post("/storage/two", params=params, json=[])).status_code == 400
    async with server.storage_client(16) as other:
        r = await other.post("/storage/one", params={"batch": bid}, json=[])
        assert r.status_code == 400


async def test_batch_commit_without_ttl_never_expires(server: LiveServer) -> None:
    """Fault 3, end to end: a batch-committed record without ttl keeps the default TTL."""
    async with server.storage_client(17) as c:
        bid = (await c.post("/storage/col", params={"batch": "true"},
                            json=[{"id": "a", "payload": "x"}])).json()["batch"]
        await c.post("/storage/col", params={"batch": bid, "commit": "true"}, json=[])

    def expiry(conn: Any) -> int:
        sql = "SELECT expiry - modified FROM storage_bso WHERE uid = 17"
        return conn.execute(sql).fetchone()[0]

    assert await server.db.read(expiry) == 2_100_000_000 * 1000


async def test_auth_failures(server: LiveServer) -> None:
    async with server.client() as c:
        r = await c.get("/1.5/1/info/collections")
        assert (r.status_code, r.text) == (401, "0")
        assert TS.match(r.headers["X-Weave-Timestamp"])
    async with server.storage_client(18) as c:
        r = await c.get(f"{server.url}/1.5/19/info/collections")
        assert (r.status_code, r.text) == (400, "0")
    async with server.storage_client(20, expires_in=-60) as c:
        assert (await c.get("/info/collections")).status_code == 200
        assert (await c.get("/info/quota")).status_code == 401
    async with server.storage_client(21) as c:
        r = await c.get("/info/quota")
        replay = r.request
        again = await c.send(httpx.Request(replay.method, replay.url, headers=replay.headers),
                             auth=None)
        assert again.status_code == 401


async def test_payload_hash_is_verified(server: LiveServer) -> None:
    creds = server.mint_token(22)
    auth = HawkAuth(creds["id"], creds["key"], server.settings, with_hash=True)
    async with httpx.AsyncClient(base_url=f"{server.url}/1.5/22", auth=auth) as c:
        assert (await c.put("/storage/col/a", json={"payload": "x"})).status_code == 200
        req = c.build_request("PUT", "/storage/col/a", json={"payload": "x"})
        signed = next(auth.auth_flow(req))
        tampered = httpx.Request("PUT", signed.url, headers=signed.headers,
                                 content=signed.content.replace(b"x", b"y"))
        assert (await c.send(tampered, auth=None)).status_code == 401


async def test_routing_404_405_and_bad_input(server: LiveServer) -> None:
    async with server.storage_client(23) as c:
        for path in ("/nonexistent/url", "/storage/", "/storage/a%0A", "/storage/" + "c" * 33,
                     "/storage/col/" + "x" * 65, "/info/collections/", "/storage/col/a%0A"):
            r = await c.get(path)
            assert (r.status_code, r.text, r.headers["Content-Type"]) == (
                404, "0", "application/json"), path
        for method, path in (("PATCH", "/storage/col"), ("POST", "/info/collections"),
                             ("PUT", "/storage/col"), ("GET", "/storage"), ("HEAD", "/info/quota")):
            r = await c.request(method, path)
            assert r.status_code == 405 and r.content == b"", (method, path)
        checks = [
            ("PUT", "/storage/col/a", b"{", "application/json", 400, "8"),
            ("PUT", "/storage/col/a", b'{"payload":"x"}', "application/octet-stream", 415, "0"),
            ("PUT", "/storage/col/a", b'{"payload":"x"}', "", 415, "0"),
            ("PUT", "/storage/col/a", b"\xff\xfe", "application/json", 400, "8"),
            ("PUT", "/storage/col/a", b'{"sortindex": true}', "application/json", 400, "8"),
            ("PUT", "/storage/col/a", b'{"ttl": 1e400}', "application/json", 400, "8"),
            ("POST", "/storage/col", b"[" * 50000, "application/json", 400, "8"),
            ("POST", "/storage/col", b'[{"id": "a"}]', "text/html", 415, "0"),
        ]
        for method, path, body, ctype, status, text in checks:
            headers = {"Content-Type": ctype} if ctype else {}
            r = await c.request(method, path, content=body, headers=headers)
            assert (r.status_code, r.text) == (status, text), (method, path, body[:20])
        r = await c.post("/storage/col", json=[], headers={"X-Weave-Records": "x"})
        assert (r.status_code, r.text) == (400, "0")
        r = await c.post("/storage/col", json=[], headers={"X-Weave-Total-Bytes": "999999999"})
        assert (r.status_code, r.text) == (400, "17")
        big = b'{"payload":"' + b"x" * server.settings.limits.max_request_bytes + b'"}'
        r = await c.put("/storage/col/a", content=big, headers={"Content-Type": "text/plain"})
        assert (r.status_code, r.text) == (413, "17")
        r = await c.get("/storage/col", params={"limit": "-1"})
        assert (r.status_code, r.text) == (400, "0")


async def test_configuration_cors_and_weave_timestamp(server: LiveServer) -> None:
    async with server.client() as c:
        r = await c.get("/1.5/5/info/configuration")
        assert r.status_code == 200 and r.headers["X-Last-Modified"] == "0.00"
        assert r.json() == server.settings.limits.as_json()
        r = await c.options("/1.5/5/__heartbeat__", headers={
            "Origin": "localhost", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Content-Type"})
        assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "localhost"
        assert r.headers["Access-Control-Max-Age"] == "1728000"
        r = await c.get("/1.5/5/info/configuration", headers={"Origin": "https://x.example"})
        assert r.headers["Access-Control-Allow-Origin"] == "https://x.example"
        now = time.time()
        r = await c.get("/1.0/sync/1.5")
        assert TS.match(r.headers["X-Weave-Timestamp"])
        assert abs(float(r.headers["X-Weave-Timestamp"]) - now) < 5
        assert "X-Weave-Timestamp" not in (await c.get("/__heartbeat__")).headers
        assert "X-Weave-Timestamp" not in (await c.get("/__lbheartbeat__")).headers
        r = await c.get("/1.5/5/info/collections", headers={
            "User-Agent": "Firefox-iOS-Sync/18.0b1 (iPhone; iPhone OS 13.2.2) (Fennec (x))"})
        assert (r.status_code, r.text) == (503, "0")


async def test_quota_is_enforced(make_server: Any) -> None:
    srv = await make_server(limits=StorageLimits(max_quota_limit=1000))
    async with srv.storage_client(24) as c:
        r = await c.put("/storage/col/a", json={"payload": "x" * 600})
        assert r.status_code == 200 and r.headers["X-Weave-Quota-Remaining"] == "0.39"
        assert (await c.get("/info/quota")).json() == [600 / 1024, 1000 / 1024]
        r = await c.put("/storage/col/b", json={"payload": "x" * 401})
        assert (r.status_code, r.text) == (403, "14")
        r = await c.post("/storage/col", params={"batch": "true"},
                         json=[{"id": "c", "payload": "x" * 401}])
        assert (r.status_code, r.text) == (403, "14")
        assert (await c.put("/storage/col/a", json={"payload": "x" * 100})).status_code == 200
        assert (await c.put("/storage/col/b", json={"payload": "x" * 401})).status_code == 200


async def test_purge_is_callable(server: LiveServer) -> None:
    async with server.storage_client(25) as c:
        await c.put("/storage/col/gone", json={"payload": "x", "ttl": 0})
        await c.put("/storage/col/kept", json={"payload": "x"})
    assert await purge_all(server.db, now=int(time.time() * 1000) + 10) >= 1

    def ids(conn: Any) -> list[str]:
        return [r[0] for r in conn.execute("SELECT id FROM storage_bso WHERE uid = 25")]

    assert await server.db.read(ids) == ["kept"]


async def test_unread_bodies_do_not_stall_keep_alive(server: LiveServer) -> None:
    """An early 401/413 must not leave the connection waiting for the old body."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        for size in (1_000_000, server.settings.limits.max_request_bytes + 1):
            r = await c.put("/1.5/1/storage/col/a", content=b"x" * size,
                            headers={"Content-Type": "application/json"})
            assert r.status_code == 401
            r = await c.get("/1.5/1/info/configuration")
            assert r.status_code == 200
