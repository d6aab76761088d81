"""Smoke tests of the harness against what exists: start, both contexts, the Sign-in click."""

from __future__ import annotations

import base64
import json
import time

import pytest
import trio

from .firefox import EXTRA_PREFS, FirefoxInstance, user_js_prefs

pytestmark = pytest.mark.firefox

DISCOVERY = "/.well-known/fxa-client-configuration"
DESKTOP_CLIENT_ID = "5882386c6d801776"
OLDSYNC = "https://identity.mozilla.com/apps/oldsync"


def b64url_json(value: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


async def test_headless_start_and_both_contexts(firefox_factory, foxden, sentinel) -> None:
    t0 = time.monotonic()
    ff: FirefoxInstance = await firefox_factory("devA")
    started = time.monotonic() - t0

    # user.js: the 114 prefs of the doc plus ours, as Firefox actually runs with them.
    prefs = user_js_prefs(foxden.url, sentinel.port)
    names = [name for name, _ in prefs]
    assert len(prefs) == 114 and len(set(names)) == 114
    prefs += EXTRA_PREFS
    names += [name for name, _ in EXTRA_PREFS]
    got = await ff.chrome("""
        const out = {};
        for (const name of arguments[0]) {
          const t = Services.prefs.getPrefType(name);
          out[name] = t == Services.prefs.PREF_STRING ? Services.prefs.getStringPref(name)
                    : t == Services.prefs.PREF_INT ? Services.prefs.getIntPref(name)
                    : t == Services.prefs.PREF_BOOL ? Services.prefs.getBoolPref(name) : null;
        }
        return out;
    """, names)
    # Firefox overwrites marionette.port with the port it picked (MarionetteActivePort's).
    assert got.pop("marionette.port") == ff.marionette.port
    assert got == {name: value for name, value in prefs if name != "marionette.port"}

    caps = await ff.call(lambda m: m.session_capabilities)
    assert caps["moz:headless"] is True
    assert caps["browserName"] == "firefox"
    assert int(caps["browserVersion"].split(".")[0]) >= 140

    chrome = await ff.chrome("""
        const { UIState } = ChromeUtils.importESModule(
          "resource://services-sync/UIState.sys.mjs");
        const { getFxAccountsSingleton } = ChromeUtils.importESModule(
          "resource://gre/modules/FxAccounts.sys.mjs");
        return {
          version: Services.appinfo.version,
          marionettePort: Services.prefs.getIntPref("marionette.port"),
          user: await getFxAccountsSingleton().getSignedInUser(),
          ui: UIState.get().status,
          deviceName: getFxAccountsSingleton().device.getLocalName(),
        };
    """)
    assert chrome["version"] == caps["browserVersion"]
    assert chrome["marionettePort"] == ff.marionette.port  # 0 in user.js; Firefox writes back
    assert chrome["user"] is None
    assert chrome["ui"] == "not_configured"
    assert chrome["deviceName"].startswith("devA\u2019s Firefox on ")

    # Content context: a page of our server on loopback, read through the DOM.
    await ff.navigate(foxden.url + "/__lbheartbeat__")
    assert await ff.url() == foxden.url + "/__lbheartbeat__"
    assert await ff.content("return document.readyState;") == "complete"
    assert foxden.seen("/__lbheartbeat__", "GET")
    print(f"devA: spawn -> Marionette session {started:.2f} s; timings {ff.starts}")
    quit_took = await ff.quit()
    print(f"devA: in-app quit -> process gone {quit_took}")
    assert quit_took is not None, "Firefox needed SIGTERM/SIGKILL instead of Marionette:Quit"
    assert not ff.running and not ff.leftover_processes()
    sentinel.assert_clean("after start, navigation and quit")


IDLE_SECONDS = 30


async def test_two_instances_in_parallel_then_idle(firefox_factory, sentinel) -> None:
    """Two at once, then idle past BrowserGlue's 20 s "user idle" tasks: nothing leaks.

    With only the doc's 114 prefs, the GMP idle task tried update.googleapis.com here
    (see EXTRA_PREFS in firefox.py); this test keeps that from coming back.
    """
    a = await firefox_factory("devA", start=False)
    b = await firefox_factory("devB", start=False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.start)
        nursery.start_soon(b.start)
    names = [await ff.chrome("""
        const { getFxAccountsSingleton } = ChromeUtils.importESModule(
          "resource://gre/modules/FxAccounts.sys.mjs");
        return getFxAccountsSingleton().device.getLocalName();
    """) for ff in (a, b)]
    assert names[0] != names[1]
    assert a.marionette.port != b.marionette.port
    print(f"parallel start: devA {a.starts}, devB {b.starts}")
    with pytest.raises(RuntimeError):
        await firefox_factory("devC", start=False)
    await trio.sleep(IDLE_SECONDS)
    assert a.running and b.running
    sentinel.assert_clean(f"after {IDLE_SECONDS} s of idling")


async def test_sign_in_click_opens_our_page_with_oauth_params(firefox_factory, foxden,
                                                              sentinel) -> None:
    ff: FirefoxInstance = await firefox_factory("devA")
    clicked = time.time()
    await ff.navigate("about:preferences#sync")
    await ff.click("noFxaSignIn", timeout=10)

    # Firefox fetches the discovery document first; without it, nothing opens.
    async def discovery_answered():
        return [e for e in foxden.seen(DISCOVERY, "GET", since=clicked) if e.status]

    fetched = await ff.wait_until(discovery_answered, f"GET {DISCOVERY}", timeout=15)
    # No count asserted: the doc saw 1 or 3 fetches per click, depending on the setup.
    if fetched[0].status != 200:
        pytest.fail(
            f"GET {DISCOVERY} answered {fetched[0].status} "
            f"({fetched[0].response_body[:200]!r}): the discovery module (server/discovery) "
            "is not there yet, so Firefox cannot start sign-in", pytrace=False)
    discovery = json.loads(fetched[0].response_body)
    assert fetched[0].headers.get("accept", "").startswith("application/json")

    href = await ff.wait_for_url(foxden.url + "/?", timeout=20)
    page = [e for e in foxden.seen("/", "GET", since=clicked)]
    assert page, "Firefox did not request our page /"
    params = page[-1].params
    assert await ff.url() == href
    expected = {
        "context": "oauth_webchannel_v1", "entrypoint": "preferences", "action": "email",
        "service": "sync", "client_id": DESKTOP_CLIENT_ID, "response_type": "code",
        "access_type": "offline", "scope": f"{OLDSYNC} profile",
        "code_challenge_method": "S256",
    }
    assert {k: params.get(k, [None])[0] for k in expected} == expected
    assert len(params["state"][0]) == 22  # 16 random bytes, base64url, no padding
    assert len(params["code_challenge"][0]) == 43  # SHA-256, base64url, no padding
    jwk = b64url_json(params["keys_jwk"][0])
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256" and jwk["x"] and jwk["y"]

    # Firefox wrote the endpoint prefs from the discovery document (firefox-testing.md §3.1).
    prefs = await ff.chrome("""
        const p = n => Services.prefs.getPrefType(n) ? Services.prefs.getStringPref(n) : null;
        return {root: p("identity.fxaccounts.remote.root"),
                auth: p("identity.fxaccounts.auth.uri"),
                oauth: p("identity.fxaccounts.remote.oauth.uri"),
                profile: p("identity.fxaccounts.remote.profile.uri"),
                token: p("identity.sync.tokenserver.uri"),
                pairing: p("identity.fxaccounts.remote.pairing.uri")};
    """)
    assert prefs["root"] == foxden.url
    auth = discovery["auth_server_base_url"].rstrip("/")
    assert prefs["auth"] == (auth if auth.endswith("/v1") else auth + "/v1")
    assert prefs["oauth"] == discovery["oauth_server_base_url"] + "/v1"
    assert prefs["profile"] == discovery["profile_server_base_url"] + "/v1"
    assert prefs["token"] == discovery["sync_tokenserver_base_url"] + "/1.0/sync/1.5"
    for key in ("auth", "oauth", "profile", "token"):
        assert prefs[key].startswith(foxden.url + "/"), (key, prefs[key])
    if prefs["pairing"] is not None:
        assert not prefs["pairing"].startswith("wss://channelserver.services.mozilla.com"), \
            "no pairing_server_base_uri: Firefox keeps Mozilla's channel server"

    # The WebChannel is bound to our origin now: fxa_status from the page gets an answer.
    status = await ff.content("""
        return await new Promise((resolve) => {
          const id = "smoke-" + Math.random();
          const timer = setTimeout(() => resolve(null), 5000);
          window.addEventListener("WebChannelMessageToContent", (ev) => {
            if (ev.detail?.message?.messageId === id) {
              clearTimeout(timer);
              resolve(JSON.parse(JSON.stringify(ev.detail.message.data)));
            }
          });
          window.dispatchEvent(new window.CustomEvent("WebChannelMessageToChrome", {
            detail: JSON.stringify({id: "account_updates", message: {
              command: "fxaccounts:fxa_status", messageId: id,
              data: {service: "sync", isPairing: false, context: "oauth_webchannel_v1"}}})}));
        });
    """, timeout=10)
    assert status is not None, "no WebChannel reply on our origin"
    assert status["signedInUser"] is None
    assert status["clientId"] == DESKTOP_CLIENT_ID
    sentinel.assert_clean("after the Sign-in click")


async def test_local_places_logins_and_sync_status(firefox_factory, foxden, sentinel) -> None:
    """The chrome-context helpers on a signed-out profile (nothing can sync yet)."""
    from . import sync_helpers as sh

    ff: FirefoxInstance = await firefox_factory("devA")
    nonce = f"{time.time_ns():x}"
    url = f"{foxden.url}/e2e/bookmark-{nonce}"
    guid = await sh.add_bookmark(ff, url, f"bookmark {nonce}")
    found = await sh.find_bookmark(ff, url, f"bookmark {nonce}")
    assert found and found["guid"] == guid and found["parentGuid"] == sh.TOOLBAR_GUID
    assert len(await sh.bookmarks(ff)) > 1  # a fresh profile has default bookmarks too

    visit = f"{foxden.url}/e2e/visit-{nonce}"
    assert await sh.place(ff, visit) is None
    await sh.add_visit(ff, visit, f"visit {nonce}")
    row = await sh.place(ff, visit)
    assert row and row["visit_count"] > 0 and row["title"] == f"visit {nonce}"

    await sh.add_login(ff, "https://site-a.example.test", f"user-{nonce}", f"pw-{nonce}")
    assert {"origin": "https://site-a.example.test", "username": f"user-{nonce}",
            "password": f"pw-{nonce}", "formActionOrigin": "https://site-a.example.test"} \
        in await sh.logins(ff)

    # Signed out, sync() returns at once with a login error: §6.1's "fast return".
    result = await sh.sync_now(ff, timeout=15)
    assert result["topic"] == "weave:service:login:error"
    assert result["status"]["login"] == "error.login.reason.no_username"
    with pytest.raises(AssertionError):
        sh.assert_synced(result)
    state = await sh.fxa_state(ff)
    assert state["user"] is None and state["ui"]["status"] == "not_configured"
    assert not foxden.requests, "a signed-out Firefox should not call the server at all"
    sentinel.assert_clean()
