"""The discovery documents and the JWKS, over a real socket."""

from __future__ import annotations

import jwt
import pytest

from server.crypto import jwt_tokens
from tests.conftest import LiveServer
from tests.server.oauth.helpers import create_account, credentials


async def test_fxa_client_configuration(server: LiveServer) -> None:
    async with server.client() as c:
        r = await c.get("/.well-known/fxa-client-configuration",
                        headers={"Accept": "application/json"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["access-control-allow-origin"] == "*"
    assert "max-age" in r.headers["cache-control"]
    origin = server.url
    assert r.json() == {
        "auth_server_base_url": origin,
        "oauth_server_base_url": origin,
        "pairing_server_base_uri": "ws://" + origin.removeprefix("http://"),
        "profile_server_base_url": origin,
        "sync_tokenserver_base_url": origin,
    }
    # Every client appends its own version segment; none may carry one already.
    assert not any(v.rstrip("/").endswith("/v1") for v in r.json().values())


@pytest.mark.parametrize("public_url, ws", [("https://foxden.lan", "wss://foxden.lan"),
                                             ("https://foxden.lan:8443", "wss://foxden.lan:8443")])
async def test_pairing_uri_follows_the_scheme(make_server, public_url: str, ws: str) -> None:  # type: ignore[no-untyped-def]
    srv = await make_server(public_url=public_url)
    async with srv.client() as c:
        body = (await c.get("/.well-known/fxa-client-configuration")).json()
    assert body["pairing_server_base_uri"] == ws
    assert body["auth_server_base_url"] == public_url


async def test_openid_configuration(server: LiveServer) -> None:
    async with server.client() as c:
        r = await c.get("/.well-known/openid-configuration")
    body = r.json()
    origin = server.url
    # The six fields application-services deserialises (pairing.md §5.4).
    assert body["authorization_endpoint"] == f"{origin}/authorization"
    assert body["introspection_endpoint"] == f"{origin}/v1/introspect"
    assert body["issuer"] == origin
    assert body["jwks_uri"] == f"{origin}/v1/jwks"
    assert body["token_endpoint"] == f"{origin}/v1/token"
    assert body["userinfo_endpoint"] == f"{origin}/v1/profile"
    assert body["revocation_endpoint"] == f"{origin}/v1/destroy"
    assert r.headers["access-control-allow-origin"] == "*"


async def test_jwks_verifies_our_tokens(server: LiveServer) -> None:
    account = await create_account(server)
    token = (await credentials(server, account, "profile")).json()["access_token"]
    async with server.client() as c:
        keys = (await c.get("/v1/jwks")).json()
        assert (await c.get("/.well-known/jwks.json")).json() == keys
    assert keys == jwt_tokens.jwks(server.settings.oauth_signing_key_pem,
                                   server.settings.oauth_key_id)
    (key,) = keys["keys"]
    assert key["kid"] == server.settings.oauth_key_id and "d" not in key
    public = jwt.algorithms.RSAAlgorithm.from_jwk(key)
    claims = jwt.decode(token, public, algorithms=["RS256"], options={"verify_aud": False})
    assert claims["sub"] == account.uid
