"""refresh_token and fxa-credentials grants, the tokenserver accepting what we mint,
revocation through sessions, and the legacy OAuth-server routes."""

from __future__ import annotations

from server.crypto import onepw
from tests.conftest import LiveServer

from .helpers import (
    DESKTOP,
    FENIX,
    OLDSYNC,
    SYNC_SCOPE,
    SessionHawk,
    assert_fxa_error,
    authorize,
    create_account,
    credentials,
    exchange,
    jwt_claims,
    post,
)

TOKEN = "/v1/oauth/token"


def key_id(account) -> str:  # type: ignore[no-untyped-def]
    return onepw.oldsync_kid(account.kb, account.keys_changed_at)


async def tokenserver(server: LiveServer, access_token: str, kid: str) -> int:
    async with server.client() as c:
        r = await c.get("/1.0/sync/1.5", headers={"Authorization": f"Bearer {access_token}",
                                                  "X-KeyID": kid})
    return r.status_code


async def test_fxa_credentials_with_ttl_and_tokenserver(server: LiveServer) -> None:
    account = await create_account(server)
    r = await credentials(server, account, OLDSYNC, ttl=21600)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "scope", "token_type", "expires_in", "auth_at"}
    assert body["expires_in"] == 21600 and body["scope"] == OLDSYNC
    claims = jwt_claims(body["access_token"])
    assert claims["exp"] - claims["iat"] == 21600
    assert await tokenserver(server, body["access_token"], key_id(account)) == 200

    # A profile token is not for the tokenserver (no oldsync scope, no tokenserver aud).
    r = await credentials(server, account, "profile")
    assert r.status_code == 200 and r.json()["scope"] == "profile"
    assert r.json()["expires_in"] == 24 * 3600  # default = cap
    assert await tokenserver(server, r.json()["access_token"], key_id(account)) == 401
    # ttl is capped.
    r = await credentials(server, account, "profile", ttl=10**9)
    assert r.json()["expires_in"] == 24 * 3600
    # access_type=offline on fxa-credentials also yields a refresh token.
    r = await credentials(server, account, "profile", access_type="offline")
    refresh = r.json()["refresh_token"]
    r = await post(server, TOKEN, {"grant_type": "refresh_token", "client_id": DESKTOP,
                                   "refresh_token": refresh})
    assert r.status_code == 200 and r.json()["scope"] == "profile"


async def test_code_grant_token_accepted_by_tokenserver(server: LiveServer) -> None:
    account = await create_account(server)
    authz, verifier = await authorize(server, account)
    r = await exchange(server, authz["code"], verifier, account=account)
    assert await tokenserver(server, r.json()["access_token"], key_id(account)) == 200


async def test_fxa_credentials_rejections(server: LiveServer) -> None:
    account = await create_account(server)
    for scope in ("https://identity.mozilla.com/apps/relay",
                  "https://identity.mozilla.com/apps/monitor",
                  "https://identity.mozilla.com/apps/vpn",
                  "https://identity.mozilla.com/apps/smartwindow"):
        body = assert_fxa_error(await credentials(server, account, scope), 400, 114)
        assert body["invalidScopes"] == [scope]
    assert_fxa_error(await credentials(server, account, ""), 400, 108)
    assert_fxa_error(await credentials(server, account, "profile", client_id="0" * 16),
                     400, 101)
    assert_fxa_error(await credentials(server, account, "profile", access_type="x"), 400, 107)
    # No session: 401/110, whatever the body.
    r = await post(server, TOKEN, {"client_id": DESKTOP, "grant_type": "fxa-credentials",
                                   "scope": "profile"})
    assert_fxa_error(r, 401, 110)
    # grant_type defaults to fxa-credentials on /v1/oauth/token when there is no code.
    async with server.client(auth=SessionHawk(account, server)) as c:
        r = await c.post(TOKEN, json={"client_id": DESKTOP, "scope": "profile"})
    assert r.status_code == 200
    unverified = await create_account(server, verified=False)
    assert_fxa_error(await credentials(server, unverified, OLDSYNC), 400, 138)
    assert (await credentials(server, unverified, "profile")).status_code == 200


