"""Two real Firefox ESR profiles sharing one Foxden account (firefox-testing.md §11).

A signs in by clicking Firefox's own *Sign in* and typing into Foxden's page, adds a
bookmark, a login and a history visit, and syncs; B signs in the same way and receives all
three; B's bookmark reaches A; a tab sent from A arrives on B through the device-command
queue; A restarts and stays signed in; a password change on A's settings page keeps A
connected and sends B to "Reconnect" until B signs in again with the new password; B signs
out through Firefox's own sign-out and A through the settings page. The sentinel proxy must
record nothing, and every process started must be gone at the end.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio

from tests.conftest import HawkAuth

from . import sync_helpers as sh
from .firefox import FirefoxInstance

pytestmark = pytest.mark.firefox

DISCOVERY = "/.well-known/fxa-client-configuration"
OAUTH_PARAMS = {
    "context": "oauth_webchannel_v1", "service": "sync", "client_id": "5882386c6d801776",
    "code_challenge_method": "S256", "response_type": "code", "access_type": "offline",
}
SYNC_TIMEOUT = 60.0


class Steps:
    """Names the step a failure happened in, and records how long each one took."""

    def __init__(self) -> None:
        self.timings: list[tuple[str, float]] = []
        self.current = "setup"

    def __call__(self, name: str) -> Steps:
        self.current = name
        self._t0 = time.monotonic()
        return self

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        took = time.monotonic() - self._t0
        self.timings.append((self.current + ("" if exc is None else " (FAILED)"), took))
        print(f"[e2e] step {self.current}: {took:.1f} s" + ("" if exc is None else " FAILED"))


async def create_account(foxden: Any, email: str, password: str) -> Any:
    """The account as `foxden user add` makes it: appliance.users + server.accounts.store.

    Both onepw halves (PBKDF2, scrypt) run in a worker thread; the row goes in through the
    database's async writer, since the server is running in this very process.
    """
    from appliance import users
    from server.accounts import store

    users.check_email(email)
    new = await trio.to_thread.run_sync(users.new_password, email, password)
    now_ms = int(time.time() * 1000)
    return await foxden.db.write(lambda c: store.create(c, email, new.record, now_ms))


async def sign_in_from_ui(ff: FirefoxInstance, foxden: Any, email: str, password: str,
                          *, reconnect: bool = False) -> dict[str, Any]:
    """Click Firefox's own button, check the URL it opened, then drive our page."""
    clicked = time.time()
    await ff.navigate("about:preferences#sync")
    await ff.click("rejectReSignIn" if reconnect else "noFxaSignIn", timeout=10)
    href = await ff.switch_to_tab(foxden.url + "/?", timeout=20)
    query = dict(p.split("=", 1) for p in urlsplit(href).query.split("&"))
    for key, value in OAUTH_PARAMS.items():
        assert query.get(key) == value, (key, href)
    assert query.get("keys_jwk") and query.get("code_challenge") and query.get("state"), href
    if not reconnect:
        assert foxden.seen(DISCOVERY, "GET", since=clicked), "no discovery fetch on the click"
    page = await sh.sign_in_on_page(ff, email, password)
    state = await sh.wait_signed_in(ff, timeout=30)
    assert state["user"]["email"] == email, state
    return {"page": page, "state": state, "clicked_ms": int(clicked * 1000)}


def storage_uid(cluster_url: str, root: str) -> int:
    assert cluster_url.startswith(root + "/"), cluster_url
    return int(cluster_url.rstrip("/").rsplit("/", 1)[1])


def storage_client(foxden: Any, cluster_url: str) -> httpx.AsyncClient:
    """A HAWK client on the storage node Firefox uses, with a token minted like ours."""
    uid = storage_uid(cluster_url, foxden.url)
    creds = foxden.live.mint_token(uid)
    return httpx.AsyncClient(base_url=cluster_url.rstrip("/"), timeout=30,
                             auth=HawkAuth(creds["id"], creds["key"], foxden.settings))


