"""Device registration, the device list, and Send Tab through the command queue."""

from __future__ import annotations

import trio

from server.crypto import fxatokens

from .helpers import AccountsServer, add_account, assert_fxa_error, login

EMAIL, PASSWORD = "dev@example.org", "device pass"
OPEN_URI = "https://identity.mozilla.com/cmd/open-uri"
CLOSE_URI = "https://identity.mozilla.com/cmd/close-uri/v1"


async def two_sessions(srv: AccountsServer) -> tuple[str, str]:
    await add_account(srv.db, EMAIL, PASSWORD)
    async with srv.client() as c:
        a = (await login(c, EMAIL, PASSWORD, keys=False))["sessionToken"]
        b = (await login(c, EMAIL, PASSWORD, keys=False))["sessionToken"]
    return a, b


async def test_register_is_an_upsert_per_session(srv: AccountsServer) -> None:
    a, b = await two_sessions(srv)
    async with srv.hawk(a) as h:
        first = await h.post("/v1/account/device",
                             json={"name": "Alice’s Firefox", "type": "desktop",
                                   "availableCommands": {}})
        assert first.status_code == 200, first.text
        dev = first.json()
        assert dev["name"] == "Alice’s Firefox" and dev["type"] == "desktop"
        assert dev["availableCommands"] == {} and dev["pushEndpointExpired"] is False
        assert "createdAt" in dev and "pushCallback" not in dev
        # Firefox registers twice, concurrently, without an id (firefox-signin.md §3.1 C4).
        ids = []

        async def register() -> None:
            r = await h.post("/v1/account/device", json={"name": "x", "type": "desktop"})
            ids.append(r.json()["id"])

        async with trio.open_nursery() as n:
            n.start_soon(register)
            n.start_soon(register)
        assert ids == [dev["id"], dev["id"]]
        update = await h.post("/v1/account/device", json={
            "id": dev["id"], "name": "renamed",
            "availableCommands": {OPEN_URI: '{"kid":"k","IV":"i","hmac":"h","ciphertext":"c"}'},
            "pushCallback": "https://updates.push.services.mozilla.com/wpush/v2/abc",
            "pushPublicKey": "BCp93zru09_hab2Bg37LpTNG__Pw6eMPEP2hrQpwuytoj3h4chXpGc-3qqdKyq"
                             "juvAiEupsnOd_RLyc7erJHWgA",
            "pushAuthKey": "w3b14Zjc-Afj2SDOLOyong"})
        assert update.status_code == 200, update.text
        assert update.json()["id"] == dev["id"] and update.json()["name"] == "renamed"
        assert update.json()["pushCallback"].startswith("https://")
        assert_fxa_error(await h.post("/v1/account/device", json={"id": "ab" * 16}), 400, 123)
    async with srv.hawk(b) as hb:
        # The race on a session that has no device yet: still one device.
        first_ids: list[str] = []

        async def register_b() -> None:
            r = await hb.post("/v1/account/device", json={"name": "b", "type": "mobile"})
            first_ids.append(r.json()["id"])

        async with trio.open_nursery() as n:
            n.start_soon(register_b)
            n.start_soon(register_b)
        assert len(set(first_ids)) == 1
        other = (await hb.post("/v1/account/device", json={"name": "b", "type": "mobile"}))
        assert other.json()["id"] == first_ids[0]
        # Claiming A's device while B already has its own is a conflict.
        assert_fxa_error(await hb.post("/v1/account/device", json={"id": dev["id"]}), 400, 124)
        listed = (await hb.get("/v1/account/devices")).json()
    by_id = {d["id"]: d for d in listed}
    assert by_id[other.json()["id"]]["isCurrentDevice"] is True
    assert by_id[dev["id"]]["isCurrentDevice"] is False
    assert by_id[dev["id"]]["availableCommands"][OPEN_URI].startswith("{")
    for d in listed:
        assert isinstance(d["lastAccessTime"], int) and d["lastAccessTime"] > 0


