"""Account routes as Firefox's pages and Firefox itself call them: HAWK with the
HKDF-derived token id/key, payload hash on POSTs, Date on every response."""

from __future__ import annotations

import base64
import json
import secrets
import time
from email.utils import parsedate_to_datetime

from cryptography.hazmat.primitives.asymmetric import ec

from server.accounts import store
from server.crypto import fxatokens, hawk, onepw

from .helpers import AccountsServer, add_account, assert_fxa_error, creds_v1, fetch_kb, login

EMAIL, PASSWORD = "Alice@Example.org", "correct horse"
OLDSYNC = onepw.OLDSYNC_SCOPE
DESKTOP = "5882386c6d801776"


async def test_date_header_on_success_and_error(srv: AccountsServer) -> None:
    async with srv.client() as c:
        ok = await c.post("/v1/account/status", json={"email": "x@example.org"})
        bad = await c.post("/v1/account/login", content=b"{nope")
    for r in (ok, bad):
        assert abs(parsedate_to_datetime(r.headers["date"]).timestamp() - time.time()) < 5
    assert ok.json() == {"exists": False}
    assert_fxa_error(bad, 400, 106)


async def test_create_then_login_with_keys_gives_the_same_kb(srv: AccountsServer) -> None:
    creds = creds_v1(EMAIL, PASSWORD)
    async with srv.client() as c:
        r = await c.post("/v1/account/create?keys=true",
                         json={"email": EMAIL, "authPW": creds.auth_pw.hex(), "service": "sync"})
        assert r.status_code == 200, r.text
        created = r.json()
        assert set(created) >= {"uid", "sessionToken", "keyFetchToken", "authAt", "verified"}
        assert "error" not in created
        kb = await fetch_kb(srv, created["keyFetchToken"], creds.unwrap_b_key)
        dup = await c.post("/v1/account/create",
                           json={"email": EMAIL.lower(), "authPW": creds.auth_pw.hex()})
        assert assert_fxa_error(dup, 400, 101)["email"] == EMAIL.lower()
        logged = await login(c, EMAIL, PASSWORD)
    assert logged["uid"] == created["uid"] and logged["verified"] is True
    assert logged["sessionVerified"] is True and abs(logged["authAt"] - time.time()) < 5
    assert await fetch_kb(srv, logged["keyFetchToken"], creds.unwrap_b_key) == kb


async def test_login_errors(srv: AccountsServer) -> None:
    await add_account(srv.db, EMAIL, PASSWORD)
    async with srv.client() as c:
        wrong = await c.post("/v1/account/login", json={
            "email": EMAIL, "authPW": creds_v1(EMAIL, "nope nope").auth_pw.hex()})
        assert assert_fxa_error(wrong, 400, 103)["email"] == EMAIL
        # The page stretched with the typed spelling, so authPW is wrong too: errno 120
        # tells it the canonical spelling, and the retry with it succeeds.
        typed = "alice@example.ORG"
        case = await c.post("/v1/account/login", json={
            "email": typed, "authPW": creds_v1(typed, PASSWORD).auth_pw.hex()})
        assert assert_fxa_error(case, 400, 120)["email"] == EMAIL
        await login(c, assert_fxa_error(case, 400, 120)["email"], PASSWORD)
        unknown = await c.post("/v1/account/login", json={
            "email": "bob@example.org", "authPW": "00" * 32})
        assert_fxa_error(unknown, 400, 102)
        no_keys = await login(c, EMAIL, PASSWORD, keys=False)
        assert "keyFetchToken" not in no_keys


async def test_account_status(srv: AccountsServer) -> None:
    row = await add_account(srv.db, EMAIL, PASSWORD)
    async with srv.client() as c:
        assert (await c.get(f"/v1/account/status?uid={row.uid}")).json() == {"exists": True}
        assert (await c.get(f"/v1/account/status?uid={'0' * 32}")).json() == {"exists": False}
        assert_fxa_error(await c.get("/v1/account/status"), 400, 108)
        assert_fxa_error(await c.get("/v1/account/status?uid=xyz"), 400, 107)
        assert (await c.post("/v1/account/status", json={"email": EMAIL.upper()})).json() \
            == {"exists": True}
        session = (await login(c, EMAIL, PASSWORD, keys=False))["sessionToken"]
    async with srv.hawk(session) as h:
        r = await h.get("/v1/account/status")
    assert r.json() == {"exists": True, "locale": "", "hasPassword": True}


async def test_credentials_status(srv: AccountsServer) -> None:
    await add_account(srv.db, EMAIL, PASSWORD, key_stretch=1)
    await add_account(srv.db, "v2@example.org", PASSWORD, key_stretch=2)
    async with srv.client() as c:
        v1 = (await c.post("/v1/account/credentials/status", json={"email": EMAIL})).json()
        v2 = (await c.post("/v1/account/credentials/status",
                           json={"email": "v2@example.org"})).json()
        missing = await c.post("/v1/account/credentials/status",
                               json={"email": "no@example.org"})
    assert v1 == {"currentVersion": "v1", "upgradeNeeded": True}
    assert v2["currentVersion"] == "v2" and v2["upgradeNeeded"] is False
    assert onepw.parse_client_salt(v2["clientSalt"])
    assert_fxa_error(missing, 400, 102)


