"""/v1/account/attached_clients and /v1/account/attached_client/destroy."""

from __future__ import annotations

import secrets
import time

from server.accounts import tokens as fxa_tokens
from tests.conftest import LiveServer

from .helpers import (
    DESKTOP,
    FENIX,
    SessionHawk,
    assert_fxa_error,
    authorize,
    create_account,
    exchange,
    new_session,
)

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0"
FIELDS = {"clientId", "deviceId", "sessionTokenId", "refreshTokenId", "isCurrentSession",
          "deviceType", "name", "createdTime", "lastAccessTime", "scope", "location",
          "userAgent", "os"}


async def add_device(server: LiveServer, uid: str, session_id: str, name: str) -> str:
    device_id = secrets.token_hex(16)
    await server.db.write(lambda c: c.execute(
        "INSERT INTO devices (id, uid, session_token_id, name, type, created_at) "
        "VALUES (?,?,?,?,?,?)", (device_id, uid, session_id, name, "desktop",
                                 int(time.time() * 1000))))
    return device_id


async def listing(server: LiveServer, account) -> list[dict]:  # type: ignore[no-untyped-def]
    async with server.client(auth=SessionHawk(account, server)) as c:
        r = await c.get("/v1/account/attached_clients")
    assert r.status_code == 200, r.text
    assert abs(int(r.headers["x-timestamp"]) - time.time() * 1000) < 60_000
    return r.json()


async def destroy(server: LiveServer, account, body: dict):  # type: ignore[no-untyped-def]
    async with server.client(auth=SessionHawk(account, server)) as c:
        return await c.post("/v1/account/attached_client/destroy", json=body)


async def test_listing_merges_sessions_devices_and_oauth(server: LiveServer) -> None:
    account = await create_account(server, user_agent=UA)
    device_id = await add_device(server, account.uid, account.session_id, "Ana's Firefox")
    other = await new_session(server, account, user_agent="curl/8")
    authz, verifier = await authorize(server, account, client_id=FENIX, service=None)
    tokens = (await exchange(server, authz["code"], verifier, FENIX)).json()
    # Desktop's own code grant is represented by its session, not as a client line.
    authz, verifier = await authorize(server, account, scope="profile", access_type="online")
    await exchange(server, authz["code"], verifier)

    items = await listing(server, account)
    assert all(set(i) == FIELDS for i in items)
    assert len(items) == 3
    mine = next(i for i in items if i["isCurrentSession"])
    assert mine["deviceId"] == device_id and mine["sessionTokenId"] == account.session_id
    assert mine["name"] == "Ana's Firefox" and mine["deviceType"] == "desktop"
    assert mine["userAgent"] == "Firefox 153" and mine["os"] == "Linux"
    assert mine["scope"] is None and mine["location"] is None and mine["clientId"] is None
    phone = next(i for i in items if i["clientId"] == FENIX)
    assert phone["refreshTokenId"] and phone["name"] == "Firefox for Android"
    assert set(phone["scope"]) == {"profile", "https://identity.mozilla.com/apps/oldsync"}
    assert isinstance(phone["lastAccessTime"], int)
    web = next(i for i in items if i["sessionTokenId"] == other.session_id)
    assert web["isCurrentSession"] is False and web["deviceId"] is None

    # Disconnect the phone by its refresh token.
    r = await destroy(server, account, {"clientId": FENIX,
                                        "refreshTokenId": phone["refreshTokenId"]})
    assert r.status_code == 200 and r.json() == {}
    assert not any(i["clientId"] == FENIX for i in await listing(server, account))
    r = await destroy(server, account, {"clientId": FENIX, "refreshTokenId": "ab" * 32})
    assert r.status_code == 200  # unknown ids are swallowed
    assert tokens  # (the refresh token is now dead; see test_token_grants)

    # Sign out another session.
    assert (await destroy(server, account, {"sessionTokenId": other.session_id})).json() == {}
    assert len(await listing(server, account)) == 1
    # By device id: the device and its session go.
    assert (await destroy(server, account, {"deviceId": device_id})).status_code == 200
    async with server.client(auth=SessionHawk(account, server)) as c:
        r = await c.get("/v1/account/attached_clients")
    assert_fxa_error(r, 401, 110)


async def test_destroy_client_id_only_and_bad_inputs(server: LiveServer) -> None:
    account = await create_account(server)
    stranger = await create_account(server)
    authz, verifier = await authorize(server, account, client_id=FENIX, service=None)
    await exchange(server, authz["code"], verifier, FENIX)
    assert (await destroy(server, account, {"clientId": FENIX})).status_code == 200
    assert not any(i["clientId"] for i in await listing(server, account))

    assert_fxa_error(await destroy(server, account, {}), 400, 108)
    assert_fxa_error(await destroy(server, account, {"refreshTokenId": "ab" * 32}), 400, 108)
    assert_fxa_error(await destroy(server, account, {"clientId": "xyz"}), 400, 107)
    assert_fxa_error(await destroy(server, account, {"sessionTokenId": 5}), 400, 107)
    assert_fxa_error(await destroy(server, account, {"clientId": DESKTOP,
                                                     "sessionTokenId": "ab" * 32}), 400, 107)
    # Someone else's session is not ours to end.
    assert_fxa_error(await destroy(server, account, {"sessionTokenId": stranger.session_id}),
                     400, 107)
    assert_fxa_error(await destroy(server, account, {"deviceId": "ab" * 16}), 400, 123)
    async with server.client() as c:
        assert_fxa_error(await c.get("/v1/account/attached_clients"), 401, 110)
    still = await server.db.read(lambda c: fxa_tokens.get(c, stranger.session_id, 0))
    assert still is not None


async def test_phone_device_merges_with_its_refresh_token(server: LiveServer) -> None:
    account = await create_account(server)
    authz, verifier = await authorize(server, account, client_id=FENIX, service=None)
    refresh = (await exchange(server, authz["code"], verifier, FENIX)).json()["refresh_token"]
    refresh_id = next(i["refreshTokenId"] for i in await listing(server, account)
                      if i["clientId"] == FENIX)
    device_id = secrets.token_hex(16)
    await server.db.write(lambda c: c.execute(
        "INSERT INTO devices (id, uid, refresh_token_id, name, type, created_at) "
        "VALUES (?,?,?,?,?,?)", (device_id, account.uid, refresh_id, "Pixel", "mobile",
                                 int(time.time() * 1000))))
    items = await listing(server, account)
    (phone,) = [i for i in items if i["clientId"] == FENIX]
    assert phone["deviceId"] == device_id and phone["refreshTokenId"] == refresh_id
    assert phone["name"] == "Pixel" and phone["deviceType"] == "mobile"
    assert len(items) == 2  # the phone, and the desktop's session
    assert_fxa_error(await destroy(server, account, {"deviceId": device_id,
                                                     "refreshTokenId": refresh_id}), 400, 108)
    assert_fxa_error(await destroy(server, account, {"deviceId": device_id, "clientId": FENIX,
                                                     "refreshTokenId": "cd" * 32}), 400, 107)
    r = await destroy(server, account, {"deviceId": device_id, "clientId": FENIX,
                                        "refreshTokenId": refresh_id})
    assert r.status_code == 200
    assert [i["clientId"] for i in await listing(server, account)] == [None]
    r = await server.db.read(lambda c: c.execute(
        "SELECT count(*) FROM oauth_refresh_tokens").fetchone()[0])
    assert r == 0 and refresh