async def test_device_payload_validation(srv: AccountsServer) -> None:
    a, _ = await two_sessions(srv)
    bad = [
        {"name": 5}, {"name": "x" * 256}, {"name": "bad\u0000name"}, {"type": ""},
        {"type": "a" * 17}, {"id": "xyz"}, {"availableCommands": []},
        {"availableCommands": {OPEN_URI: 5}}, {"availableCommands": {"bad name!": "x"}},
        {"availableCommands": {OPEN_URI: "x" * 2049}},
        {"pushCallback": "https://push.example/x"},  # without the keys
        {"pushCallback": "http://push.example/x", "pushPublicKey": "AA", "pushAuthKey": "AA"},
        {"pushCallback": "https://p.example/", "pushPublicKey": "+/=", "pushAuthKey": "AA"},
        {"capabilities": ["x"]},
    ]
    async with srv.hawk(a) as h:
        for body in bad:
            assert_fxa_error(await h.post("/v1/account/device", json=body), 400, 107)
        ok = await h.post("/v1/account/device", json={"name": "ok", "capabilities": []})
        assert ok.status_code == 200


async def test_filter_idle_devices(srv: AccountsServer) -> None:
    a, b = await two_sessions(srv)
    async with srv.hawk(a) as h:
        await h.post("/v1/account/device", json={"name": "a", "type": "desktop"})
    async with srv.hawk(b) as hb:
        await hb.post("/v1/account/device", json={"name": "b", "type": "desktop"})
        future = srv.accounts.now_ms() + 3_600_000
        only_me = (await hb.get(f"/v1/account/devices?filterIdleDevicesTimestamp={future}"))
        assert [d["name"] for d in only_me.json()] == ["b"]
        both = (await hb.get("/v1/account/devices?filterIdleDevicesTimestamp=0")).json()
        assert sorted(d["name"] for d in both) == ["a", "b"]
        assert_fxa_error(await hb.get("/v1/account/devices?filterIdleDevicesTimestamp=x"),
                         400, 107)


async def test_send_tab_round_trip(srv: AccountsServer) -> None:
    a, b = await two_sessions(srv)
    async with srv.hawk(a) as ha, srv.hawk(b) as hb:
        dev_a = (await ha.post("/v1/account/device", json={
            "name": "A", "type": "desktop", "availableCommands": {OPEN_URI: "keys-a"}})).json()
        dev_b = (await hb.post("/v1/account/device", json={
            "name": "B", "type": "mobile",
            "availableCommands": {OPEN_URI: "keys-b", CLOSE_URI: "keys-b2"}})).json()
        empty = (await hb.get("/v1/account/device/commands?index=0")).json()
        assert empty == {"index": 0, "last": True, "messages": []}
        for n in range(3):
            r = await ha.post("/v1/account/devices/invoke_command", json={
                "command": OPEN_URI, "target": dev_b["id"],
                "payload": {"encrypted": f"tab-{n}"}})
            assert r.json() == {"enqueued": True, "notified": False}
        got = (await hb.get("/v1/account/device/commands?index=0&limit=2")).json()
        assert [m["data"]["payload"]["encrypted"] for m in got["messages"]] == ["tab-0", "tab-1"]
        assert all(m["data"]["sender"] == dev_a["id"] and m["data"]["command"] == OPEN_URI
                   for m in got["messages"])
        first, second = (m["index"] for m in got["messages"])
        assert first < second and got["index"] == second and got["last"] is False
        rest = (await hb.get(f"/v1/account/device/commands?index={got['index'] + 1}")).json()
        assert [m["data"]["payload"]["encrypted"] for m in rest["messages"]] == ["tab-2"]
        assert rest["messages"][0]["index"] > second and rest["last"] is True
        # Nothing new: the answer never moves the client past an unseen message.
        after = (await hb.get(f"/v1/account/device/commands?index={rest['index'] + 1}")).json()
        assert after == {"index": rest["index"], "last": True, "messages": []}
        # A's own queue is untouched.
        assert (await ha.get("/v1/account/device/commands")).json()["messages"] == []
        # Errors: unknown target, a command B does not offer, bad input.
        assert_fxa_error(await ha.post("/v1/account/devices/invoke_command", json={
            "command": OPEN_URI, "target": "ab" * 16, "payload": {}}), 400, 123)
        assert_fxa_error(await hb.post("/v1/account/devices/invoke_command", json={
            "command": CLOSE_URI, "target": dev_a["id"], "payload": {}}), 400, 157)
        for body, errno in [({"target": dev_b["id"], "payload": {}}, 108),
                            ({"command": OPEN_URI, "target": dev_b["id"], "payload": "x"}, 107),
                            ({"command": OPEN_URI, "target": "nope", "payload": {}}, 107),
                            ({"command": OPEN_URI, "target": dev_b["id"], "payload": {},
                              "ttl": -1}, 107)]:
            r = await ha.post("/v1/account/devices/invoke_command", json=body)
            assert_fxa_error(r, 400, errno)
        assert_fxa_error(await hb.get("/v1/account/device/commands?index=-1"), 400, 107)
        assert_fxa_error(await hb.get("/v1/account/device/commands?limit=101"), 400, 107)