async def test_session_status_profile_and_recovery_email(srv: AccountsServer) -> None:
    row = await add_account(srv.db, EMAIL, PASSWORD)
    async with srv.client() as c:
        session = (await login(c, EMAIL, PASSWORD, keys=False))["sessionToken"]
    async with srv.hawk(session) as h:
        assert (await h.get("/v1/session/status")).json() == {"state": "verified",
                                                              "uid": row.uid}
        profile = (await h.get("/v1/account/profile")).json()
        email = (await h.get("/v1/recovery_email/status")).json()
    assert profile["email"] == EMAIL and profile["keysChangedAt"] == row.keys_changed_at
    assert email == {"email": EMAIL, "verified": True, "sessionVerified": True,
                     "emailVerified": True}


async def test_scoped_key_data_and_keys_jwe(srv: AccountsServer) -> None:
    """firefox-signin.md §2.4 steps 3-5, the way the sign-in page does them."""
    row = await add_account(srv.db, EMAIL, PASSWORD)
    creds = creds_v1(EMAIL, PASSWORD)
    async with srv.client() as c:
        logged = await login(c, EMAIL, PASSWORD)
    kb = await fetch_kb(srv, logged["keyFetchToken"], creds.unwrap_b_key)
    async with srv.hawk(logged["sessionToken"]) as h:
        r = await h.post("/v1/account/scoped-key-data",
                         json={"client_id": DESKTOP, "scope": f"{OLDSYNC} profile"})
        assert r.status_code == 200, r.text
        data = r.json()
        assert data == {OLDSYNC: {"identifier": OLDSYNC, "keyRotationSecret": "0" * 64,
                                  "keyRotationTimestamp": row.keys_changed_at}}
        assert (await h.post("/v1/account/scoped-key-data",
                             json={"client_id": DESKTOP, "scope": "profile"})).json() == {}
        fenix = await h.post("/v1/account/scoped-key-data", json={
            "client_id": "a2270f727f45f648",
            "scope": f"profile {OLDSYNC} https://identity.mozilla.com/tokens/session"})
        assert list(fenix.json()) == [OLDSYNC]
        assert_fxa_error(await h.post("/v1/account/scoped-key-data", json={
            "client_id": "0123456789abcdef", "scope": OLDSYNC}), 400, 162)
        assert_fxa_error(await h.post("/v1/account/scoped-key-data", json={
            "client_id": DESKTOP, "scope": "https://identity.mozilla.com/apps/relay"}),
            400, 163)
        assert_fxa_error(await h.post("/v1/account/scoped-key-data", json={
            "scope": OLDSYNC}), 400, 108)
        assert_fxa_error(await h.post("/v1/account/scoped-key-data", json={
            "client_id": "zz", "scope": OLDSYNC}), 400, 107)
    # The page: derive the oldsync JWK, encrypt it to Firefox's keys_jwk.
    ts = data[OLDSYNC]["keyRotationTimestamp"]
    firefox = ec.generate_private_key(ec.SECP256R1())
    keys_jwk = base64.urlsafe_b64encode(json.dumps(
        {**onepw.public_jwk(firefox.public_key()), "ext": True, "key_ops": []}).encode()
    ).rstrip(b"=").decode()
    jwk = onepw.oldsync_jwk(kb, ts)
    jwe = onepw.build_keys_jwe(onepw.parse_keys_jwk(keys_jwk),
                               onepw.scoped_keys_plaintext({OLDSYNC: jwk}))
    got = json.loads(onepw.decrypt_keys_jwe(firefox, jwe))[OLDSYNC]
    assert got["kid"].split("-", 1)[0] == str(row.keys_changed_at) and len(str(ts)) == 13
    assert got["kid"].split("-", 1)[1] == onepw.b64u_encode(onepw.client_state(kb))


