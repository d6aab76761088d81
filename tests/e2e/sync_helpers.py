"""Chrome-context helpers: FxA state, Sync, Places, logins, Send Tab, sign-out.

Each helper runs one small async snippet in the browser's chrome context (see
firefox-testing.md §6) and returns plain JSON. Nothing here returns tokens or keys.
Every wait has a deadline: snippets race their awaits against a timer shorter than the
Marionette script timeout, and the Python-side polls use :meth:`FirefoxInstance.wait_until`.
"""

from __future__ import annotations

import time
from typing import Any

from .firefox import FirefoxInstance

SYNC_TIMEOUT = 60.0
FXA_CREDENTIALS_ORIGIN = "chrome://FirefoxAccounts"
TOOLBAR_GUID = "toolbar_____"

PRELUDE = """
const { setTimeout, clearTimeout } = ChromeUtils.importESModule(
  "resource://gre/modules/Timer.sys.mjs");
const { getFxAccountsSingleton } = ChromeUtils.importESModule(
  "resource://gre/modules/FxAccounts.sys.mjs");
const { UIState } = ChromeUtils.importESModule("resource://services-sync/UIState.sys.mjs");
const { Weave } = ChromeUtils.importESModule("resource://services-sync/main.sys.mjs");
const { PlacesUtils } = ChromeUtils.importESModule("resource://gre/modules/PlacesUtils.sys.mjs");
const fxa = getFxAccountsSingleton();
const sleep = ms => new Promise(r => setTimeout(r, ms));
const within = (ms, promise, what) => Promise.race([promise, new Promise((_, reject) =>
  setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))]);
const weaveStatus = () => ({service: Weave.Status.service, login: Weave.Status.login,
                            sync: Weave.Status.sync,
                            engines: Object.assign({}, Weave.Status.engines || {})});
const ui = () => {
  const s = UIState.get();
  return {status: s.status, syncing: !!s.syncing,
          lastSync: s.lastSync ? s.lastSync.getTime() : null, email: s.email || null};
};
"""

SYNC_OK = {"service": "success.status_ok", "login": "success.login", "sync": "success.sync"}


async def chrome(ff: FirefoxInstance, body: str, *args: Any, timeout: float = 30.0) -> Any:
    return await ff.chrome(PRELUDE + body, *args, timeout=timeout)


# ---------------------------------------------------------------- FxA state


async def fxa_state(ff: FirefoxInstance) -> dict[str, Any]:
    """Signed-in user, verified flag, device id and name, UIState, Weave status, prefs."""
    return await chrome(ff, """
        const user = await fxa.getSignedInUser();
        let deviceId = null;
        if (user) { try { deviceId = await fxa.device.getLocalId(); } catch (e) {} }
        const pref = n => Services.prefs.getPrefType(n) ? Services.prefs.getStringPref(n) : null;
        await Weave.Service.promiseInitialized;
        return {
          user: user ? {email: user.email, uid: user.uid, verified: user.verified} : null,
          hasLocalSession: user ? await fxa.hasLocalSession() : false,
          deviceId,
          deviceName: fxa.device.getLocalName(),
          ui: ui(),
          weave: weaveStatus(),
          clusterURL: Weave.Service.clusterURL || "",
          prefs: {root: pref("identity.fxaccounts.remote.root"),
                  auth: pref("identity.fxaccounts.auth.uri"),
                  oauth: pref("identity.fxaccounts.remote.oauth.uri"),
                  profile: pref("identity.fxaccounts.remote.profile.uri"),
                  tokenserver: pref("identity.sync.tokenserver.uri")},
          // Endpoint prefs Firefox wrote itself (sign-out clears them back to Mozilla's).
          userPrefs: ["identity.fxaccounts.remote.root", "identity.fxaccounts.auth.uri",
                      "identity.fxaccounts.remote.oauth.uri",
                      "identity.fxaccounts.remote.profile.uri",
                      "identity.sync.tokenserver.uri"].filter(
                        n => Services.prefs.prefHasUserValue(n)),
        };
    """)