async def test_commands_from_a_session_without_device(srv: AccountsServer) -> None:
    a, b = await two_sessions(srv)
    async with srv.hawk(a) as ha, srv.hawk(b) as hb:
        dev_b = (await hb.post("/v1/account/device", json={
            "name": "B", "availableCommands": {OPEN_URI: "k"}})).json()
        await ha.post("/v1/account/devices/invoke_command",
                      json={"command": OPEN_URI, "target": dev_b["id"], "payload": {"x": 1}})
        msg = (await hb.get("/v1/account/device/commands")).json()["messages"][0]
    assert "sender" not in msg["data"]


async def test_device_destroy_and_session_destroy(srv: AccountsServer) -> None:
    a, b = await two_sessions(srv)
    async with srv.hawk(a) as ha, srv.hawk(b) as hb:
        dev_b = (await hb.post("/v1/account/device", json={"name": "B"})).json()
        await ha.post("/v1/account/device", json={"name": "A"})
        assert (await ha.post("/v1/account/device/destroy", json={"id": dev_b["id"]})).json() \
            == {}
        # The destroyed device's session goes with it.
        assert_fxa_error(await hb.get("/v1/session/status"), 401, 110)
        assert_fxa_error(await ha.post("/v1/account/device/destroy",
                                       json={"id": dev_b["id"]}), 400, 123)
        assert [d["name"] for d in (await ha.get("/v1/account/devices")).json()] == ["A"]
        await ha.post("/v1/session/destroy", json={})
    assert await srv.db.read(lambda c: c.execute("SELECT count(*) FROM devices")
                             .fetchone()[0]) == 0


async def test_notify_is_validated_and_a_no_op(srv: AccountsServer) -> None:
    a, _ = await two_sessions(srv)
    ok = {"to": "all", "excluded": ["ab" * 16], "TTL": 0,
          "payload": {"version": 1, "command": "sync:collection_changed",
                      "data": {"collections": ["clients"], "reason": "firstsync"}}}
    async with srv.hawk(a) as h:
        assert (await h.post("/v1/account/devices/notify", json=ok)).json() == {}
        assert (await h.post("/v1/account/devices/notify",
                             json={"to": ["ab" * 16], "payload": {}})).json() == {}
        for body, errno in [({"payload": {}}, 108), ({"to": "all"}, 108),
                            ({"to": "some", "payload": {}}, 107),
                            ({"to": ["xyz"], "payload": {}}, 107),
                            ({"to": "all", "payload": {}, "TTL": -5}, 107),
                            ({"to": "all", "payload": {}, "excluded": "x"}, 107)]:
            assert_fxa_error(await h.post("/v1/account/devices/notify", json=body), 400, errno)


async def test_device_belongs_to_its_session_only(srv: AccountsServer) -> None:
    a, b = await two_sessions(srv)
    async with srv.hawk(a) as ha:
        dev_a = (await ha.post("/v1/account/device", json={"name": "A"})).json()
    b_id = fxatokens.derive(bytes.fromhex(b), "sessionToken").id
    # Session B (no device yet) may re-bind A's device: Firefox does this after a re-login.
    async with srv.hawk(b) as hb:
        moved = (await hb.post("/v1/account/device", json={"id": dev_a["id"], "name": "A2"}))
        assert moved.status_code == 200 and moved.json()["id"] == dev_a["id"]
    bound = await srv.db.read(lambda c: c.execute(
        "SELECT session_token_id FROM devices WHERE id = ?", (dev_a["id"],)).fetchone()[0])
    assert bound == b_id


