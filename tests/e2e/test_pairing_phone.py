"""An emulated phone pairs with a real Firefox desktop, and with Foxden's own authority.

The phone is what application-services does on a device (pairing.md §4.1, §5.4, §13): the
test makes the PKCE pair and an ephemeral P-256 ``keys_jwk`` in Python, builds
``<origin>/pair/supp?client_id=…&keys_jwk=…#channel_id=…&channel_key=…`` and opens it in a
second headless Firefox (a fresh profile whose User-Agent pretends to be Fenix or Firefox for
iOS). That Firefox runs Foxden's real /pair/supp page; the test clicks its buttons and
captures the ``fxaccounts:oauth_login`` WebChannel event in content (a fresh profile's
WebChannel is bound to Mozilla's origin, so Firefox itself would not answer). Then the test
is the phone's native code: redeem the code with the verifier, decrypt keys_jwe, compare the
oldsync key and kid with what the signed-in desktop holds, get a storage token with the
phone's access token and upload an encrypted history visit the desktop then syncs down.

Two authorities:
* a REAL DESKTOP FIREFOX: signed in through the UI, it opens Foxden's /pair page, whose
  button sends ``fxaccounts:pair_preferences``; Firefox opens its "Connect another device"
  dialog, creates the channel on Foxden's relay and shows the QR (its URL is read in chrome
  context); after the phone joins, the dialog loads Foxden's /oauth authority page, whose
  Confirm button the test clicks through chrome context;
* FOXDEN'S PYTHON AUTHORITY (appliance/pairing/authority.py, what ``foxden pair`` runs).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import trio
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from server.crypto import onepw
from tests.conftest import HawkAuth

from . import sync_helpers as sh
from .firefox import FirefoxInstance, async_script
from .test_two_devices import Steps, create_account, sign_in_from_ui

pytestmark = pytest.mark.firefox

FENIX = "a2270f727f45f648"
IOS = "1b1a3e44c54fbb58"
OLDSYNC = "https://identity.mozilla.com/apps/oldsync"
WEBCHANNEL = "urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel"
PAIR_AUTH = "urn:ietf:wg:oauth:2.0:oob:pair-auth-webchannel"
FENIX_UA = "Mozilla/5.0 (Android 14; Mobile; rv:153.0) Gecko/153.0 Firefox/153.0"
IOS_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) FxiOS/153.0 Mobile/15E148 Safari/605.1.15")
SYNC_TIMEOUT = 60.0


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------- the emulated phone


@dataclass
class EmulatedPhone:
    """The native side of a phone's pairing flow (AS oauth.rs begin_pairing_flow)."""

    client_id: str
    verifier: str
    private: ec.EllipticCurvePrivateKey
    state: str

    @classmethod
    def new(cls, client_id: str) -> EmulatedPhone:
        return cls(client_id, b64u(secrets.token_bytes(43)),
                   ec.generate_private_key(ec.SECP256R1()), b64u(secrets.token_bytes(16)))

    @property
    def keys_jwk(self) -> str:
        return b64u(json.dumps(onepw.public_jwk(self.private.public_key())).encode())

    def supp_url(self, pairing_url: str) -> str:
        """The scanned QR's fragment appended to the phone's own /pair/supp request."""
        origin, fragment = pairing_url.split("/pair#", 1)
        query = {
            "client_id": self.client_id, "redirect_uri": WEBCHANNEL,
            "scope": f"profile {OLDSYNC}", "state": self.state,
            "code_challenge": b64u(hashlib.sha256(self.verifier.encode()).digest()),
            "code_challenge_method": "S256", "keys_jwk": self.keys_jwk,
            "access_type": "offline",
        }
        return f"{origin}/pair/supp?{urlencode(query)}#{fragment}"


