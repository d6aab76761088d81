"""The admin API over a real socket: every operation, and refusals without the token."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from appliance.admin import api as admin_api
from appliance.admin import auth as admin_auth
from appliance.config import Config
from appliance.paths import Paths
from appliance.runtime import build
from server.app import create_app
from tests.conftest import TEST_MASTER_SECRET, start_server

PASSWORD = "correct horse battery"


@pytest.fixture
async def admin(tmp_path: Path, nursery: trio.Nursery):  # type: ignore[no-untyped-def]
    token = admin_auth.load_or_create_token(tmp_path / "config" / "admin-token")

    def mount(app, runtime):  # type: ignore[no-untyped-def]
        admin_api.install(app, admin_api.AdminContext(runtime=runtime, token=token,
                                                      status={"tls": False}))

    live = await start_server(tmp_path, nursery, prepare=mount)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"{live.url}/admin/v1", headers=headers,
                                 timeout=60) as client:
        yield client, live.runtime, live.url
    live.cancel.cancel()


async def test_token_file_is_private(admin) -> None:  # type: ignore[no-untyped-def]
    _, runtime, _ = admin
    assert runtime.paths.admin_token.stat().st_mode & 0o777 == 0o600


async def test_refused_without_or_with_wrong_token(admin) -> None:  # type: ignore[no-untyped-def]
    _, _, url = admin
    async with httpx.AsyncClient(base_url=f"{url}/admin/v1") as anon:
        for path in ("/status", "/users", "/usage", "/logs", "/settings"):
            r = await anon.get(path)
            assert r.status_code == 401 and r.json()["error"] == "unauthorized"
            r = await anon.get(path, headers={"Authorization": "Bearer wrong" + "x" * 40})
            assert r.status_code == 401
        r = await anon.post("/users", json={"email": "a@b.cd", "password": PASSWORD})
        assert r.status_code == 401


def test_non_loopback_needs_https() -> None:
    token = "t" * 43
    ok = f"Bearer {token}"
    assert admin_auth.verdict(token, ok, "127.0.0.1", "http") is None
    assert admin_auth.verdict(token, ok, "::1", "http") is None
    assert "HTTPS" in (admin_auth.verdict(token, ok, "192.168.1.9", "http") or "")
    assert admin_auth.verdict(token, ok, "192.168.1.9", "https") is None
    assert admin_auth.verdict(token, "Bearer nope", "192.168.1.9", "https") == "wrong admin token"
    assert admin_auth.verdict(token, None, "127.0.0.1", "http") == "missing admin token"


async def test_non_loopback_plain_http_refused_in_app(tmp_path: Path) -> None:
    paths = Paths.resolve(str(tmp_path / "data"), str(tmp_path / "config"))
    runtime = build(paths, Config(sync_master_secret=TEST_MASTER_SECRET), "http://x:1")
    app = create_app(runtime.settings, runtime.db)
    admin_api.install(app, admin_api.AdminContext(runtime=runtime, token="k" * 43))
    try:
        client = app.test_client()
        r = await client.get("/admin/v1/status", headers={"Authorization": "Bearer " + "k" * 43},
                             scope_base={"client": ("192.168.7.7", 5000)})
        assert r.status_code == 403
        assert "HTTPS" in (await r.get_json())["message"]
    finally:
        runtime.db.close()


async def test_user_lifecycle(admin) -> None:  # type: ignore[no-untyped-def]
    client, runtime, url = admin
    r = await client.get("/status")
    assert r.status_code == 200 and r.json()["users"] == 0
    assert r.json()["publicUrl"] == url
    r = await client.post("/users", json={"email": "Kid@Example.org", "password": PASSWORD})
    assert r.status_code == 201
    uid = r.json()["uid"]
    r = await client.post("/users", json={"email": "kid@example.org", "password": PASSWORD})
    assert r.status_code == 409
    r = await client.post("/users", json={"email": "not an email", "password": PASSWORD})
    assert r.status_code == 400
    r = await client.post("/users", json={"email": "b@example.org", "password": "short"})
    assert r.status_code == 400
    r = await client.post("/users", content=b"not json")
    assert r.status_code == 400
    listed = (await client.get("/users")).json()
    assert [u["email"] for u in listed] == ["Kid@Example.org"]

    # A real login through the public API, so there is a session and a device.
    async with httpx.AsyncClient(base_url=url, timeout=60) as pub:
        from server.crypto import onepw

        creds = await trio.to_thread.run_sync(
            lambda: onepw.client_credentials_v1("Kid@Example.org", PASSWORD))
        r = await pub.post("/v1/account/login", json={
            "email": "Kid@Example.org", "authPW": creds.auth_pw.hex()})
        assert r.status_code == 200, r.text
        session = r.json()["sessionToken"]
        from server.crypto import fxatokens

        sid = fxatokens.derive(bytes.fromhex(session), "sessionToken").id
        r = await pub.post("/v1/account/device", json={"name": "Kitchen", "type": "desktop"},
                           headers={"Authorization": f"Bearer fxs_{sid}"})
        assert r.status_code == 200, r.text
        device_id = r.json()["id"]

    devices = (await client.get(f"/users/{uid}/devices")).json()
    assert any(d["deviceId"] == device_id and d["name"] == "Kitchen" for d in devices)
    r = await client.post(f"/users/{uid}/disconnect", json={"deviceId": device_id})
    assert r.status_code == 200
    r = await client.post(f"/users/{uid}/disconnect", json={"deviceId": device_id})
    assert r.status_code == 404
    async with httpx.AsyncClient(base_url=url, timeout=60) as pub:
        r = await pub.get("/v1/session/status", headers={"Authorization": f"Bearer fxs_{sid}"})
        assert r.status_code == 401  # the disconnected device's session is gone

    assert (await client.get(f"/users/{uid}/authorizations")).json() == []
    r = await client.post(f"/users/{uid}/authorizations/revoke",
                          json={"scope": "x", "service": "sync", "clientId": "5882386c6d801776"})
    assert r.status_code == 404
    usage = (await client.get("/usage")).json()
    assert usage[0]["email"] == "Kid@Example.org" and usage[0]["bytes"] == 0

    # Reset: refused without confirm (the warning says what is lost), then done.
    r = await client.post(f"/users/{uid}/password", json={"password": "new password 42"})
    assert r.status_code == 400 and "Sync data" in r.json()["message"]
    r = await client.post(f"/users/{uid}/password",
                          json={"password": "new password 42", "confirm": True})
    assert r.status_code == 200 and "lost" in r.json()["warning"]
    async with httpx.AsyncClient(base_url=url, timeout=60) as pub:
        creds = await trio.to_thread.run_sync(
            lambda: onepw.client_credentials_v1("Kid@Example.org", "new password 42"))
        r = await pub.post("/v1/account/login", json={
            "email": "Kid@Example.org", "authPW": creds.auth_pw.hex()})
        assert r.status_code == 200, r.text

    r = await client.delete(f"/users/{uid}")
    assert r.status_code == 200 and r.json()["removed"] == "Kid@Example.org"
    r = await client.delete(f"/users/{uid}")
    assert r.status_code == 404
    assert (await client.get("/users")).json() == []


async def test_logs_and_settings(admin) -> None:  # type: ignore[no-untyped-def]
    client, runtime, _ = admin
    import logging

    from appliance import logs

    logging.getLogger("foxden.test").addHandler(logs.RING)
    logging.getLogger("foxden.test").warning("hello from the test")
    lines = (await client.get("/logs", params={"limit": 5})).json()
    assert any("hello from the test" in line["message"] for line in lines)
    assert (await client.get("/logs", params={"limit": "x"})).status_code == 400
    r = await client.patch("/settings", json={"signup_open": True, "public_name": "den.local"})
    assert r.status_code == 200 and r.json()["restartRequired"] is True
    got = (await client.get("/settings")).json()
    assert got["signup_open"] is True and got["public_name"] == "den.local"
    assert Config.load(runtime.paths.config_file).signup_open is True
    assert (await client.patch("/settings", json={"signup_open": "yes"})).status_code == 400
    assert (await client.patch("/settings", json={"sync_master_secret": "x"})).status_code == 400