async def _refresh_token(srv: AccountsServer, uid: str, scope: tuple[str, ...]) -> str:
    from server.oauth import grants
    from server.oauth import store as oauth_store

    token = grants.new_secret()
    now = srv.accounts.now_ms()
    await srv.db.write(lambda c: oauth_store.insert_refresh(c, oauth_store.RefreshRow(
        grants.token_hash(token), "a2270f727f45f648", uid, scope, "sync", now // 1000, now,
        now - 120_000)))
    return token


async def test_mobile_devices_use_the_refresh_token(srv: AccountsServer) -> None:
    """Fenix/iOS (application-services) call the device routes with Bearer <refresh>."""
    row = await add_account(srv.db, EMAIL, PASSWORD)
    async with srv.client() as c:
        desktop = (await login(c, EMAIL, PASSWORD, keys=False))["sessionToken"]
    refresh = await _refresh_token(srv, row.uid, ("profile", "https://identity.mozilla.com/apps/oldsync"))
    phone = {"Authorization": f"Bearer {refresh}"}
    async with srv.client() as c, srv.hawk(desktop) as h:
        dev_phone = (await c.post("/v1/account/device", headers=phone, json={
            "name": "Phone", "availableCommands": {OPEN_URI: "k"}})).json()
        assert dev_phone["type"] == "mobile"
        again = (await c.post("/v1/account/device", headers=phone, json={"name": "Phone"}))
        assert again.json()["id"] == dev_phone["id"]
        dev_desk = (await h.post("/v1/account/device", json={
            "name": "Desk", "availableCommands": {OPEN_URI: "k"}})).json()
        await h.post("/v1/account/devices/invoke_command", json={
            "command": OPEN_URI, "target": dev_phone["id"], "payload": {"to": "phone"}})
        await c.post("/v1/account/devices/invoke_command", headers=phone, json={
            "command": OPEN_URI, "target": dev_desk["id"], "payload": {"to": "desk"}})
        got = (await c.get("/v1/account/device/commands?index=0", headers=phone)).json()
        assert [(m["data"]["payload"], m["data"]["sender"]) for m in got["messages"]] == [
            ({"to": "phone"}, dev_desk["id"])]
        mine = (await h.get("/v1/account/device/commands?index=0")).json()["messages"]
        assert [(m["data"]["payload"], m["data"]["sender"]) for m in mine] == [
            ({"to": "desk"}, dev_phone["id"])]
        listed = (await c.get("/v1/account/devices", headers=phone)).json()
        current = {d["name"]: d["isCurrentDevice"] for d in listed}
        assert current == {"Phone": True, "Desk": False}
        # The phone's refresh token cannot do session things.
        assert_fxa_error(await c.get("/v1/session/status", headers=phone), 401, 110)
        # Destroying the phone's device revokes its refresh token too.
        assert (await h.post("/v1/account/device/destroy", json={"id": dev_phone["id"]})) \
            .json() == {}
        assert_fxa_error(await c.get("/v1/account/devices", headers=phone), 401, 110)
        no_sync = await _refresh_token(srv, row.uid, ("profile",))
        r = await c.get("/v1/account/devices", headers={"Authorization": f"Bearer {no_sync}"})
        assert_fxa_error(r, 400, 163)
        r = await c.get("/v1/account/devices", headers={"Authorization": "Bearer " + "ab" * 32})
        assert_fxa_error(r, 401, 110)


async def test_revoking_a_refresh_token_removes_its_device(srv: AccountsServer) -> None:
    from server.oauth import grants
    from server.oauth import store as oauth_store

    row = await add_account(srv.db, EMAIL, PASSWORD)
    refresh = await _refresh_token(srv, row.uid, ("https://identity.mozilla.com/apps/oldsync",))
    async with srv.client() as c:
        dev = (await c.post("/v1/account/device", headers={"Authorization": f"Bearer {refresh}"},
                            json={"name": "P"})).json()
    await srv.db.write(lambda c: oauth_store.delete_refresh(c, grants.token_hash(refresh)))
    assert await srv.db.read(lambda c: c.execute(
        "SELECT count(*) FROM devices WHERE id = ?", (dev["id"],)).fetchone()[0]) == 0
