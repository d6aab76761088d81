"""Conformance: CORS (spec §1: any origin echoed, Max-Age 1728000, preflight on any path)."""

from __future__ import annotations

from .conformance_helpers import (
    raw_request,
    shared_server_fixture,
    storage,
)

server = shared_server_fixture  # one live server per session, private uids per test

MAX_AGE = "1728000"


def _tokens(value: str | None) -> set[str]:
    return {v.strip().lower() for v in (value or "").split(",") if v.strip()}


async def preflight(server, path, origin="localhost", method="GET", headers="Content-Type"):
    return await raw_request(server, "OPTIONS", path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    })


async def test_cors_settings_are_set(server):
    r = await preflight(server, "/1.5/42/__heartbeat__")
    assert r.status_code == 200, r.text
    assert r.headers["access-control-max-age"] == MAX_AGE
    assert r.headers["access-control-allow-origin"] == "localhost"


async def test_cors_allows_any_origin(server):
    for origin in ("http://test-website.com", "https://example.org:8443", "null"):
        r = await preflight(server, "/1.5/42/__heartbeat__", origin=origin)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == origin


async def test_preflight_on_storage_routes(server):
    wanted = ["Authorization", "Content-Type", "X-Weave-Records", "X-Weave-Bytes",
              "X-Weave-Total-Records", "X-Weave-Total-Bytes", "X-Last-Modified"]
    for path in ("/1.5/42/storage/bookmarks", "/1.5/42/storage/bookmarks/abc",
                 "/1.5/42/info/collections", "/1.5/42", "/some/unknown/path"):
        for method in ("GET", "PUT", "POST", "DELETE"):
            r = await preflight(server, path, origin="moz-extension://abc", method=method,
                                headers=", ".join(wanted))
            assert r.status_code == 200, (path, method, r.status_code)
            assert r.headers["access-control-allow-origin"] == "moz-extension://abc"
            assert r.headers["access-control-max-age"] == MAX_AGE
            methods = _tokens(r.headers.get("access-control-allow-methods"))
            assert {"delete", "get", "post", "put"} <= methods or "*" in methods, methods
            allowed = _tokens(r.headers.get("access-control-allow-headers"))
            assert "*" in allowed or {h.lower() for h in wanted} <= allowed, allowed


async def test_preflight_needs_no_auth(server):
    r = await preflight(server, "/1.5/42/storage/col", method="DELETE")
    assert r.status_code == 200
    assert "www-authenticate" not in r.headers


async def test_actual_responses_echo_the_origin(server):
    r = await raw_request(server, "GET", "/1.5/42/info/configuration",
                          headers={"Origin": "http://test-website.com"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://test-website.com"
    async with storage(server) as c:
        r = await c.get("/info/collections", headers={"Origin": "https://a.example"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://a.example"