CAPTURE = """
// Record every WebChannelMessageToChrome the page dispatches, as Firefox's WebChannelChild
// would see it (string or object detail), in a data attribute the test can read.
const root = document.documentElement;
if (root.dataset.e2eCapture) return true;
root.dataset.e2eCapture = "1";
window.addEventListener("WebChannelMessageToChrome", (e) => {
  const d = e.detail;
  const kind = typeof d;
  const text = kind === "string" ? d : window.wrappedJSObject.JSON.stringify(d);
  const list = JSON.parse(root.dataset.e2eWebchannel || "[]");
  list.push({kind, text});
  root.dataset.e2eWebchannel = JSON.stringify(list);
}, true);
return true;
"""
SUPP_ERRORS = ["failed-title", "failed-message", "loading-step"]
AUTH_ERRORS = ["failed-message"]


async def install_capture(ff: FirefoxInstance) -> None:
    # A named, kept sandbox: Marionette's default throw-away sandbox can be collected with
    # the listener in it (seen: the page sent oauth_login and the listener was gone).
    script = async_script(CAPTURE)

    def run(m: Any) -> Any:
        with m.using_context("content"):
            return m.execute_script(script, sandbox="e2e-webchannel-capture",
                                    new_sandbox=False)

    assert await ff.call(run) is True


async def phone_opens(ff: FirefoxInstance, url: str) -> dict[str, Any]:
    """The phone's web view loads /pair/supp; returns its confirm screen."""
    await ff.navigate(url)
    await install_capture(ff)
    state = await sh.wait_page(ff, {"confirm", "failed"}, timeout=30, error_ids=SUPP_ERRORS)
    assert state["state"] == "confirm", state
    return state


async def captured(ff: FirefoxInstance) -> list[dict[str, str]]:
    text = await ff.content("return document.documentElement.dataset.e2eWebchannel || '[]';")
    return json.loads(text)


async def page_text(ff: FirefoxInstance, element_id: str) -> str:
    return await ff.content(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent.trim() : null;",
        element_id)


async def the_oauth_login(ff: FirefoxInstance, ua: str) -> dict[str, Any]:
    """The one WebChannel message the phone page sent, in the format its browser needs."""
    async def probe() -> list[dict[str, str]] | None:
        return await captured(ff) or None

    (msg,) = await ff.wait_until(probe, "the page's oauth_login", timeout=20)
    detail = json.loads(msg["text"])
    # §4.3 / §7.6: Firefox for iOS wants an object, Fenix (and desktop) a JSON string.
    assert msg["kind"] == ("object" if "FxiOS" in ua else "string"), msg
    assert detail["id"] == "account_updates"
    message = detail["message"]
    assert message["command"] == "fxaccounts:oauth_login"
    assert message["messageId"].isdigit()
    return message["data"]  # type: ignore[no-any-return]


async def redeem(foxden: Any, phone: EmulatedPhone, code: str) -> dict[str, Any]:
    """AS complete_oauth_flow: the token call, then keys_jwe with the ephemeral key."""
    async with foxden.client() as c:
        r = await c.post("/v1/oauth/token", json={
            "grant_type": "authorization_code", "client_id": phone.client_id, "code": code,
            "code_verifier": phone.verifier})
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert {"access_token", "refresh_token", "keys_jwe"} <= set(tokens), tokens.keys()
    keys = json.loads(onepw.decrypt_keys_jwe(phone.private, tokens["keys_jwe"]))
    assert set(keys) == {OLDSYNC}, keys.keys()
    return {"tokens": tokens, "key": keys[OLDSYNC]}


async def desktop_oldsync_key(ff: FirefoxInstance) -> dict[str, str]:
    # Test-only: reads the desktop's Sync key to compare with the phone's (kept local, not
    # in sync_helpers, whose helpers never return keys).
    return await sh.chrome(ff, """
        const key = await fxa.keys.getKeyForScope(arguments[0]);
        return {kty: key.kty, scope: key.scope, kid: key.kid, k: key.k};
    """, OLDSYNC)


# ---------------------------------------------------------------- Sync 1.5 crypto


def _bundle(b64: str) -> tuple[bytes, bytes]:
    raw = base64.b64decode(b64) if "+" in b64 or "/" in b64 or b64.endswith("=") \
        else unb64u(b64)
    return raw[:32], raw[32:]


