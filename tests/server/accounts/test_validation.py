"""Bad input everywhere: 106 for non-JSON, 108 + param for a missing field, 107 for a bad
one, 413/113 for a large body — and never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from .helpers import AccountsServer, add_account, assert_fxa_error, login

EMAIL, PASSWORD = "v@example.org", "validation"
HEX32 = "ab" * 32

UNAUTHENTICATED = {
    "/v1/account/create": {"email": EMAIL, "authPW": HEX32},
    "/v1/account/login": {"email": EMAIL, "authPW": HEX32},
    "/v1/account/status": {"email": EMAIL},
    "/v1/account/credentials/status": {"email": EMAIL},
    "/v1/password/change/start": {"email": EMAIL, "oldAuthPW": HEX32},
}
SESSION = {
    "/v1/account/scoped-key-data": {"client_id": "5882386c6d801776", "scope": "profile"},
    "/v1/account/destroy": {"email": EMAIL, "authPW": HEX32},
    "/v1/account/device": {"name": "n"},
    "/v1/account/device/destroy": {"id": "ab" * 16},
    "/v1/account/devices/notify": {"to": "all", "payload": {}},
    "/v1/account/devices/invoke_command": {"command": "c", "target": "ab" * 16,
                                           "payload": {}},
}
JUNK = [None, 0, -1, 1.5, True, "", "x", "é" * 300, "ab" * 33, [], {}, [1], {"a": 1},
        "\ud800", "0" * 64 + "\u0000", 10**30]


@pytest.fixture
async def session(srv: AccountsServer) -> AsyncIterator[str]:
    await add_account(srv.db, EMAIL, PASSWORD)
    async with srv.client() as c:
        yield (await login(c, EMAIL, PASSWORD, keys=False))["sessionToken"]


@pytest.mark.parametrize("path", sorted(UNAUTHENTICATED))
async def test_unauthenticated_bodies(srv: AccountsServer, path: str) -> None:
    valid = UNAUTHENTICATED[path]
    async with srv.client() as c:
        assert_fxa_error(await c.post(path, content=b"{not json"), 400, 106)
        assert_fxa_error(await c.post(path, content=b"\xff\xfe"), 400, 106)
        assert_fxa_error(await c.post(path, content=b""), 400, 106)
        assert_fxa_error(await c.post(path, content=b"NaN"), 400, 106)
        assert_fxa_error(await c.post(path, json=[valid]), 400, 107)
        for name in valid:
            partial = {k: v for k, v in valid.items() if k != name}
            body = assert_fxa_error(await c.post(path, json=partial), 400, 108)
            assert body["param"] == name
            for junk in JUNK:
                r = await c.post(path, content=json.dumps({**valid, name: junk}).encode(),
                                 headers={"Content-Type": "application/json"})
                assert r.status_code < 500, (name, junk, r.text)
                assert r.json()["errno"] in (102, 107, 114), (name, junk, r.text)


@pytest.mark.parametrize("path", sorted(SESSION))
async def test_session_bodies(srv: AccountsServer, session: str, path: str) -> None:
    valid = SESSION[path]
    async with srv.hawk(session) as h:
        assert_fxa_error(await h.post(path, content=b"{not json",
                                      headers={"Content-Type": "application/json"}), 400, 106)
        assert_fxa_error(await h.post(path, json="string"), 400, 107)
        for name in valid:
            for junk in JUNK:
                r = await h.post(path, content=json.dumps({**valid, name: junk}).encode(),
                                 headers={"Content-Type": "application/json"})
                assert r.status_code < 500, (name, junk, r.text)
                assert "errno" in r.json() or r.status_code == 200, r.text


async def test_specific_field_errors(srv: AccountsServer) -> None:
    async with srv.client() as c:
        for auth_pw in ["ab" * 31, "zz" * 32, "ab" * 32 + "a", 5, None]:
            r = await c.post("/v1/account/login", json={"email": EMAIL, "authPW": auth_pw})
            assert_fxa_error(r, 400, 107)
        for email in ["no-at-sign", "a@b", "a@@b.org", "a b@example.org", "x" * 250 + "@a.org",
                      "a@exa_mple.org", 42]:
            r = await c.post("/v1/account/login", json={"email": email, "authPW": HEX32})
            body = assert_fxa_error(r, 400, 107)
            assert body["validation"]["keys"] == ["email"]
        # Unicode is fine in both halves, as Mozilla's punycode check allows.
        r = await c.post("/v1/account/login", json={"email": "andré@exämple.org",
                                                    "authPW": HEX32})
        assert_fxa_error(r, 400, 102)
        assert_fxa_error(await c.post("/v1/account/login?keys=maybe",
                                      json={"email": EMAIL, "authPW": HEX32}), 400, 107)
        v2_partial = {"email": EMAIL, "authPW": HEX32, "authPWVersion2": HEX32}
        assert_fxa_error(await c.post("/v1/account/create", json=v2_partial), 400, 107)
        bad_salt = {**v2_partial, "wrapKb": HEX32, "wrapKbVersion2": HEX32,
                    "clientSalt": "identity.mozilla.com/picl/v1/quickStretchV2:XYZ"}
        assert_fxa_error(await c.post("/v1/account/create", json=bad_salt), 400, 107)


async def test_body_too_large(srv: AccountsServer, session: str) -> None:
    big = b'{"email":"' + b"a" * 300_000 + b'"}'
    async with srv.client() as c:
        assert_fxa_error(await c.post("/v1/account/login", content=big), 413, 113)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b" " * 4096

        assert_fxa_error(await c.post("/v1/account/status", content=chunks()), 413, 113)
    async with srv.hawk(session) as h:
        r = await h.post("/v1/account/device", content=big,
                         headers={"Content-Type": "application/json"})
        assert_fxa_error(r, 413, 113)


async def test_unknown_routes_and_methods_speak_fxa(srv: AccountsServer) -> None:
    async with srv.client() as c:
        nf = await c.get("/v1/account/nothing-here")
        assert nf.status_code == 404 and "errno" in nf.json()
        wrong = await c.get("/v1/account/login")
        assert wrong.status_code == 405 and "errno" in wrong.json()
