"""password/change/{start,finish} at the route level (HAWK, as the settings page would)."""

from __future__ import annotations

from server.accounts import store, tokens
from server.crypto import fxatokens, onepw

from .helpers import AccountsServer, add_account, assert_fxa_error, creds_v1, fetch_kb, login

EMAIL, OLD, NEW = "pw@example.org", "old password", "new password"


async def start_change(srv: AccountsServer, session: str | None = None) -> dict[str, str]:
    body = {"email": EMAIL, "oldAuthPW": creds_v1(EMAIL, OLD).auth_pw.hex()}
    if session is None:
        async with srv.client() as c:
            r = await c.post("/v1/password/change/start", json=body)
    else:
        async with srv.hawk(session) as h:
            r = await h.post("/v1/password/change/start", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_change_keeps_kb_device_and_drops_other_sessions(srv: AccountsServer) -> None:
    row = await add_account(srv.db, EMAIL, OLD)
    old_creds, new_creds = creds_v1(EMAIL, OLD), creds_v1(EMAIL, NEW)
    async with srv.client() as c:
        mine = await login(c, EMAIL, OLD)
        other = (await login(c, EMAIL, OLD, keys=False))["sessionToken"]
    kb = await fetch_kb(srv, mine["keyFetchToken"], old_creds.unwrap_b_key)
    async with srv.hawk(mine["sessionToken"]) as h:
        device = (await h.post("/v1/account/device", json={
            "name": "mine", "availableCommands": {"https://identity.mozilla.com/cmd/open-uri":
                                                  "k"}})).json()
    async with srv.hawk(other) as h:
        await h.post("/v1/account/device", json={"name": "other"})

    started = await start_change(srv, mine["sessionToken"])
    assert set(started) == {"keyFetchToken", "passwordChangeToken", "verified"}
    assert await fetch_kb(srv, started["keyFetchToken"], old_creds.unwrap_b_key) == kb
    mine_id = fxatokens.derive(bytes.fromhex(mine["sessionToken"]), "sessionToken").id
    async with srv.hawk(started["passwordChangeToken"], "passwordChangeToken") as h:
        r = await h.post("/v1/password/change/finish?keys=true", json={
            "authPW": new_creds.auth_pw.hex(),
            "wrapKb": onepw.wrap_kb(kb, new_creds.unwrap_b_key).hex(),
            "sessionToken": mine_id})
        assert r.status_code == 200, r.text
        done = r.json()
        again = await h.post("/v1/password/change/finish", json={
            "authPW": new_creds.auth_pw.hex(), "wrapKb": "00" * 32})
        assert_fxa_error(again, 401, 110)
    assert set(done) >= {"uid", "sessionToken", "keyFetchToken", "authAt", "verified"}
    assert await fetch_kb(srv, done["keyFetchToken"], new_creds.unwrap_b_key) == kb
    for gone in (mine["sessionToken"], other):
        async with srv.hawk(gone) as h:
            assert_fxa_error(await h.get("/v1/session/status"), 401, 110)
    async with srv.hawk(done["sessionToken"]) as h:
        listed = (await h.get("/v1/account/devices")).json()
    assert [(d["id"], d["isCurrentDevice"]) for d in listed] == [(device["id"], True)]
    after = await srv.db.read(lambda c: store.get(c, row.uid))
    assert after is not None and after.keys_changed_at == row.keys_changed_at
    assert after.verifier_set_at >= row.verifier_set_at
    async with srv.client() as c:
        assert_fxa_error(await c.post("/v1/account/login", json={
            "email": EMAIL, "authPW": old_creds.auth_pw.hex()}), 400, 103)
        await login(c, EMAIL, NEW)


async def test_change_start_errors(srv: AccountsServer) -> None:
    await add_account(srv.db, EMAIL, OLD)
    await add_account(srv.db, "else@example.org", OLD)
    async with srv.client() as c:
        wrong = await c.post("/v1/password/change/start", json={
            "email": EMAIL, "oldAuthPW": creds_v1(EMAIL, NEW).auth_pw.hex()})
        assert_fxa_error(wrong, 400, 103)
        assert_fxa_error(await c.post("/v1/password/change/start", json={
            "email": "nobody@example.org", "oldAuthPW": "00" * 32}), 400, 102)
        assert_fxa_error(await c.post("/v1/password/change/start", json={"email": EMAIL}),
                         400, 108)
        someone = (await login(c, "else@example.org", OLD, keys=False))["sessionToken"]
    # A session of another account cannot start a change for this one.
    async with srv.hawk(someone) as h:
        r = await h.post("/v1/password/change/start", json={
            "email": EMAIL, "oldAuthPW": creds_v1(EMAIL, OLD).auth_pw.hex()})
    assert_fxa_error(r, 400, 102)


async def test_change_finish_validation_and_expiry(srv: AccountsServer) -> None:
    await add_account(srv.db, EMAIL, OLD)
    started = await start_change(srv)
    token = started["passwordChangeToken"]
    async with srv.hawk(token, "passwordChangeToken") as h:
        assert_fxa_error(await h.post("/v1/password/change/finish",
                                      json={"authPW": "00" * 32}), 400, 108)
        assert_fxa_error(await h.post("/v1/password/change/finish", json={
            "authPW": "00" * 32, "wrapKb": "00" * 31}), 400, 107)
        assert_fxa_error(await h.post("/v1/password/change/finish", json={
            "authPW": "00" * 32, "wrapKb": "00" * 32, "authPWVersion2": "00" * 32}), 400, 107)
        assert_fxa_error(await h.post("/v1/password/change/finish", json={
            "authPW": "00" * 32, "wrapKb": "00" * 32, "authPWVersion2": "00" * 32,
            "wrapKbVersion2": "00" * 32, "clientSalt": "nope"}), 400, 107)
        assert_fxa_error(await h.post("/v1/password/change/finish", json={
            "authPW": "00" * 32, "wrapKb": "00" * 32, "sessionToken": "xyz"}), 400, 107)
    # A session token is not a passwordChangeToken.
    async with srv.client() as c:
        session = (await login(c, EMAIL, OLD, keys=False))["sessionToken"]
    async with srv.hawk(session) as h:
        assert_fxa_error(await h.post("/v1/password/change/finish", json={
            "authPW": "00" * 32, "wrapKb": "00" * 32}), 401, 109)
    # Past its 15 minutes it is gone.
    token_id = fxatokens.derive(bytes.fromhex(token), "passwordChangeToken").id
    await srv.db.write(lambda c: c.execute(
        "UPDATE fxa_tokens SET expires_at = 1 WHERE id = ?", (token_id,)))
    async with srv.hawk(token, "passwordChangeToken") as h:
        assert_fxa_error(await h.post("/v1/password/change/finish", json={
            "authPW": "00" * 32, "wrapKb": "00" * 32}), 401, 110)
    assert tokens.PASSWORD_CHANGE_TTL_MS == 15 * 60 * 1000


async def test_finish_without_session_id_still_answers_a_session(srv: AccountsServer) -> None:
    await add_account(srv.db, EMAIL, OLD)
    new_creds = creds_v1(EMAIL, NEW)
    started = await start_change(srv)
    kb = await fetch_kb(srv, started["keyFetchToken"], creds_v1(EMAIL, OLD).unwrap_b_key)
    async with srv.hawk(started["passwordChangeToken"], "passwordChangeToken") as h:
        done = (await h.post("/v1/password/change/finish", json={
            "authPW": new_creds.auth_pw.hex(),
            "wrapKb": onepw.wrap_kb(kb, new_creds.unwrap_b_key).hex()})).json()
    assert "keyFetchToken" not in done
    async with srv.hawk(done["sessionToken"]) as h:
        assert (await h.get("/v1/session/status")).status_code == 200