def decrypt_bso(payload: str, enc: bytes, mac: bytes) -> dict[str, Any]:
    p = json.loads(payload)
    expected = hmac.new(mac, p["ciphertext"].encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, p["hmac"]), "record HMAC mismatch: wrong key"
    dec = Cipher(algorithms.AES(enc), modes.CBC(base64.b64decode(p["IV"]))).decryptor()
    padded = dec.update(base64.b64decode(p["ciphertext"])) + dec.finalize()
    unpad = padding.PKCS7(128).unpadder()
    return json.loads(unpad.update(padded) + unpad.finalize())  # type: ignore[no-any-return]


def encrypt_bso(obj: dict[str, Any], enc: bytes, mac: bytes) -> str:
    iv = os.urandom(16)
    pad = padding.PKCS7(128).padder()
    data = pad.update(json.dumps(obj).encode()) + pad.finalize()
    e = Cipher(algorithms.AES(enc), modes.CBC(iv)).encryptor()
    ciphertext = base64.b64encode(e.update(data) + e.finalize()).decode()
    return json.dumps({"ciphertext": ciphertext, "IV": base64.b64encode(iv).decode(),
                       "hmac": hmac.new(mac, ciphertext.encode(), hashlib.sha256).hexdigest()})


async def phone_uploads_visit(foxden: Any, access_token: str, key: dict[str, str], url: str,
                              title: str) -> str:
    """The phone's Sync: tokenserver with its OAuth token, then an encrypted history visit."""
    async with foxden.client() as c:
        r = await c.get("/1.0/sync/1.5", headers={
            "Authorization": f"Bearer {access_token}", "X-KeyID": key["kid"],
            "Accept": "application/json"})
    assert r.status_code == 200, r.text
    token = r.json()
    auth = HawkAuth(token["id"], token["key"], foxden.settings)
    async with httpx.AsyncClient(base_url=token["api_endpoint"], auth=auth, timeout=30) as st:
        r = await st.get("/storage/crypto/keys")
        assert r.status_code == 200, r.text
        keys = decrypt_bso(r.json()["payload"], *_bundle(key["k"]))
        enc, mac = (base64.b64decode(x) for x in
                    keys.get("collections", {}).get("history", keys["default"]))
        guid = b64u(secrets.token_bytes(9))
        record = {"id": guid, "histUri": url, "title": title,
                  "visits": [{"date": int(time.time() * 1_000_000), "type": 1}]}
        r = await st.post("/storage/history", json=[
            {"id": guid, "payload": encrypt_bso(record, enc, mac), "sortindex": 100}])
        assert r.status_code == 200 and r.json()["success"] == [guid], r.text
    return guid


async def check_phone_against_desktop(desktop: FirefoxInstance, foxden: Any,
                                      phone: EmulatedPhone, data: dict[str, Any],
                                      nonce: str) -> None:
    assert data == {"action": "pairing", "code": data["code"], "state": phone.state,
                    "redirect": WEBCHANNEL}, data
    got = await redeem(foxden, phone, data["code"])
    mine = await desktop_oldsync_key(desktop)
    assert got["key"]["kid"] == mine["kid"] and got["key"]["k"] == mine["k"], \
        (got["key"]["kid"], mine["kid"])
    assert got["key"] == mine
    url, title = f"{foxden.url}/e2e/phone-visit-{nonce}", f"Phone visit {nonce}"
    await phone_uploads_visit(foxden, got["tokens"]["access_token"], got["key"], url, title)
    sh.assert_synced(await sh.sync_now(desktop, timeout=SYNC_TIMEOUT), "desktop's download")
    row = await sh.place(desktop, url)
    assert row and row["visit_count"] > 0 and row["title"] == title, row


def relay_channels(foxden: Any) -> int:
    return len(foxden.recorder.app.extensions["foxden.pairing"])


async def signed_in_desktop(firefox_factory: Any, foxden: Any, email: str, password: str,
                            phone_ua: str) -> tuple[FirefoxInstance, FirefoxInstance]:
    desktop = await firefox_factory("devA", start=False)
    phone = await firefox_factory("phone", start=False,
                                  extra_prefs=[("general.useragent.override", phone_ua)])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(desktop.start)
        nursery.start_soon(phone.start)
    signed = await sign_in_from_ui(desktop, foxden, email, password)
    await sh.wait_for_sync_after(desktop, signed["clicked_ms"], timeout=SYNC_TIMEOUT)
    return desktop, phone


