"""The pairing pages: /pair (QR landing), /pair/supp (the phone's supplicant) and /oauth (the
authority page desktop Firefox loads into its pairing dialog): strict headers, a CSP that
lets only /pair/supp reach the same-origin relay, no external URLs, and secrets that stay in
the URL fragment."""

from __future__ import annotations

import re
from pathlib import Path

from server.web import routes
from tests.conftest import LiveServer

from .test_routes import CSP, assert_secure

STATIC = Path(routes.__file__).parent / "static"
PAIRING_JS = sorted((STATIC / "pairing").glob("*.js"))
CHANNEL = "channel_id=AAECAwQFBgcICQoLDA0ODw&channel_key=" + "A" * 43
SUPP_QUERY = (
    "client_id=a2270f727f45f648&redirect_uri=urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob%3A"
    "oauth-redirect-webchannel&scope=profile+https%3A%2F%2Fidentity.mozilla.com%2Fapps%2Foldsync"
    "&state=c3RhdGU&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    "&code_challenge_method=S256&keys_jwk=eyJjcnYiOiJQLTI1NiJ9&access_type=offline"
)
AUTHORITY_QUERY = (
    "client_id=a2270f727f45f648&scope=profile+https%3A%2F%2Fidentity.mozilla.com%2Fapps%2F"
    "oldsync&email=ann%40example.test&uid=0123456789abcdef0123456789abcdef"
    "&channel_id=AAECAwQFBgcICQoLDA0ODw"
    "&redirect_uri=urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob%3Apair-auth-webchannel"
)
PAGES = {
    "/pair": "pair-page.js",
    "/pair/": "pair-page.js",
    "/pair/supp": "supp-page.js",
    "/oauth": "authority-page.js",
}