async def ui_state(ff: FirefoxInstance) -> dict[str, Any]:
    return await chrome(ff, "return ui();")


async def wait_signed_in(ff: FirefoxInstance, *, timeout: float = 30.0) -> dict[str, Any]:
    """Until getSignedInUser() is verified and UIState says signed_in."""
    async def probe() -> dict[str, Any] | None:
        state = await fxa_state(ff)
        user = state["user"]
        ok = user and user["verified"] and state["ui"]["status"] == "signed_in"
        return state if ok else None

    return await ff.wait_until(probe, "a verified, signed-in account", timeout=timeout,
                               interval=0.5)


async def wait_for_sync_after(ff: FirefoxInstance, since_ms: int, *,
                              timeout: float = SYNC_TIMEOUT) -> dict[str, Any]:
    """§6.1: the automatic sync after sign-in: signed_in, not syncing, lastSync > since."""
    async def probe() -> dict[str, Any] | None:
        s = await ui_state(ff)
        done = (s["status"] == "signed_in" and not s["syncing"] and s["lastSync"]
                and s["lastSync"] > since_ms)
        return s if done else None

    return await ff.wait_until(probe, f"a sync that finished after {since_ms}",
                               timeout=timeout, interval=0.5)


async def sync_now(ff: FirefoxInstance, *, timeout: float = SYNC_TIMEOUT,
                   why: str = "user") -> dict[str, Any]:
    """Run ``Weave.Service.sync()`` and report how it ended (§6.1).

    Waits for a sync already running to end first (otherwise sync() returns at once),
    registers the observers before starting, and returns the topic that ended it, the three
    ``Weave.Status`` fields, per-engine results and errors. Check the result with
    :func:`assert_synced`; never trust "no exception".
    """
    ms = int(timeout * 1000)
    return await chrome(ff, """
        const [ms, why] = arguments;
        await Weave.Service.promiseInitialized;
        const t0 = Date.now();
        while (Weave.Service.locked && Date.now() - t0 < ms / 2) { await sleep(100); }
        const engines = [], engineErrors = [];
        let finish;
        const ended = new Promise(r => { finish = r; });
        const obs = {observe(subject, topic, data) {
          if (topic == "weave:engine:sync:finish") { engines.push(data); return; }
          if (topic == "weave:engine:sync:error") {
            engineErrors.push({engine: data, error: String(subject)}); return; }
          finish(topic);
        }};
        const topics = ["weave:service:sync:finish", "weave:service:sync:error",
                        "weave:service:login:error", "weave:engine:sync:finish",
                        "weave:engine:sync:error"];
        for (const t of topics) Services.obs.addObserver(obs, t);
        let topic;
        const started = Date.now();
        try {
          const run = Weave.Service.sync({why});
          topic = await Promise.race([ended, sleep(ms - (Date.now() - t0) - 1000).then(
            () => "timeout")]);
          await Promise.race([run, sleep(2000)]);
        } finally {
          for (const t of topics) Services.obs.removeObserver(obs, t);
        }
        return {topic, seconds: (Date.now() - started) / 1000, status: weaveStatus(),
                engines, engineErrors, clusterURL: Weave.Service.clusterURL || "", ui: ui()};
    """, ms, why, timeout=timeout + 5)


def assert_synced(result: dict[str, Any], what: str = "sync") -> None:
    status = {k: result["status"][k] for k in SYNC_OK}
    problems = []
    if result["topic"] != "weave:service:sync:finish":
        problems.append(f"ended with {result['topic']}")
    if status != SYNC_OK:
        problems.append(f"Weave.Status {status}")
    if result.get("engineErrors"):
        problems.append(f"engine errors {result['engineErrors']}")
    if problems:
        raise AssertionError(f"{what} failed: {'; '.join(problems)} (full result {result})")


# ---------------------------------------------------------------- Places and logins