# ---------------------------------------------------------------- desktop Firefox's dialog

CAPTURE_PAIRING_URI = """
// The QR code's text: FxAccountsPairingFlow.start() returns it to the dialog, which only
// draws it. Wrap start() (the same module instance the dialog uses) and keep the result.
const { FxAccountsPairingFlow } = ChromeUtils.importESModule(
  "resource://gre/modules/FxAccountsPairing.sys.mjs");
if (!FxAccountsPairingFlow.e2eStart) {
  FxAccountsPairingFlow.e2eStart = FxAccountsPairingFlow.start;
  FxAccountsPairingFlow.start = async function (options) {
    const uri = await FxAccountsPairingFlow.e2eStart.call(this, options);
    FxAccountsPairingFlow.e2eURIs = (FxAccountsPairingFlow.e2eURIs || []).concat([uri]);
    return uri;
  };
}
return true;
"""
READ_PAIRING_URIS = """
const { FxAccountsPairingFlow } = ChromeUtils.importESModule(
  "resource://gre/modules/FxAccountsPairing.sys.mjs");
return FxAccountsPairingFlow.e2eURIs || [];
"""
QR_STATUS = """
// The pairing dialog about:preferences shows (fxaPairDevice.xhtml in a sub-dialog frame):
// its #qrWrapper says loading | ready | error.
const win = Services.wm.getMostRecentWindow("navigator:browser");
const prefs = win.gBrowser.selectedBrowser.contentDocument;
for (const f of prefs ? prefs.querySelectorAll(".dialogFrame") : []) {
  const qr = f.contentDocument && f.contentDocument.getElementById("qrWrapper");
  if (qr) return qr.getAttribute("pairing-status");
}
return null;
"""
AUTH_ERRORS = ["failed-message", "allow-email", "allow-device", "allow-app", "allow-place",
               "allow-supp-ready"]


async def desktop_shows_qr(desktop: FirefoxInstance, foxden: Any, email: str) -> str:
    """Foxden's /pair page in signed-in desktop Firefox -> "Show the pairing code"
    (fxaccounts:pair_preferences) -> about:preferences?action=pair#sync -> the QR's URL."""
    await desktop.chrome(CAPTURE_PAIRING_URI)
    await desktop.navigate(foxden.url + "/pair")
    await sh.wait_page(desktop, {"desktop"}, timeout=15, error_ids=[])
    assert await page_text(desktop, "desktop-email") == email
    await desktop.click("pair-show-code")
    await desktop.wait_for_url("about:preferences?action=pair#sync", timeout=15)

    async def qr_uri() -> str | None:
        uris = await desktop.chrome(READ_PAIRING_URIS)
        return uris[-1] if uris else None

    pairing_url: str = await desktop.wait_until(qr_uri, "the QR code", timeout=20)
    assert re.fullmatch(re.escape(foxden.url) + r"/pair#channel_id=[A-Za-z0-9_-]{22}"
                        r"&channel_key=[A-Za-z0-9_-]{43}", pairing_url), pairing_url

    async def qr_ready() -> bool:
        return await desktop.chrome(QR_STATUS) == "ready"

    await desktop.wait_until(qr_ready, "the QR code to render", timeout=10)
    return pairing_url