def check_pair_page(r, script: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == 200, r.text
    assert r.text.startswith("<!doctype html>")
    assert "<style" not in r.text and " style=" not in r.text
    tags = re.findall(r"<script[^>]*>", r.text)
    assert tags == [f'<script type="module" src="/assets/pairing/{script}">'], tags
    assert re.search(r"\son[a-z]+=", r.text) is None
    assert "{{" not in r.text


def absolute_urls(text: str) -> set[str]:
    return set(re.findall(r"\b(?:https?|wss?)://[^\s\"'<>)`]+", text))


async def test_pages_served_with_strict_headers(server: LiveServer) -> None:
    async with server.client() as c:
        for path, script in PAGES.items():
            r = await c.get(path)
            check_pair_page(r, script)
            if path == "/pair/supp":
                continue
            assert_secure(r, html=True)  # the site-wide CSP, unchanged


async def test_only_the_supplicant_may_reach_the_relay(server: LiveServer) -> None:
    ws = server.url.replace("http://", "ws://")
    async with server.client() as c:
        r = await c.get(f"/pair/supp?{SUPP_QUERY}")
        others = [await c.get(p) for p in ("/pair", "/oauth", "/", "/settings")]
    csp = r.headers["content-security-policy"]
    assert csp == CSP.replace("connect-src 'self';", f"connect-src 'self' {ws};")
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["connect-src"] == f"'self' {ws}"  # one origin, no wildcard
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'none'"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    for other in others:
        assert other.headers["content-security-policy"] == CSP
        assert "ws://" not in other.headers["content-security-policy"]


async def test_https_origin_allows_wss_only(make_server) -> None:  # type: ignore[no-untyped-def]
    live = await make_server(public_url="https://foxden.example")
    try:
        async with live.client() as c:
            supp = await c.get("/pair/supp")
            landing = await c.get("/pair")
        assert "connect-src 'self' wss://foxden.example;" in supp.headers[
            "content-security-policy"]
        assert 'data-secure="yes"' in landing.text
        assert '<code id="pair-server-url">https://foxden.example</code>' in landing.text
    finally:
        live.cancel.cancel()


async def test_no_external_urls(server: LiveServer) -> None:
    async with server.client() as c:
        for path in PAGES:
            r = await c.get(path)
            # Only our own origin appears (the landing page shows it for the phone's
            # custom-server setting).
            assert absolute_urls(r.text) <= {server.url}, (path, absolute_urls(r.text))
            for src in re.findall(r'(?:src|href)="([^"]+)"', r.text):
                assert src.startswith("/"), (path, src)
        for js in PAIRING_JS:
            r = await c.get(f"/assets/pairing/{js.name}")
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/javascript; charset=utf-8"
            assert_secure(r, html=False)
            code = "\n".join(line for line in r.text.splitlines()
                             if not line.lstrip().startswith("//"))
            assert absolute_urls(code) == set(), (js.name, absolute_urls(code))


async def test_fragment_secrets_never_reach_the_server(server: LiveServer) -> None:
    async with server.client() as c:
        plain = await c.get(f"/pair/supp?{SUPP_QUERY}")
        with_fragment = await c.get(f"/pair/supp?{SUPP_QUERY}#{CHANNEL}")
        landing = await c.get(f"/pair#{CHANNEL}")
    # The server answers the same bytes: it never saw the fragment, and echoes no query.
    assert with_fragment.text == plain.text
    assert "channel_key" not in landing.text and "a2270f727f45f648" not in plain.text
    assert "keys_jwk" not in plain.text
    # The pages' scripts make no HTTP requests at all; the only connection is the relay's
    # websocket, whose URL carries the channel id and never the key (relayUrlFor, node test).
    for js in PAIRING_JS:
        text = js.read_text()
        for api in ("fetch(", "XMLHttpRequest", "sendBeacon", "new Image", "EventSource",
                    "localStorage", "sessionStorage", "document.cookie"):
            assert api not in text, (js.name, api)
    supp = (STATIC / "pairing" / "supplicant.js").read_text()
    assert "/v1/ws/${channelId}" in supp


async def test_landing_page_explains_the_custom_server(server: LiveServer) -> None:
    async with server.client() as c:
        r = await c.get(f"/pair#{CHANNEL}")
        cad = await c.get("/connect_another_device")
    assert f'<code id="pair-server-url">{server.url}</code>' in r.text
    assert 'data-secure="no"' in r.text  # loopback test server: plain http
    for words in ("Sync Debug", "Custom Mozilla account server", "Advanced Sync Settings",
                  "Ready to scan", "Scan pairing", "Sign in"):
        assert words in r.text, words
    for element in ("pair-scanned", "pair-insecure", "pair-show-code", "desktop-email"):
        assert f'id="{element}"' in r.text, element
    assert '<a id="pair-link" href="/pair">' in cad.text


async def test_supplicant_and_authority_elements(server: LiveServer) -> None:
    async with server.client() as c:
        supp = (await c.get(f"/pair/supp?{SUPP_QUERY}")).text
        auth = (await c.get(f"/oauth?{AUTHORITY_QUERY}")).text
    for element in ("screen-loading", "screen-confirm", "screen-waiting", "screen-done",
                    "screen-failed", "confirm-email", "confirm-device", "supp-confirm",
                    "supp-cancel", "waiting-cancel", "failed-message"):
        assert f'id="{element}"' in supp, element
    for element in ("screen-allow", "screen-authorizing", "screen-wait-for-supp",
                    "screen-complete", "screen-declined", "screen-failed",
                    "screen-not-pairing", "allow-email", "allow-device", "allow-place",
                    "pair-confirm", "pair-decline", "wait-decline"):
        assert f'id="{element}"' in auth, element
    assert "ann@example.test" not in auth  # the page reads the query itself


async def test_authority_page_sends_only_pairing_commands() -> None:
    # Firefox finalizes every pairing flow on an unknown command (pairing.md §6.2).
    allowed = {"fxaccounts:pair_supplicant_metadata", "fxaccounts:pair_heartbeat",
               "fxaccounts:pair_authorize", "fxaccounts:pair_decline",
               "fxaccounts:pair_complete"}
    for name in ("authority.js", "authority-page.js"):
        text = (STATIC / "pairing" / name).read_text()
        code = "\n".join(x for x in text.splitlines() if not x.lstrip().startswith("//"))
        assert set(re.findall(r'"(fxaccounts:[a-z_]+)"', code)) <= allowed, name
    supp = "\n".join((STATIC / "pairing" / n).read_text()
                     for n in ("supplicant.js", "supp-page.js"))
    code = "\n".join(x for x in supp.splitlines() if not x.lstrip().startswith("//"))
    assert set(re.findall(r'"(fxaccounts:[a-z_]+)"', code)) == {"fxaccounts:oauth_login"}
