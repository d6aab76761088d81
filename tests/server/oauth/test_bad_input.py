"""Odd bodies on every OAuth/profile endpoint: always the FxA envelope, never a 500."""

from __future__ import annotations

import json

from tests.conftest import LiveServer

from .helpers import SessionHawk, create_account, credentials

ODD_BODIES: list[bytes] = [
    b"", b"null", b"0", b'"str"', b"[]", b"{", b"\xff\xfe", b'{"a": NaN}',
    json.dumps({"client_id": ["x"], "token": {"a": 1}, "scope": 5, "state": None,
                "code": 12, "ttl": True, "grant_type": 7, "refresh_token": [],
                "code_verifier": {}, "keys_jwe": 1.5, "service": ["sync"],
                "displayName": ["x"], "clientId": 1, "sessionTokenId": [],
                "refreshTokenId": {}, "deviceId": 0.5, "token_type_hint": 3}).encode(),
    json.dumps({"client_id": "5882386c6d801776", "grant_type": "refresh_token",
                "refresh_token": "g" * 64, "scope": "\u2603"}).encode(),
    json.dumps({"client_id": "5882386c6d801776", "scope": "profile", "ttl": 1e308,
                "state": "s", "code_challenge": "a" * 43,
                "code_challenge_method": "S256"}).encode(),
]

POSTS = ["/v1/oauth/authorization", "/v1/oauth/token", "/v1/oauth/destroy",
         "/v1/authorization", "/v1/token", "/v1/destroy", "/v1/verify", "/v1/introspect",
         "/v1/account/attached_client/destroy", "/v1/display_name"]


async def test_no_500_on_odd_bodies(server: LiveServer) -> None:
    account = await create_account(server)
    access = (await credentials(server, account, "profile:write")).json()["access_token"]
    for auth in (None, SessionHawk(account, server)):
        async with server.client(auth=auth) as c:
            for path in POSTS:
                for body in ODD_BODIES:
                    headers = {"Content-Type": "application/json"}
                    if path == "/v1/display_name":
                        headers["Authorization"] = f"Bearer {access}"
                    r = await c.post(path, content=body, headers=headers)
                    assert r.status_code < 500, (path, body, r.status_code, r.text)
                    if r.status_code >= 400:
                        err = r.json()
                        assert err["code"] == r.status_code and isinstance(err["errno"], int)
                    assert "date" in r.headers  # HAWK clock sync (firefox-signin.md §3.5)
    async with server.client() as c:
        for path in ("/v1/profile", "/v1/email", "/v1/uid", "/v1/avatar", "/v1/display_name",
                     "/v1/account/attached_clients", "/v1/client/%00", "/v1/avatar/..svg"):
            for header in ("Bearer", "Bearer x y", "Bearer " + "x" * 9000, "Hawk id=1", "\u00e9"):
                r = await c.get(path, headers={"Authorization": header.encode("utf-8")})
                assert r.status_code < 500, (path, header, r.status_code)
