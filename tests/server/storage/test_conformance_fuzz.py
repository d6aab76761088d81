"""Conformance: bad input never gives a 500 (spec §9), plus a few checked properties.

Hypothesis runs in a worker thread and drives requests on the Trio loop through
``trio.from_thread.run`` (pytest-trio's own @given support does not mix with the
live-server fixture). Bounded: few examples, no deadline.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conformance_helpers import (
    TS_RE,
    jl,
    shared_server_fixture,
    storage,
)

server = shared_server_fixture  # one live server per session, private uids per test

SETTINGS = settings(max_examples=30, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))

# No lone surrogates: those make the JSON itself invalid (tested in limits_errors).
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)
ASCII = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
JSON_SCALARS = st.none() | st.booleans() | st.integers(-2**40, 2**40) | TEXT | \
    st.floats(allow_nan=False, allow_infinity=False)
JSON = st.recursive(JSON_SCALARS, lambda kids: st.lists(kids, max_size=4)
                    | st.dictionaries(TEXT, kids, max_size=4), max_leaves=12)
FIELD_VALUES = JSON_SCALARS | st.integers(-10**10, 10**10) | st.lists(JSON_SCALARS, max_size=2)
BSO_KEYS = st.sampled_from(["sortindex", "payload", "ttl", "modified", "collection", "bogus"])
PARAM_NAMES = st.sampled_from(["newer", "older", "limit", "offset", "sort", "ids", "full",
                               "batch", "commit", "x"])


def check_error_shape(status: int, text: str, headers) -> None:
    assert status < 500, (status, text)
    assert "X-Weave-Timestamp" in headers
    assert TS_RE.match(headers["X-Weave-Timestamp"])
    if status in (400, 404, 406, 413, 415):
        assert text in ("0", "8", "17"), (status, text)


def run_in_thread(fn):
    return trio.to_thread.run_sync(fn)


async def test_fuzz_collection_query_parameters(server):
    async with storage(server) as c:
        r = await c.post("/storage/col", json=[{"id": str(i), "payload": "p", "sortindex": i}
                                               for i in range(5)])
        assert r.status_code == 200

        async def probe(params):
            r = await c.get("/storage/col", params=params)
            return r.status_code, r.text, r.headers

        @SETTINGS
        @given(st.dictionaries(PARAM_NAMES, TEXT, max_size=4))
        def inner(params):
            status, text, headers = trio.from_thread.run(probe, params)
            check_error_shape(status, text, headers)
            assert status in (200, 400), (params, status, text)
            if status == 400:
                assert text == "0"
            else:
                json.loads(text)

        await run_in_thread(inner)


async def test_fuzz_post_bodies_any_json(server):
    async with storage(server) as c:
        async def probe(body):
            r = await c.post("/storage/fz", content=body.encode(),
                             headers={"Content-Type": "application/json"})
            return r.status_code, r.text, r.headers

        @SETTINGS
        @given(JSON)
        def inner(value):
            status, text, headers = trio.from_thread.run(probe, json.dumps(value))
            check_error_shape(status, text, headers)
            assert status in (200, 400), (value, status, text)
            if status == 400:
                assert text == "8"
            well_formed = (isinstance(value, list)
                           and all(isinstance(v, dict) and isinstance(v.get("id"), str)
                                   for v in value)
                           and len({v["id"] for v in value}) == len(value))
            assert (status == 200) == well_formed, (value, status, text)

        await run_in_thread(inner)


async def test_fuzz_post_items_property(server):
    async with storage(server) as c:
        async def probe(items):
            r = await c.post("/storage/items", json=items)
            got = {}
            if r.status_code == 200:
                g = await c.get("/storage/items", params={"full": "1"})
                got = {i["id"]: i for i in jl(g)}
            return r.status_code, r.text, r.headers, got

        item = st.fixed_dictionaries({"id": ASCII}, optional={
            "payload": FIELD_VALUES, "sortindex": FIELD_VALUES, "ttl": FIELD_VALUES,
        }) | st.builds(lambda bid, extra: {"id": bid, **extra}, ASCII,
                       st.dictionaries(BSO_KEYS, FIELD_VALUES, max_size=3))

        @SETTINGS
        @given(st.lists(item, max_size=6, unique_by=lambda i: i["id"]))
        def inner(items):
            status, text, headers, got = trio.from_thread.run(probe, items)
            check_error_shape(status, text, headers)
            assert status == 200, (items, status, text)
            body = json.loads(text)
            ok, failed = set(body["success"]), set(body["failed"])
            assert not ok & failed
            assert ok | failed == {i["id"] for i in items}
            for it in items:
                if it["id"] in ok:
                    stored = got.get(it["id"])
                    ttl = it.get("ttl")
                    if ttl == 0:
                        continue
                    assert stored is not None, it
                    if isinstance(it.get("payload"), str):
                        assert stored["payload"] == it["payload"]
                    si = it.get("sortindex")
                    if isinstance(si, int) and not isinstance(si, bool):
                        assert stored["sortindex"] == it["sortindex"]

        await run_in_thread(inner)


async def test_fuzz_put_bodies(server):
    async with storage(server) as c:
        async def probe(body):
            r = await c.put("/storage/fz/item", content=json.dumps(body).encode(),
                            headers={"Content-Type": "application/json"})
            return r.status_code, r.text, r.headers

        @SETTINGS
        @given(st.dictionaries(BSO_KEYS | st.just("id"), FIELD_VALUES, max_size=4) | JSON)
        def inner(body):
            status, text, headers = trio.from_thread.run(probe, body)
            check_error_shape(status, text, headers)
            assert status in (200, 400), (body, status, text)
            if status == 400:
                assert text == "8"
            else:
                assert TS_RE.match(text)

        await run_in_thread(inner)


async def test_fuzz_raw_bodies_and_content_types(server):
    async with storage(server) as c:
        async def probe(path, body, ctype):
            r = await c.request("POST" if path.count("/") == 2 else "PUT", path,
                                content=body, headers={"Content-Type": ctype})
            return r.status_code, r.text, r.headers

        ctypes = st.sampled_from(["application/json", "application/newlines", "text/plain",
                                  "application/octet-stream", "application/json; charset=x"])

        @SETTINGS
        @given(st.sampled_from(["/storage/raw", "/storage/raw/x"]), st.binary(max_size=200),
               ctypes)
        def inner(path, body, ctype):
            status, text, headers = trio.from_thread.run(probe, path, body, ctype)
            check_error_shape(status, text, headers)
            assert status in (200, 400, 415), (status, text)
            if ctype == "application/octet-stream":
                assert status == 415

        await run_in_thread(inner)


async def test_fuzz_headers(server):
    async with storage(server) as c:
        r = await c.put("/storage/h/a", json={"payload": "x"})
        assert r.status_code == 200
        names = st.sampled_from(["X-If-Modified-Since", "X-If-Unmodified-Since",
                                 "X-Weave-Records", "X-Weave-Bytes", "X-Weave-Total-Records",
                                 "X-Weave-Total-Bytes", "Accept"])
        header_text = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E),
                              min_size=1, max_size=16)

        async def probe(method, headers):
            if method == "POST":
                r = await c.post("/storage/h", json=[{"id": "b", "payload": "y"}],
                                 headers=headers)
            else:
                r = await c.get("/storage/h", headers=headers)
            return r.status_code, r.text, r.headers

        @SETTINGS
        @given(st.sampled_from(["GET", "POST"]), st.dictionaries(names, header_text, max_size=3))
        def inner(method, headers):
            status, text, hdrs = trio.from_thread.run(probe, method, headers)
            check_error_shape(status, text, hdrs)
            assert status in (200, 304, 400, 406, 412), (headers, status, text)
            if status in (304, 412):
                assert text == ""

        await run_in_thread(inner)


async def test_fuzz_paths(server):
    async with storage(server) as c:
        segment = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                          min_size=1, max_size=70).filter(lambda s: s not in (".", ".."))

        async def probe(coll, bid):
            path = f"/storage/{quote(coll, safe='')}"
            if bid is not None:
                path += "/" + quote(bid, safe="")
            r = await c.get(path)
            return r.status_code, r.text, r.headers

        @SETTINGS
        @given(segment, st.none() | segment)
        def inner(coll, bid):
            status, text, headers = trio.from_thread.run(probe, coll, bid)
            assert status < 500, (coll, bid, status, text)
            assert status in (200, 404), (coll, bid, status, text)
            if status == 404:
                assert text == "0"

        await run_in_thread(inner)