async def test_refresh_token_grant(server: LiveServer) -> None:
    account = await create_account(server)
    authz, verifier = await authorize(server, account, client_id=FENIX, service=None)
    tokens = (await exchange(server, authz["code"], verifier, FENIX)).json()
    refresh = tokens["refresh_token"]

    async def refresh_grant(path: str = TOKEN, **extra: object):  # type: ignore[no-untyped-def]
        body = {"grant_type": "refresh_token", "client_id": FENIX, "refresh_token": refresh,
                **extra}
        return await post(server, path, body)

    r = await refresh_grant(ttl=600)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == SYNC_SCOPE and body["expires_in"] == 600
    assert body["token_type"] == "bearer" and "auth_at" in body
    assert "refresh_token" not in body
    assert await tokenserver(server, body["access_token"], key_id(account)) == 200
    r = await refresh_grant(scope="profile")
    assert r.json()["scope"] == "profile"
    assert_fxa_error(await refresh_grant(scope="openid"), 400, 114)
    assert_fxa_error(await refresh_grant(client_id=DESKTOP), 401, 110)
    assert_fxa_error(await refresh_grant(refresh_token="ab" * 32), 401, 110)
    assert_fxa_error(await refresh_grant(refresh_token="xyz"), 400, 107)
    assert_fxa_error(await refresh_grant(path="/v1/token", refresh_token="ab" * 32), 400, 108)
    assert_fxa_error(await refresh_grant(path="/v1/token", refresh_token="xyz"), 400, 109)
    # The phone destroys its access token, keeps the refresh token (pairing.md §5.4).
    r = await post(server, "/v1/destroy", {"token": tokens["access_token"]})
    assert r.status_code == 200
    assert (await refresh_grant()).status_code == 200
    # Disconnecting the refresh token kills its access tokens too.
    r = await post(server, "/v1/oauth/destroy", {"client_id": FENIX, "token": refresh})
    assert r.status_code == 200
    assert_fxa_error(await refresh_grant(), 401, 110)
    assert_fxa_error(await post(server, "/v1/verify", {"token": body["access_token"]}),
                     400, 108)


async def test_session_destruction_revokes_its_tokens(server: LiveServer) -> None:
    from server.accounts import tokens as fxa_tokens

    account = await create_account(server)
    access = (await credentials(server, account, "profile")).json()["access_token"]
    assert (await post(server, "/v1/verify", {"token": access})).status_code == 200
    await server.db.write(lambda c: fxa_tokens.delete(c, account.session_id))
    assert_fxa_error(await post(server, "/v1/verify", {"token": access}), 400, 108)
    async with server.client() as c:
        r = await c.get("/v1/profile", headers={"Authorization": f"Bearer {access}"})
    assert_fxa_error(r, 401, 100)


async def test_verify_introspect_client_and_redirect(server: LiveServer) -> None:
    account = await create_account(server)
    access = (await credentials(server, account, "profile")).json()["access_token"]
    r = await post(server, "/v1/verify", {"token": access})
    assert r.json() == {"user": account.uid, "client_id": DESKTOP, "scope": ["profile"],
                        "generation": account.verifier_set_at}
    assert_fxa_error(await post(server, "/v1/verify", {}), 400, 109)
    assert_fxa_error(await post(server, "/v1/verify", {"token": "nope"}), 400, 108)

    r = await post(server, "/v1/introspect", {"token": access})
    assert r.json()["active"] is True and r.json()["token_type"] == "access_token"
    assert r.json()["sub"] == account.uid
    authz, verifier = await authorize(server, account, client_id=FENIX, service=None)
    refresh = (await exchange(server, authz["code"], verifier, FENIX)).json()["refresh_token"]
    r = await post(server, "/v1/introspect", {"token": refresh,
                                              "token_type_hint": "refresh_token"})
    assert r.json()["active"] is True and r.json()["token_type"] == "refresh_token"
    assert r.json()["client_id"] == FENIX
    r = await post(server, "/v1/introspect", {"token": "ab" * 32})
    assert r.json() == {"active": False}

    async with server.client() as c:
        r = await c.get(f"/v1/client/{DESKTOP}")
        assert r.json() == {"id": DESKTOP, "name": "Firefox", "trusted": True, "image_uri": "",
                            "redirect_uri": "urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel"}
        assert_fxa_error(await c.get("/v1/client/0123456789abcdef"), 400, 101)
        assert_fxa_error(await c.get("/v1/client/zz"), 400, 109)
        r = await c.get("/v1/authorization?client_id=5882386c6d801776&state=s&scope=profile")
        assert r.status_code == 302
        assert r.headers["location"] == (f"{server.url}/authorization?client_id="
                                         "5882386c6d801776&state=s&scope=profile")
        assert_fxa_error(await c.get("/v1/authorization?keys_jwk=abc"), 400, 109)


async def test_form_encoded_token_request(server: LiveServer) -> None:
    # Standard OAuth libraries post forms to the token endpoint.
    account = await create_account(server)
    authz, verifier = await authorize(server, account, scope="profile")
    async with server.client() as c:
        r = await c.post("/v1/token", data={"code": authz["code"], "client_id": DESKTOP,
                                            "code_verifier": verifier})
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "profile"