async def test_phone_pairs_with_desktop_firefox(firefox_factory, foxden, sentinel) -> None:
    step = Steps()
    nonce = f"{time.time_ns():x}"
    email, password = f"pair-{nonce}@example.test", f"correct horse {nonce}"
    phone = EmulatedPhone.new(FENIX)
    with step("account, two Firefoxes, desktop signs in"):
        await create_account(foxden, email, password)
        desktop, ff_phone = await signed_in_desktop(firefox_factory, foxden, email, password,
                                                    FENIX_UA)
        relay_uri = await desktop.chrome(
            'return Services.prefs.getStringPref("identity.fxaccounts.remote.pairing.uri", "")')
        assert relay_uri == foxden.url.replace("http://", "ws://"), relay_uri

    with step("desktop: Foxden's /pair page -> Firefox's pairing dialog shows a QR code"):
        pairing_url = await desktop_shows_qr(desktop, foxden, email)
        assert relay_channels(foxden) == 1  # Firefox created its channel on our relay
        sentinel.assert_clean("after the desktop created its channel")

    with step("the phone's camera app opens the QR's URL: instructions only"):
        await ff_phone.navigate(pairing_url)
        await sh.wait_page(ff_phone, {"instructions"}, timeout=10, error_ids=[])
        assert await page_text(ff_phone, "pair-server-url") == foxden.url
        assert await ff_phone.content(
            'return !document.getElementById("pair-scanned").hidden;')
        assert relay_channels(foxden) == 1  # the landing page never touches the channel

    with step("phone opens /pair/supp and sees the desktop's account"):
        await phone_opens(ff_phone, phone.supp_url(pairing_url))
        assert await page_text(ff_phone, "confirm-email") == email
        device = await page_text(ff_phone, "confirm-device")
        assert device.startswith("devA\u2019s Firefox on "), device

    with step("desktop dialog: Foxden's authority page, confirm"):
        # FINDING: Firefox ESR 153 loads the authority page into the whole preferences tab
        # (fxaPairDevice.js _switchToUrl: the sub-dialog's chromeEventHandler is the tab's
        # browser), not into the dialog frame; the page is an ordinary content tab.
        href = await desktop.wait_for_url(foxden.url + "/oauth?", timeout=20)
        query = parse_qs(urlsplit(href).query)
        assert query["redirect_uri"] == [PAIR_AUTH] and query["client_id"] == [FENIX], query
        assert query["email"] == [email] and query["channel_id"][0] in pairing_url, query
        page = await sh.wait_page(desktop, {"allow"}, timeout=20, error_ids=AUTH_ERRORS,
                                  fail_on_error="failed-message")
        texts = page["errors"]  # the visible texts of those ids
        assert texts["allow-email"] == email
        assert texts["allow-device"] == "Firefox on Android", texts  # the phone's UA
        assert texts["allow-app"] == "Firefox for Android"
        assert texts["allow-place"] == "on your network (127.0.0.1)", texts
        await desktop.click("pair-confirm")
        await sh.wait_page(desktop, {"wait-for-supp"}, timeout=30, error_ids=AUTH_ERRORS,
                           fail_on_error="failed-message")

    with step("phone confirms; both sides finish"):
        await ff_phone.click("supp-confirm")
        await sh.wait_page(ff_phone, {"done"}, timeout=30, error_ids=SUPP_ERRORS)
        data = await the_oauth_login(ff_phone, FENIX_UA)
        await sh.wait_page(desktop, {"complete"}, timeout=30, error_ids=AUTH_ERRORS,
                           fail_on_error="failed-message")

        async def channel_gone() -> bool:
            return relay_channels(foxden) == 0

        await desktop.wait_until(channel_gone, "the relay channel to close", timeout=30)

    with step("the phone's native side: token, keys, sync; the desktop reads it"):
        await check_phone_against_desktop(desktop, foxden, phone, data, nonce)

    with step("what Firefox logged"):
        log = desktop.log_path.read_text(errors="replace")
        assert "Unrecognized FxAccountsWebChannel command" not in log
        assert "Pairing channel error" not in log
        assert "Received unknown Pairing Channel message" not in log
        assert "Could not find a pairing flow" not in log  # nothing after pair_complete
        for cmd in ("pair_supplicant_metadata", "pair_heartbeat", "pair_authorize",
                    "pair_complete"):
            assert f"Pairing command fxaccounts:{cmd} received" in log, cmd
    sentinel.assert_clean("at the end")


