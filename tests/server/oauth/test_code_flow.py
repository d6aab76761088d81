"""The sign-in code flow over a real socket: the page's /v1/oauth/authorization, Firefox's
HAWK-signed code exchange with PKCE, keys_jwe pass-through, destroy, and every bad input."""

from __future__ import annotations

import json
import secrets
import time

from server.crypto import fxatokens, onepw
from tests.conftest import LiveServer

from .helpers import (
    DESKTOP,
    FENIX,
    OLDSYNC,
    SESSION_SCOPE,
    SYNC_SCOPE,
    WEBCHANNEL,
    Account,
    SessionHawk,
    assert_fxa_error,
    authorization_body,
    authorize,
    bearer_session,
    create_account,
    exchange,
    jwt_claims,
    jwt_header,
    keys_flow,
    pkce,
    post,
)

AUTHZ = "/v1/oauth/authorization"


async def test_desktop_sign_in_end_to_end(server: LiveServer) -> None:
    account = await create_account(server)
    flow = keys_flow(account)
    authz, verifier = await authorize(server, account, keys_jwe=flow.keys_jwe)
    assert set(authz) == {"code", "state", "redirect", "scope"}
    assert len(authz["code"]) == 64 and int(authz["code"], 16) >= 0
    assert authz["redirect"] == f"{WEBCHANNEL}?code={authz['code']}&state={authz['state']}"
    assert authz["scope"] == SYNC_SCOPE

    r = await exchange(server, authz["code"], verifier, account=account)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"access_token", "refresh_token", "scope", "token_type", "expires_in",
                         "auth_at", "keys_jwe"}
    assert body["keys_jwe"] == flow.keys_jwe  # byte for byte
    assert isinstance(body["scope"], str) and body["scope"] == SYNC_SCOPE
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert abs(body["auth_at"] - time.time()) < 60
    # Firefox decrypts what the page encrypted.
    keys = json.loads(onepw.decrypt_keys_jwe(flow.private_key, body["keys_jwe"]))
    assert keys == {OLDSYNC: flow.jwk}

    header, claims = jwt_header(body["access_token"]), jwt_claims(body["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
    assert header["kid"] == server.settings.oauth_key_id
    assert claims["sub"] == account.uid and claims["client_id"] == DESKTOP
    assert claims["scope"] == SYNC_SCOPE
    assert f"{server.url}/1.0/sync/1.5" in claims["aud"]
    assert claims["fxa-generation"] == account.verifier_set_at
    assert claims["iss"] == server.url

    # Firefox destroys the refresh token straight away: always 200 {}.
    r = await post(server, "/v1/oauth/destroy",
                   {"client_id": DESKTOP, "token": body["refresh_token"]})
    assert r.status_code == 200 and r.json() == {}
    r = await post(server, "/v1/oauth/token", {"grant_type": "refresh_token",
                                                "client_id": DESKTOP,
                                                "refresh_token": body["refresh_token"]})
    assert_fxa_error(r, 401, 110)


async def test_exchange_without_hawk_and_online_has_no_refresh_token(server: LiveServer) -> None:
    account = await create_account(server)
    authz, verifier = await authorize(server, account, scope="profile", access_type="online")
    r = await exchange(server, authz["code"], verifier)
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json() and "keys_jwe" not in r.json()
    assert r.json()["scope"] == "profile"


async def test_bearer_session_auth_and_phone_session_token(server: LiveServer) -> None:
    # Pairing: the desktop's session authorizes a code for the phone, which redeems it
    # with no auth and gets a session of its own (pairing.md §5.4).
    account = await create_account(server)
    verifier, challenge = pkce()
    body = authorization_body(FENIX, challenge=challenge, service=None,
                              scope=f"profile {OLDSYNC} {SESSION_SCOPE}")
    r = await post(server, AUTHZ, body, headers=bearer_session(account))
    assert r.status_code == 200, r.text
    r = await exchange(server, r.json()["code"], verifier, FENIX)
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["refresh_token"] and len(tokens["session_token"]) == 64
    assert SESSION_SCOPE in tokens["scope"].split()
    # The new session works like any other.
    creds = fxatokens.derive(bytes.fromhex(tokens["session_token"]), "sessionToken")
    phone = Account(account.uid, account.email, tokens["session_token"], creds.id,
                    creds.hawk_key, account.kb, account.keys_changed_at,
                    account.verifier_set_at)
    async with server.client(auth=SessionHawk(phone, server)) as c:
        r = await c.get("/v1/account/attached_clients")
    assert r.status_code == 200
    current = [c for c in r.json() if c["isCurrentSession"]]
    assert len(current) == 1 and current[0]["sessionTokenId"] == phone.session_id


async def test_code_is_single_use_and_a_replay_revokes(server: LiveServer) -> None:
    account = await create_account(server)
    authz, verifier = await authorize(server, account)
    first = await exchange(server, authz["code"], verifier, account=account)
    assert first.status_code == 200
    again = await exchange(server, authz["code"], verifier, account=account)
    assert_fxa_error(again, 400, 105)
    # RFC 6749 §4.1.2: what the first use minted is revoked.
    r = await post(server, "/v1/verify", {"token": first.json()["access_token"]})
    assert_fxa_error(r, 400, 108)
    r = await post(server, "/v1/oauth/token", {
        "grant_type": "refresh_token", "client_id": DESKTOP,
        "refresh_token": first.json()["refresh_token"]})
    assert_fxa_error(r, 401, 110)
    # And a third try is plainly unknown.
    assert_fxa_error(await exchange(server, authz["code"], verifier), 400, 105)


async def test_wrong_or_missing_verifier(server: LiveServer) -> None:
    account = await create_account(server)
    authz, verifier = await authorize(server, account)
    other, _ = pkce()
    assert_fxa_error(await exchange(server, authz["code"], other), 400, 117)
    r = await post(server, "/v1/oauth/token", {"code": authz["code"], "client_id": DESKTOP})
    assert_fxa_error(r, 400, 118)
    # Not burned by the failures: the real verifier still works.
    assert (await exchange(server, authz["code"], verifier)).status_code == 200


async def test_code_bound_to_client_and_expiry(server: LiveServer) -> None:
    account = await create_account(server)
    authz, verifier = await authorize(server, account)
    assert_fxa_error(await exchange(server, authz["code"], verifier, FENIX), 400, 106)
    await server.db.write(lambda c: c.execute(
        "UPDATE oauth_codes SET expires_at = ?", (int(time.time() * 1000) - 1,)))
    body = assert_fxa_error(await exchange(server, authz["code"], verifier), 400, 107)
    assert isinstance(body["expiredAt"], int)
    assert_fxa_error(await exchange(server, authz["code"], verifier), 400, 105)


async def test_authorization_bad_inputs(server: LiveServer) -> None:
    account = await create_account(server)
    _, challenge = pkce()
    auth = SessionHawk(account, server)

    async def attempt(status: int, errno: int, **changes: object) -> dict[str, object]:
        body = authorization_body(challenge=challenge)
        for k, v in changes.items():
            if v is None:
                body.pop(k, None)
            else:
                body[k] = v
        return assert_fxa_error(await post(server, AUTHZ, body, auth=auth), status, errno)

    assert (await attempt(400, 101, client_id="0123456789abcdef"))["clientId"]
    await attempt(400, 107, client_id="not-hex")
    await attempt(400, 107, client_id=12)
    await attempt(400, 108, client_id=None)
    assert (await attempt(400, 103, redirect_uri="https://evil.example/cb"))["redirectUri"]
    await attempt(400, 108, state=None)
    await attempt(400, 107, state="x" * 513)
    await attempt(400, 107, state=["list"])
    await attempt(400, 118, code_challenge=None, code_challenge_method=None)
    await attempt(400, 108, code_challenge_method=None)
    await attempt(400, 107, code_challenge_method="plain")
    await attempt(400, 107, code_challenge="short")
    await attempt(400, 107, access_type="forever")
    await attempt(400, 107, response_type="token")
    await attempt(400, 107, keys_jwe="not-a-jwe")
    await attempt(400, 107, keys_jwe=".".join(["a" * 1200] * 5))   # oversize
    await attempt(400, 107, scope="profile bad\x00scope")
    body = await attempt(400, 114, scope=f"profile {OLDSYNC} https://identity.mozilla.com/apps/relay")
    assert body["invalidScopes"] == ["https://identity.mozilla.com/apps/relay"]
    await attempt(400, 114, scope="openid")
    await attempt(400, 108, scope=None, service=None)
    await attempt(400, 107, assertion="x" * 60)
    await attempt(400, 102, client_secret="00" * 32)
    # ADR 0049: service=sync stands for profile + oldsync.
    body = authorization_body(challenge=challenge)
    del body["scope"]
    r = await post(server, AUTHZ, body, auth=auth)
    assert r.status_code == 200 and r.json()["scope"] == "profile " + OLDSYNC


async def test_authorization_auth_and_body_errors(server: LiveServer) -> None:
    account = await create_account(server)
    _, challenge = pkce()
    body = authorization_body(challenge=challenge)
    assert_fxa_error(await post(server, AUTHZ, body), 401, 110)
    bad_key = SessionHawk(account, server, key=secrets.token_bytes(32))
    assert_fxa_error(await post(server, AUTHZ, body, auth=bad_key), 401, 109)
    stale = SessionHawk(account, server, ts=int(time.time()) - 3600)
    assert_fxa_error(await post(server, AUTHZ, body, auth=stale), 401, 111)
    assert_fxa_error(await post(server, AUTHZ, body,
                                headers={"Authorization": "Bearer fxs_" + "0" * 64}), 401, 110)
    auth = SessionHawk(account, server)
    assert_fxa_error(await post(server, AUTHZ, auth=auth, content=b"{not json"), 400, 106)
    assert_fxa_error(await post(server, AUTHZ, auth=auth, content=b"[1, 2]"), 400, 106)
    assert_fxa_error(await post(server, AUTHZ, auth=auth,
                                content=json.dumps({"x": "y" * 20000}).encode()), 413, 113)
    # Key-bearing scopes need a verified session.
    unverified = await create_account(server, verified=False)
    r = await post(server, AUTHZ, body, auth=SessionHawk(unverified, server))
    assert_fxa_error(r, 400, 138)
    body["scope"] = "profile"
    r = await post(server, AUTHZ, body, auth=SessionHawk(unverified, server))
    assert r.status_code == 200


async def test_token_endpoint_bad_inputs(server: LiveServer) -> None:
    account = await create_account(server)
    authz, verifier = await authorize(server, account)
    base = {"grant_type": "authorization_code", "code": authz["code"], "client_id": DESKTOP,
            "code_verifier": verifier}

    async def attempt(status: int, errno: int, path: str = "/v1/oauth/token",
                      **changes: object) -> None:
        body = dict(base)
        for k, v in changes.items():
            if v is None:
                body.pop(k, None)
            else:
                body[k] = v
        assert_fxa_error(await post(server, path, body), status, errno)

    await attempt(400, 108, code=None)
    await attempt(400, 107, code="zz")
    await attempt(400, 105, code="ab" * 32)
    await attempt(400, 107, code_verifier="short")
    await attempt(400, 108, client_id=None)
    await attempt(400, 101, client_id="fedcba9876543210")
    await attempt(400, 103, redirect_uri="https://elsewhere.example/")
    await attempt(400, 107, ttl="long")
    await attempt(400, 107, ttl=-5)
    await attempt(400, 121, grant_type="password")
    await attempt(400, 121, grant_type="urn:ietf:params:oauth:grant-type:token-exchange")
    await attempt(400, 102, client_secret="ab" * 32)
    # The legacy OAuth-server route: its validation errno is 109.
    await attempt(400, 109, path="/v1/token", code="zz")
    await attempt(400, 105, path="/v1/token", code="ab" * 32)
    r = await post(server, "/v1/oauth/token", content=b"nope")
    assert_fxa_error(r, 400, 106)
    # None of those burned the code.
    assert (await exchange(server, authz["code"], verifier)).status_code == 200


async def test_destroy_always_200(server: LiveServer) -> None:
    account = await create_account(server)
    authz, verifier = await authorize(server, account, scope="profile")
    tokens = (await exchange(server, authz["code"], verifier)).json()
    for path in ("/v1/oauth/destroy", "/v1/destroy"):
        for body in ({"client_id": DESKTOP}, {"client_id": DESKTOP, "token": "bogus"},
                     {"token": "0" * 64}, {}, {"client_id": "nothex", "token": 5},
                     {"client_id": DESKTOP, "token": "a.b.c"}):
            r = await post(server, path, body)
            assert r.status_code == 200 and r.json() == {}, (path, body, r.text)
    # A wrong client_id leaves the token alone; the right one revokes it.
    access = tokens["access_token"]
    await post(server, "/v1/oauth/destroy", {"client_id": FENIX, "token": access})
    assert (await post(server, "/v1/verify", {"token": access})).status_code == 200
    r = await post(server, "/v1/oauth/destroy", {"client_id": DESKTOP, "token": access})
    assert r.status_code == 200 and r.json() == {}
    assert_fxa_error(await post(server, "/v1/verify", {"token": access}), 400, 108)