async def add_bookmark(ff: FirefoxInstance, url: str, title: str) -> str:
    """A bookmark on the toolbar; returns its guid."""
    return await chrome(ff, """
        const bm = await PlacesUtils.bookmarks.insert({
          parentGuid: PlacesUtils.bookmarks.toolbarGuid, url: arguments[0], title: arguments[1]});
        return bm.guid;
    """, url, title)


async def bookmarks(ff: FirefoxInstance) -> list[dict[str, Any]]:
    """Every bookmark: {guid, title, url, parentGuid, path} (path = titles of the folders)."""
    return await chrome(ff, """
        const tree = await PlacesUtils.promiseBookmarksTree(PlacesUtils.bookmarks.rootGuid);
        const out = [];
        const walk = (node, parent, path) => {
          if (node.uri) out.push({guid: node.guid, title: node.title || "", url: node.uri,
                                  parentGuid: parent, path});
          for (const c of node.children || []) walk(c, node.guid, path.concat([node.guid]));
        };
        walk(tree, null, []);
        return out;
    """)


async def find_bookmark(ff: FirefoxInstance, url: str, title: str) -> dict[str, Any] | None:
    for bm in await bookmarks(ff):
        if bm["url"] == url and bm["title"] == title:
            return bm
    return None


async def add_visit(ff: FirefoxInstance, url: str, title: str) -> None:
    await chrome(ff, """
        await PlacesUtils.history.insert({url: arguments[0], title: arguments[1],
                                          visits: [{date: new Date()}]});
        return true;
    """, url, title)


async def place(ff: FirefoxInstance, url: str) -> dict[str, Any] | None:
    """The moz_places row of ``url``: {url, title, visit_count}, or None."""
    return await chrome(ff, """
        const db = await PlacesUtils.promiseDBConnection();
        const rows = await db.execute(
          "SELECT url, title, visit_count FROM moz_places WHERE url = :url", {url: arguments[0]});
        if (!rows.length) return null;
        const r = rows[0];
        return {url: r.getResultByName("url"), title: r.getResultByName("title"),
                visit_count: r.getResultByName("visit_count")};
    """, url)


async def add_login(ff: FirefoxInstance, origin: str, username: str, password: str) -> str:
    """A saved login for a form on ``origin``; returns its guid."""
    return await chrome(ff, """
        const [origin, username, password] = arguments;
        const info = Cc["@mozilla.org/login-manager/loginInfo;1"]
          .createInstance(Ci.nsILoginInfo);
        info.init(origin, origin, null, username, password, "username", "password");
        const added = await Services.logins.addLoginAsync(info);
        return added.QueryInterface(Ci.nsILoginMetaInfo).guid;
    """, origin, username, password)


async def logins(ff: FirefoxInstance) -> list[dict[str, str]]:
    """Saved logins without FxA's own ``chrome://FirefoxAccounts`` entry (pitfall 12)."""
    return await chrome(ff, """
        const all = await Services.logins.getAllLogins();
        return all.filter(l => l.origin != arguments[0]).map(l => ({
          origin: l.origin, formActionOrigin: l.formActionOrigin, username: l.username,
          password: l.password}));
    """, FXA_CREDENTIALS_ORIGIN)


# ---------------------------------------------------------------- devices and Send Tab


async def devices(ff: FirefoxInstance) -> list[dict[str, Any]]:
    """The account's devices as Firefox sees them (fresh from the server)."""
    return await chrome(ff, """
        await within(20000, fxa.device.refreshDeviceList({ignoreCached: true}), "device list");
        return (fxa.device.recentDeviceList || []).map(d => ({
          id: d.id, name: d.name, type: d.type, isCurrentDevice: !!d.isCurrentDevice,
          availableCommands: Object.keys(d.availableCommands || {})}));
    """, timeout=30)


SEND_TAB_COMMAND = "https://identity.mozilla.com/cmd/open-uri"


