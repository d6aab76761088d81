"""/v1/profile and friends with our own access tokens; the generated avatar."""

from __future__ import annotations

from tests.conftest import LiveServer
from tests.server.oauth.helpers import (
    OLDSYNC,
    assert_fxa_error,
    create_account,
    credentials,
    post,
)


async def token_for(server: LiveServer, account, scope: str) -> str:  # type: ignore[no-untyped-def]
    r = await credentials(server, account, scope)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


async def get(server: LiveServer, path: str, token: str | None = None,
              **headers: str):  # type: ignore[no-untyped-def]
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with server.client() as c:
        return await c.get(path, headers=headers)


async def test_profile_read_etag_and_304(server: LiveServer) -> None:
    account = await create_account(server, email="Ana@Example.com")
    token = await token_for(server, account, "profile")
    r = await get(server, "/v1/profile", token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == {
        "uid": account.uid, "email": "Ana@Example.com", "locale": None, "displayName": None,
        "avatar": f"{server.url}/v1/avatar/{account.uid}.svg", "avatarDefault": True,
        "amrValues": ["pwd"], "twoFactorAuthentication": False, "subscriptions": [],
    }
    etag = r.headers["etag"]
    r = await get(server, "/v1/profile", token, **{"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
    r = await get(server, "/v1/profile", token, **{"If-None-Match": '"other"'})
    assert r.status_code == 200

    # profile:write changes the display name; the ETag follows.
    writer = await token_for(server, account, "profile:write")
    async with server.client() as c:
        r = await c.post("/v1/display_name", json={"displayName": "Ana"},
                         headers={"Authorization": f"Bearer {writer}"})
        assert r.status_code == 200 and r.json() == {}
        bad = await c.post("/v1/display_name", json={"displayName": "a\u0000b"},
                           headers={"Authorization": f"Bearer {writer}"})
        assert_fxa_error(bad, 400, 101)
        nope = await c.post("/v1/display_name", json={"displayName": "Eve"},
                            headers={"Authorization": f"Bearer {token}"})
        assert_fxa_error(nope, 403, 100)
    r = await get(server, "/v1/profile", token, **{"If-None-Match": etag})
    assert r.status_code == 200 and r.json()["displayName"] == "Ana"
    assert r.headers["etag"] != etag
    r = await get(server, "/v1/display_name", token)
    assert r.json() == {"displayName": "Ana"}


async def test_profile_errors_and_scopes(server: LiveServer) -> None:
    account = await create_account(server)
    assert_fxa_error(await get(server, "/v1/profile"), 401, 100)
    assert_fxa_error(await get(server, "/v1/profile", "not-a-token"), 401, 100)
    async with server.client() as c:
        r = await c.get("/v1/profile", headers={"Authorization": "Basic abc"})
    assert_fxa_error(r, 401, 100)
    sync_only = await token_for(server, account, OLDSYNC)
    assert_fxa_error(await get(server, "/v1/profile", sync_only), 403, 100)
    # Revoked tokens stop at once.
    token = await token_for(server, account, "profile")
    await post(server, "/v1/oauth/destroy", {"token": token})
    assert_fxa_error(await get(server, "/v1/profile", token), 401, 100)
    # An expired token is refused.
    token = await token_for(server, account, "profile")
    await server.db.write(lambda c: c.execute("UPDATE oauth_access_tokens SET expires_at = 1"))
    assert_fxa_error(await get(server, "/v1/profile", token), 401, 100)


async def test_pyfxa_style_field_routes(server: LiveServer) -> None:
    account = await create_account(server)
    token = await token_for(server, account, "profile")
    assert (await get(server, "/v1/email", token)).json() == {"email": account.email}
    assert (await get(server, "/v1/uid", token)).json() == {"uid": account.uid}
    avatar = (await get(server, "/v1/avatar", token)).json()
    assert avatar["url"] == avatar["avatar"] == f"{server.url}/v1/avatar/{account.uid}.svg"
    assert (await get(server, "/v1/display_name", token)).status_code == 204


async def test_avatar_image(server: LiveServer) -> None:
    account = await create_account(server, email="zoe@example.com")
    r = await get(server, f"/v1/avatar/{account.uid}.svg")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert b">Z</text>" in r.content and r.content.startswith(b"<svg")
    etag = r.headers["etag"]
    r = await get(server, f"/v1/avatar/{account.uid}.svg", **{"If-None-Match": etag})
    assert r.status_code == 304
    r = await get(server, f"/v1/avatar/{'0' * 32}.svg")
    assert r.status_code == 200 and b">?</text>" in r.content
    assert (await get(server, "/v1/avatar/nope.svg")).status_code == 404
    assert (await get(server, f"/v1/avatar/{account.uid}.png")).status_code == 404