async def test_desktop_declines(firefox_factory, foxden, sentinel) -> None:
    nonce = f"{time.time_ns():x}"
    email, password = f"decline-{nonce}@example.test", f"correct horse {nonce}"
    phone = EmulatedPhone.new(FENIX)
    await create_account(foxden, email, password)
    desktop, ff_phone = await signed_in_desktop(firefox_factory, foxden, email, password,
                                                FENIX_UA)
    pairing_url = await desktop_shows_qr(desktop, foxden, email)
    await phone_opens(ff_phone, phone.supp_url(pairing_url))
    await ff_phone.click("supp-confirm")
    await sh.wait_page(ff_phone, {"waiting"}, timeout=10, error_ids=SUPP_ERRORS)
    await desktop.wait_for_url(foxden.url + "/oauth?", timeout=20)
    await sh.wait_page(desktop, {"allow"}, timeout=20, error_ids=AUTH_ERRORS)

    async def supp_ready() -> bool:
        # The next heartbeat (every second) reports the phone's pair:supp:authorize.
        return await desktop.content(
            'return !document.getElementById("allow-supp-ready").hidden;')

    await desktop.wait_until(supp_ready, "the page to show the phone's confirmation",
                             timeout=10)
    await desktop.click("pair-decline")
    await sh.wait_page(desktop, {"declined"}, timeout=10, error_ids=AUTH_ERRORS)
    # Desktop's pair_decline closes the channel: the phone says so and sends nothing.
    state = await sh.wait_page(ff_phone, {"failed"}, timeout=20, error_ids=SUPP_ERRORS)
    assert await ff_phone.content("return document.body.dataset.error;") == "declined", state
    assert await captured(ff_phone) == []

    async def channel_gone() -> bool:
        return relay_channels(foxden) == 0

    await desktop.wait_until(channel_gone, "the relay channel to close", timeout=30)
    assert not [e for e in foxden.requests if e.path == "/v1/oauth/authorization"
                and e.at > 0 and b"a2270f727f45f648" in e.request_body], "no code was made"
    sentinel.assert_clean("at the end")


# ---------------------------------------------------------------- Foxden's own authority


async def test_phone_pairs_with_foxden_authority(firefox_factory, foxden, sentinel) -> None:
    from appliance.pairing import authority, channel, fxaclient

    step = Steps()
    nonce = f"{time.time_ns():x}"
    email, password = f"pair-{nonce}@example.test", f"correct horse {nonce}"
    phone = EmulatedPhone.new(IOS)
    with step("account, two Firefoxes, desktop signs in"):
        await create_account(foxden, email, password)
        desktop, ff_phone = await signed_in_desktop(firefox_factory, foxden, email, password,
                                                    IOS_UA)

    notices: list[authority.Notice] = []
    asked: list[authority.PhoneInfo] = []
    shown, finished = trio.Event(), trio.Event()
    outcome: list[authority.Outcome] = []

    def notify(notice: authority.Notice) -> None:
        notices.append(notice)
        if notice.kind == "pairing_url":
            shown.set()

    async def confirm(info: authority.PhoneInfo) -> bool:
        asked.append(info)
        return True

    async def run() -> None:
        client = fxaclient.FxaClient(foxden.url)
        try:
            outcome.append(await authority.run_pairing(
                public_url=foxden.url, email=email, password=authority.Secret(password),
                open_channel=lambda: channel.open_channel(foxden.url),
                authorize=client.authorize_pairing, confirm=confirm, notify=notify,
                device_name="Foxden on test"))
        finally:
            shown.set()
            finished.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        with step("Foxden shows a pairing code; the phone opens /pair/supp"):
            with trio.fail_after(20):
                await shown.wait()
            url = str(notices[0].data["url"])
            assert url.startswith(foxden.url + "/pair#channel_id="), url
            await phone_opens(ff_phone, phone.supp_url(url))
            assert await page_text(ff_phone, "confirm-email") == email
            assert await page_text(ff_phone, "confirm-device") == "Foxden on test"
        with step("phone confirms; Foxden authorizes"):
            await ff_phone.click("supp-confirm")
            await sh.wait_page(ff_phone, {"done"}, timeout=60, error_ids=SUPP_ERRORS)
            data = await the_oauth_login(ff_phone, IOS_UA)
            (info,) = asked
            assert info.client_name == "Firefox for iOS" and "FxiOS" in info.ua, info
        with step("the phone's native side: token, keys, sync; the desktop reads it"):
            await check_phone_against_desktop(desktop, foxden, phone, data, nonce)
        with trio.fail_after(60):
            await finished.wait()
    (result,) = outcome
    assert result.state is authority.State.DONE, result
    sentinel.assert_clean("at the end")