async def send_tab(ff: FirefoxInstance, device_id: str, url: str, title: str) -> dict[str, Any]:
    """Send Tab through the FxA commands API (invoke_command on the server's queue)."""
    return await chrome(ff, """
        const [id, url, title] = arguments;
        await within(20000, fxa.device.refreshDeviceList({ignoreCached: true}), "device list");
        const target = (fxa.device.recentDeviceList || []).find(d => d.id == id);
        if (!target) return {succeeded: [], failed: [{id, error: "no such device"}]};
        const report = await within(20000, fxa.commands.sendTab.send([target], {url, title}),
                                    "send tab");
        return {succeeded: report.succeeded.map(d => d.id),
                failed: report.failed.map(f => ({id: f.device.id, error: String(f.error)}))};
    """, device_id, url, title, timeout=45)


async def receive_tabs(ff: FirefoxInstance) -> list[dict[str, Any]]:
    """Poll the device-command queue (as *Sync Now* does) and return the tabs received.

    Firefox's own AccountsGlue observer opens them as tabs, like a real user would see.
    """
    return await chrome(ff, """
        const received = [];
        const obs = {observe(subject) {
          for (const t of subject.wrappedJSObject.object) {
            received.push({uri: t.uri, title: t.title || "",
                           sender: t.sender ? {id: t.sender.id, name: t.sender.name} : null});
          }
        }};
        Services.obs.addObserver(obs, "fxaccounts:commands:open-uri");
        try {
          await within(20000, fxa.commands.pollDeviceCommands(), "pollDeviceCommands");
        } finally {
          Services.obs.removeObserver(obs, "fxaccounts:commands:open-uri");
        }
        return received;
    """, timeout=30)


async def open_tab_urls(ff: FirefoxInstance) -> list[str]:
    return await chrome(ff, """
        const win = Services.wm.getMostRecentWindow("navigator:browser");
        return win.gBrowser.tabs.map(t => t.linkedBrowser.currentURI.spec);
    """)


# ---------------------------------------------------------------- sign-out


async def sign_out(ff: FirefoxInstance, *, timeout: float = 20.0) -> dict[str, Any]:
    """The *Sign out* of about:preferences (gSync.disconnect) without its confirm dialog.

    Firefox signs out locally, then destroys the session on the server in the background;
    this waits for that (``testhelper-fxa-signout-complete``) and returns the FxA state.
    """
    ms = int(timeout * 1000)
    await chrome(ff, """
        const win = Services.wm.getMostRecentWindow("navigator:browser");
        let done;
        const complete = new Promise(r => { done = r; });
        const obs = {observe() { done(true); }};
        Services.obs.addObserver(obs, "testhelper-fxa-signout-complete");
        try {
          await win.gSync.disconnect({confirm: false});
          await within(arguments[0], complete, "the server side of sign-out");
        } finally {
          Services.obs.removeObserver(obs, "testhelper-fxa-signout-complete");
        }
        return true;
    """, ms, timeout=timeout + 5)
    return await fxa_state(ff)


# ---------------------------------------------------------------- misc


def now_ms() -> int:
    return int(time.time() * 1000)


async def check_account_status(ff: FirefoxInstance) -> dict[str, Any]:
    """What Firefox does after a 401 errno 110: /session/status, then /account/status.

    ``ok`` false plus UIState ``login_failed`` is the "Reconnect" state.
    """
    return await chrome(ff, """
        const ok = await within(20000, fxa._internal.checkAccountStatus(
          fxa._internal.currentAccountState), "checkAccountStatus");
        return {ok, ui: ui(), user: await fxa.getSignedInUser()};
    """, timeout=30)


# ---------------------------------------------------------------- Foxden's own pages
# Element ids and body[data-state] values are the ones documented at the top of
# server/web/static/js/signin.js and settings.js.