async def test_two_devices(firefox_factory, foxden, sentinel) -> None:
    step = Steps()
    nonce = f"{time.time_ns():x}"
    email = f"household-{nonce}@example.test"
    password = f"correct horse {nonce}"
    new_password = f"battery staple {nonce}"
    bm_a = (f"{foxden.url}/e2e/bookmark-a-{nonce}", f"A's bookmark {nonce}")
    visit_a = (f"{foxden.url}/e2e/visit-a-{nonce}", f"A's visit {nonce}")
    login_a = ("https://site-a.example.test", f"alice-{nonce}", f"pw-a-{nonce}")
    bm_b = (f"{foxden.url}/e2e/bookmark-b-{nonce}", f"B's bookmark {nonce}")
    tab = (f"{foxden.url}/e2e/sent-tab-{nonce}", f"Sent tab {nonce}")
    t_start = time.monotonic()

    with step("create account"):
        await create_account(foxden, email, password)

    with step("start both Firefoxes"):
        a = await firefox_factory("devA", start=False)
        b = await firefox_factory("devB", start=False)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.start)
            nursery.start_soon(b.start)

    # 1. A signs in through the real UI and our page; the automatic first sync follows.
    with step("A signs in"):
        signed = await sign_in_from_ui(a, foxden, email, password)
        state = signed["state"]
        assert state["user"]["verified"] is True
        assert state["prefs"]["root"] == foxden.url
        for key in ("auth", "oauth", "profile", "tokenserver"):
            assert state["prefs"][key].startswith(foxden.url + "/"), state["prefs"]
        sentinel.assert_clean("after A's sign-in")
    with step("A's first sync"):
        await sh.wait_for_sync_after(a, signed["clicked_ms"], timeout=SYNC_TIMEOUT)
        result = await sh.sync_now(a, timeout=SYNC_TIMEOUT)
        sh.assert_synced(result, "A's first explicit sync")
        uid = storage_uid(result["clusterURL"], foxden.url)

    # 2. A adds a bookmark, a login and a visit, and syncs them up.
    with step("A adds data and syncs"):
        before = time.time()
        await sh.add_bookmark(a, *bm_a)
        await sh.add_login(a, *login_a)
        await sh.add_visit(a, *visit_a)
        sh.assert_synced(await sh.sync_now(a, timeout=SYNC_TIMEOUT), "A's upload")
        async with storage_client(foxden, result["clusterURL"]) as storage:
            info = (await storage.get("/info/collections")).json()
        for coll in ("bookmarks", "history", "passwords", "clients", "meta", "crypto"):
            assert coll in info, (coll, info)
        for coll in ("bookmarks", "history", "passwords"):
            assert info[coll] >= before - 1, (coll, info[coll], before)

    # 3. B signs in, syncs, and has all three.
    with step("B signs in"):
        signed_b = await sign_in_from_ui(b, foxden, email, password)
    with step("B's first sync"):
        await sh.wait_for_sync_after(b, signed_b["clicked_ms"], timeout=SYNC_TIMEOUT)
        result_b = await sh.sync_now(b, timeout=SYNC_TIMEOUT)
        sh.assert_synced(result_b, "B's first explicit sync")
        assert storage_uid(result_b["clusterURL"], foxden.url) == uid
        got = await sh.find_bookmark(b, *bm_a)
        assert got and got["parentGuid"] == sh.TOOLBAR_GUID, got
        row = await sh.place(b, visit_a[0])
        assert row and row["visit_count"] > 0, row
        assert {"origin": login_a[0], "formActionOrigin": login_a[0], "username": login_a[1],
                "password": login_a[2]} in await sh.logins(b)
        sentinel.assert_clean("after B's first sync")

    # 4. The reverse: B's bookmark reaches A (no push, so A is told to sync).
    with step("B's bookmark reaches A"):
        await sh.add_bookmark(b, *bm_b)
        sh.assert_synced(await sh.sync_now(b, timeout=SYNC_TIMEOUT), "B's upload")
        sh.assert_synced(await sh.sync_now(a, timeout=SYNC_TIMEOUT), "A's download")
        assert await sh.find_bookmark(a, *bm_b), "B's bookmark did not reach A"
        assert await sh.find_bookmark(a, *bm_a), "A lost its own bookmark"

    # 5. Devices, as the server reports them to Firefox, and the clients collection.
    with step("devices"):
        state_a, state_b = await sh.fxa_state(a), await sh.fxa_state(b)
        devices = await sh.devices(a)
        by_id = {d["id"]: d for d in devices}
        assert set(by_id) == {state_a["deviceId"], state_b["deviceId"]}, devices
        assert by_id[state_a["deviceId"]]["isCurrentDevice"]
        assert by_id[state_a["deviceId"]]["name"].startswith("devA\u2019s Firefox on ")
        assert by_id[state_b["deviceId"]]["name"].startswith("devB\u2019s Firefox on ")
        assert {d["type"] for d in devices} == {"desktop"}
        assert sh.SEND_TAB_COMMAND in by_id[state_b["deviceId"]]["availableCommands"], devices
        async with storage_client(foxden, result["clusterURL"]) as storage:
            clients = (await storage.get("/storage/clients")).json()
        assert len(clients) == 2, clients

    # 6. Send Tab A -> B through the server's device-command queue.
    with step("send tab"):
        report = await sh.send_tab(a, state_b["deviceId"], *tab)
        assert report == {"succeeded": [state_b["deviceId"]], "failed": []}, report
        assert [e for e in foxden.seen("/v1/account/devices/invoke_command", "POST")
                if e.status == 200], "no successful invoke_command"
        received = await sh.receive_tabs(b)
        assert [(t["uri"], t["title"]) for t in received] == [tab], received
        assert received[0]["sender"] and received[0]["sender"]["id"] == state_a["deviceId"]

        async def tab_open() -> bool:
            return tab[0] in await sh.open_tab_urls(b)

        await b.wait_until(tab_open, "the received tab to open in B", timeout=15)

    # 7. A restarts: still signed in, no new discovery fetch, syncs, data intact.
    with step("A restarts"):
        restarted = time.time()
        await a.restart()
        state = await sh.wait_signed_in(a, timeout=30)
        assert state["deviceId"] == state_a["deviceId"]
        sh.assert_synced(await sh.sync_now(a, timeout=SYNC_TIMEOUT), "A's sync after restart")
        assert not foxden.seen(DISCOVERY, since=restarted), "discovery fetched while signed in"
        assert await sh.find_bookmark(a, *bm_a) and await sh.find_bookmark(a, *bm_b)

    # 8. Password change on A's settings page: A stays connected, B must reconnect.
    with step("password change"):
        await sh.open_settings(a)
        await sh.change_password_on_settings(a, password, new_password)
        state = await sh.wait_signed_in(a, timeout=20)
        sh.assert_synced(await sh.sync_now(a, timeout=SYNC_TIMEOUT), "A's sync after change")
        # B's session died with the change: Firefox's session check (what it runs after a
        # 401 errno 110) says "needs reauthentication", and the UI turns to "Reconnect".
        status_b = await sh.check_account_status(b)
        assert status_b["ok"] is False, status_b

        async def b_needs_reauth() -> bool:
            return (await sh.ui_state(b))["status"] == "login_failed"

        await b.wait_until(b_needs_reauth, "B's UIState to become login_failed", timeout=10)
    with step("B reconnects with the new password"):
        await sign_in_from_ui(b, foxden, email, new_password, reconnect=True)
        result = await sh.sync_now(b, timeout=SYNC_TIMEOUT)
        sh.assert_synced(result, "B's sync after reconnecting")
        assert storage_uid(result["clusterURL"], foxden.url) == uid  # same kB, same storage
        assert await sh.find_bookmark(b, *bm_a) and await sh.find_bookmark(b, *bm_b)

    # 9. Sign-out: B through Firefox's own Sign out, A through the settings page.
    with step("sign out"):
        since = time.time()
        state = await sh.sign_out(b)
        assert state["user"] is None and state["ui"]["status"] == "not_configured", state
        assert state["userPrefs"] == [], state  # the autoconfigured endpoints are reset
        destroyed = foxden.seen("/v1/session/destroy", "POST", since=since)
        assert destroyed and destroyed[-1].status == 200, destroyed
        remaining = await sh.devices(a)
        assert [d["id"] for d in remaining] == [state_a["deviceId"]], remaining
        await sh.open_settings(a)
        await sh.sign_out_on_settings(a)

        async def a_signed_out() -> bool:
            return (await sh.fxa_state(a))["user"] is None

        await a.wait_until(a_signed_out, "A to sign out locally after the page's logout")

    sentinel.assert_clean("at the end")
    total = time.monotonic() - t_start
    print("[e2e] timings: " + ", ".join(f"{n} {t:.1f}s" for n, t in step.timings)
          + f"; total {total:.1f} s")