async def test_hawk_failures(srv: AccountsServer) -> None:
    await add_account(srv.db, EMAIL, PASSWORD)
    async with srv.client() as c:
        logged = await login(c, EMAIL, PASSWORD)
        creds = fxatokens.derive(bytes.fromhex(logged["sessionToken"]), "sessionToken")
        s = srv.settings

        def header(key: bytes, ts: int, nonce: str, token_id: str = creds.id) -> str:
            return hawk.sign_header(key, token_id, "GET", "/v1/session/status",
                                    s.public_host, s.public_port, ts, nonce)

        now = int(time.time())
        ok = header(creds.hawk_key, now, "n1")
        assert (await c.get("/v1/session/status", headers={"Authorization": ok})).status_code \
            == 200
        replay = await c.get("/v1/session/status", headers={"Authorization": ok})
        assert_fxa_error(replay, 401, 115)
        bad_mac = header(b"k" * 32, now, "n2")
        assert_fxa_error(await c.get("/v1/session/status",
                                     headers={"Authorization": bad_mac}), 401, 109)
        stale = await c.get("/v1/session/status",
                            headers={"Authorization": header(creds.hawk_key, now - 600, "n3")})
        assert abs(assert_fxa_error(stale, 401, 111)["serverTime"] - now) < 5
        unknown = header(b"k" * 32, now, "n4", token_id="ab" * 32)
        assert_fxa_error(await c.get("/v1/session/status",
                                     headers={"Authorization": unknown}), 401, 110)
        assert_fxa_error(await c.get("/v1/session/status"), 401, 110)
        assert_fxa_error(await c.get("/v1/session/status",
                                     headers={"Authorization": "Hawk garbage"}), 401, 109)
        # A keyFetchToken is no session.
        kf = fxatokens.derive(bytes.fromhex(logged["keyFetchToken"]), "keyFetchToken")
        wrong_kind = header(kf.hawk_key, now, "n5", token_id=kf.id)
        assert_fxa_error(await c.get("/v1/session/status",
                                     headers={"Authorization": wrong_kind}), 401, 109)
        assert_fxa_error(await c.get("/v1/session/status", headers={
            "Authorization": f"Bearer fxk_{kf.id}"}), 401, 109)
        assert (await c.get("/v1/session/status", headers={
            "Authorization": f"Bearer fxs_{creds.id}"})).status_code == 200


async def test_payload_hash_is_checked(srv: AccountsServer) -> None:
    await add_account(srv.db, EMAIL, PASSWORD)
    async with srv.client() as c:
        session = (await login(c, EMAIL, PASSWORD, keys=False))["sessionToken"]
        creds = fxatokens.derive(bytes.fromhex(session), "sessionToken")
        s = srv.settings
        signed = hawk.sign_header(creds.hawk_key, creds.id, "POST", "/v1/account/device",
                                  s.public_host, s.public_port, int(time.time()),
                                  secrets.token_urlsafe(8), content_type="application/json",
                                  body=b'{"name":"a","type":"desktop"}')
        r = await c.post("/v1/account/device", content=b'{"name":"b","type":"desktop"}',
                         headers={"Authorization": signed, "Content-Type": "application/json"})
    assert_fxa_error(r, 401, 109)


async def test_session_destroy_and_custom_session(srv: AccountsServer) -> None:
    row = await add_account(srv.db, EMAIL, PASSWORD)
    async with srv.client() as c:
        one = (await login(c, EMAIL, PASSWORD, keys=False))["sessionToken"]
        two = (await login(c, EMAIL, PASSWORD, keys=False))["sessionToken"]
    two_id = fxatokens.derive(bytes.fromhex(two), "sessionToken").id
    async with srv.hawk(one) as h:
        assert (await h.post("/v1/account/device", json={"name": "d", "type": "desktop"})) \
            .status_code == 200
        assert (await h.post("/v1/session/destroy",
                             json={"customSessionToken": two_id})).json() == {}
        assert_fxa_error(await h.post("/v1/session/destroy",
                                      json={"customSessionToken": "ab" * 32}), 401, 110)
    async with srv.hawk(two) as h2:
        assert_fxa_error(await h2.get("/v1/session/status"), 401, 110)
    async with srv.hawk(one) as h:
        assert (await h.post("/v1/session/destroy?service=sync", json={})).json() == {}
        assert_fxa_error(await h.get("/v1/session/status"), 401, 110)
    left = await srv.db.read(lambda c: c.execute(
        "SELECT count(*) FROM devices WHERE uid = ?", (row.uid,)).fetchone()[0])
    assert left == 0


async def test_tokens_die_with_the_account(srv: AccountsServer) -> None:
    await add_account(srv.db, EMAIL, PASSWORD)
    async with srv.client() as c:
        session = (await login(c, EMAIL, PASSWORD, keys=False))["sessionToken"]
    async with srv.hawk(session) as h:
        wrong = await h.post("/v1/account/destroy", json={
            "email": EMAIL, "authPW": creds_v1(EMAIL, "wrong pass").auth_pw.hex()})
        assert_fxa_error(wrong, 400, 103)
        other = await h.post("/v1/account/destroy", json={
            "email": "someone@example.org", "authPW": "00" * 32})
        assert_fxa_error(other, 400, 102)
        r = await h.post("/v1/account/destroy", json={
            "email": EMAIL, "authPW": creds_v1(EMAIL, PASSWORD).auth_pw.hex()})
        assert r.status_code == 200 and r.json() == {}
        assert_fxa_error(await h.get("/v1/session/status"), 401, 110)
    assert await srv.db.read(lambda c: store.find_by_email(c, EMAIL)) is None