PAGE_PROBE = """
const b = document.body;
const text = id => { const e = document.getElementById(id);
  return e && !e.hidden ? (e.textContent || "").trim() : ""; };
return {state: b ? b.dataset.state || null : null, page: b ? b.dataset.page || null : null,
        href: location.href,
        errors: Object.fromEntries(arguments[0].map(id => [id, text(id)]).filter(p => p[1]))};
"""
SIGNIN_ERRORS = ["email-error", "password-error", "stopped-message", "working-step"]
SETTINGS_ERRORS = ["password-error", "signout-error", "message-title", "message-text"]


class PageError(AssertionError):
    pass


async def page_state(ff: FirefoxInstance, error_ids: list[str] = SIGNIN_ERRORS) -> dict:
    return await ff.content(PAGE_PROBE, error_ids)


async def wait_page(ff: FirefoxInstance, states: set[str], *, timeout: float = 20.0,
                    error_ids: list[str] = SIGNIN_ERRORS, fail_on_error: str | None = None,
                    ) -> dict[str, Any]:
    """Until body[data-state] is one of ``states``; a visible ``fail_on_error`` text fails."""
    last: dict[str, Any] = {}

    async def probe() -> dict[str, Any] | None:
        nonlocal last
        last = await page_state(ff, error_ids)
        if fail_on_error and last["errors"].get(fail_on_error):
            raise PageError(f"{ff.name}: the page reported: {last}")
        return last if last["state"] in states else None

    try:
        return await ff.wait_until(probe, f"page state in {sorted(states)}", timeout=timeout,
                                   interval=0.25)
    except PageError:
        raise
    except Exception as exc:
        raise PageError(f"{ff.name}: page never reached {sorted(states)}; last {last}") from exc


async def sign_in_on_page(ff: FirefoxInstance, email: str, password: str, *,
                          timeout: float = 60.0) -> dict[str, Any]:
    """Drive /: type the email, Continue, type the password, Sign in, until "done"."""
    state = await wait_page(ff, {"email", "no-channel", "insecure", "stopped"}, timeout=20)
    if state["state"] != "email":
        raise PageError(f"{ff.name}: sign-in page stuck before the email step: {state}")
    await ff.type_into("email", email)
    await ff.click("email-continue")
    await wait_page(ff, {"password"}, timeout=10, fail_on_error="email-error")
    await ff.type_into("password", password)
    await ff.click("password-submit")
    state = await wait_page(ff, {"done", "stopped"}, timeout=timeout,
                            fail_on_error="password-error")
    if state["state"] != "done":
        raise PageError(f"{ff.name}: sign-in stopped: {state}")
    return state


async def open_settings(ff: FirefoxInstance, *, timeout: float = 20.0) -> dict[str, Any]:
    """about:preferences#sync → *Manage account* (#verifiedManage) → our /settings, home."""
    await ff.navigate("about:preferences#sync")
    await ff.click("verifiedManage", timeout=10)
    await ff.switch_to_tab(ff.server_root + "/settings", timeout=timeout)
    return await wait_page(ff, {"home"}, timeout=timeout, error_ids=SETTINGS_ERRORS)


async def change_password_on_settings(ff: FirefoxInstance, old: str, new: str, *,
                                      timeout: float = 60.0) -> dict[str, Any]:
    await ff.click("menu-password")
    await wait_page(ff, {"password"}, timeout=10, error_ids=SETTINGS_ERRORS)
    await ff.type_into("old-password", old)
    await ff.type_into("new-password", new)
    await ff.type_into("new-password-confirm", new)
    await ff.click("change-password-submit")
    return await wait_page(ff, {"message", "home"}, timeout=timeout,
                           error_ids=SETTINGS_ERRORS, fail_on_error="password-error")


async def sign_out_on_settings(ff: FirefoxInstance, *, timeout: float = 30.0) -> dict[str, Any]:
    await ff.click("menu-signout")
    await wait_page(ff, {"signout"}, timeout=10, error_ids=SETTINGS_ERRORS)
    await ff.click("signout-submit")
    return await wait_page(ff, {"message", "signed-out"}, timeout=timeout,
                           error_ids=SETTINGS_ERRORS, fail_on_error="signout-error")
