"""The web pages: strict CSP, content types, query strings left to the page, 404s."""

from __future__ import annotations

import re
from pathlib import Path

from server.web import routes
from tests.conftest import LiveServer

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

FIREFOX_QUERY = (
    "context=oauth_webchannel_v1&entrypoint=preferences&action=email&service=sync"
    "&client_id=5882386c6d801776&response_type=code&access_type=offline"
    "&scope=https%3A%2F%2Fidentity.mozilla.com%2Fapps%2Foldsync+profile"
    "&state=AAECAwQFBgcICQoLDA0ODw&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    "&code_challenge_method=S256&keys_jwk=eyJjcnYiOiJQLTI1NiJ9"
)

PAGES = [
    "/", "/signin", "/force_auth", "/signup", "/settings", "/settings/clients",
    "/settings/avatar/change", "/connect_another_device",
    "/post_verify/third_party_auth/set_password",
]

STATIC = Path(routes.__file__).parent / "static"
TEMPLATES = Path(routes.__file__).parent / "templates"


def assert_secure(r, html: bool) -> None:
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    if html:
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["content-type"] == "text/html; charset=utf-8"


async def test_pages_are_served_with_strict_headers(server: LiveServer) -> None:
    async with server.client() as c:
        for path in PAGES:
            check_page(await c.get(path))


def check_page(r) -> None:
    assert r.status_code == 200, r.text
    assert_secure(r, html=True)
    assert r.text.startswith("<!doctype html>")
    # No inline script or style anywhere, and every script is a same-origin module.
    assert "<style" not in r.text and " style=" not in r.text
    for tag in re.findall(r"<script[^>]*>", r.text):
        assert re.fullmatch(r'<script type="module" src="/assets/js/[a-z-]+\.js">', tag), tag
    assert re.search(r"\son[a-z]+=", r.text) is None
    assert "{{" not in r.text


async def test_signin_page_with_firefox_query(server: LiveServer) -> None:
    async with server.client() as c:
        r = await c.get("/?" + FIREFOX_QUERY)
        assert r.status_code == 200
        assert_secure(r, html=True)
        # The server never echoes the parameters; the page reads them from location, and
        # nothing in the response redirects or drops them.
        assert "keys_jwk" not in r.text and "5882386c6d801776" not in r.text
        assert 'src="/assets/js/signin.js"' in r.text
        for element in ('id="email"', 'id="email-continue"', 'id="password"',
                        'id="password-submit"', 'id="screen-no-channel"'):
            assert element in r.text
        # The same page with extra parameters (email=, utm_*).
        r2 = await c.get("/?" + FIREFOX_QUERY + "&utm_source=x&email=a%40b.example")
        assert r2.status_code == 200 and r2.text == r.text


async def test_links_between_pages_keep_the_query(server: LiveServer) -> None:
    async with server.client() as c:
        signin = (await c.get("/")).text
    assert re.search(r'<a id="signup-link" href="/signup" data-keep-query>', signin)
    signup = (TEMPLATES / "signup.html").read_text()
    assert re.search(r'<a id="signin-link" href="/" data-keep-query>', signup)
    ui = (STATIC / "js" / "ui.js").read_text()
    assert "url.search = location.search" in ui


async def test_signup_closed_by_default(server: LiveServer) -> None:
    assert server.settings.signup_open is False
    async with server.client() as c:
        r = await c.get("/signup?" + FIREFOX_QUERY)
        signin = await c.get("/")
    assert r.status_code == 200
    assert_secure(r, html=True)
    assert "foxden user add" in r.text
    assert 'id="signup-submit"' not in r.text
    assert 'data-signup="closed"' in signin.text


async def test_signup_open(make_server) -> None:
    live = await make_server(signup_open=True)
    try:
        async with live.client() as c:
            r = await c.get("/signup?" + FIREFOX_QUERY)
            signin = await c.get("/")
        assert r.status_code == 200
        assert_secure(r, html=True)
        for element in ('id="email"', 'id="password"', 'id="password-confirm"',
                        'id="signup-submit"', 'src="/assets/js/signup.js"'):
            assert element in r.text
        assert 'data-signup="open"' in signin.text
    finally:
        live.cancel.cancel()


async def test_settings_page_elements(server: LiveServer) -> None:
    async with server.client() as c:
        r = await c.get("/settings?entrypoint=preferences&context=oauth_webchannel_v1"
                        "&uid=0123456789abcdef0123456789abcdef&email=a%40b.example")
    assert r.status_code == 200
    for element in ("menu-devices", "menu-services", "menu-password", "menu-signout",
                    "menu-delete", "devices-list", "services-list", "old-password",
                    "new-password", "new-password-confirm", "change-password-submit",
                    "delete-password", "delete-confirm", "delete-submit", "signout-submit"):
        assert f'id="{element}"' in r.text, element


STATIC_TYPES = [
    ("js/signin.js", "text/javascript; charset=utf-8"),
    ("js/onepw.js", "text/javascript; charset=utf-8"),
    ("css/foxden.css", "text/css; charset=utf-8"),
    ("img/foxden.svg", "image/svg+xml"),
]


async def test_static_mime_types(server: LiveServer) -> None:
    async with server.client() as c:
        for name, mime in STATIC_TYPES:
            await check_asset(c, name, mime)


async def check_asset(c, name: str, mime: str) -> None:
    r = await c.get(f"/assets/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"] == mime
    assert_secure(r, html=False)
    assert r.content == (STATIC / name).read_bytes()
    etag = r.headers["etag"]
    again = await c.get(f"/assets/{name}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


async def test_every_module_is_served_as_javascript(server: LiveServer) -> None:
    async with server.client() as c:
        for path in sorted((STATIC / "js").glob("*.js")):
            r = await c.get(f"/assets/js/{path.name}")
            assert r.status_code == 200, path.name
            assert r.headers["content-type"] == "text/javascript; charset=utf-8"


TRAVERSAL = [
    "/assets/js/nope.js",
    "/assets/",
    "/assets/js",
    "/assets/js/",
    "/assets/../routes.py",
    "/assets/%2e%2e/routes.py",
    "/assets/..%2froutes.py",
    "/assets/js/..%2f..%2froutes.py",
    "/assets/%2e%2e/%2e%2e/settings.py",
    "/assets/js%2f..%2f..%2f__init__.py",
    "/assets//etc/passwd",
    "/assets/%2fetc%2fpasswd",
    "/assets/..\\..\\routes.py",
    "/assets/js/signin.js%00.png",
    "/assets/js/SIGNIN.JS",
    "/assets/.hidden",
    "/assets/js/signin.js/",
]


async def test_unknown_and_traversal_paths_are_404(server: LiveServer) -> None:
    async with server.client() as c:
        for path in TRAVERSAL:
            r = await c.get(path)
            assert r.status_code == 404, (path, r.status_code)
            assert "import " not in r.text and "def " not in r.text


async def test_traversal_with_raw_target(server: LiveServer) -> None:
    # httpx normalises dot segments; send them raw on the wire.
    import trio

    host, port = server.url.removeprefix("http://").split(":")
    for target in ("/assets/../routes.py", "/assets/js/../../routes.py",
                   "/assets/../../settings.py"):
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            await stream.send_all(
                f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
                .encode())
            data = b""
            with trio.move_on_after(5):
                while b"\r\n\r\n" not in data:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    data += chunk
        status = data.split(b"\r\n", 1)[0]
        assert b" 404 " in status or b" 400 " in status, (target, status)
        assert b"import " not in data


async def test_unknown_page_is_404(server: LiveServer) -> None:
    async with server.client() as c:
        for path in ("/nope", "/settings/nope", "/pair/nope"):
            r = await c.get(path)
            assert r.status_code == 404, path


async def test_metrics_flow(server: LiveServer) -> None:
    async with server.client() as c:
        r = await c.get("/metrics-flow?entrypoint=aboutwelcome&form_type=email")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"flowId", "flowBeginTime", "deviceId"}
    assert re.fullmatch(r"[0-9a-f]{64}", body["flowId"])
    assert re.fullmatch(r"[0-9a-f]{32}", body["deviceId"])
    assert isinstance(body["flowBeginTime"], int)


async def test_only_get_and_head(server: LiveServer) -> None:
    async with server.client() as c:
        assert (await c.head("/")).status_code == 200
        assert (await c.post("/", content=b"x")).status_code in (404, 405)


# Identifiers that look like URLs but are never fetched.
ALLOWED_URLS = {
    "http://www.w3.org/2000/svg",                    # SVG namespace
    "https://identity.mozilla.com/apps/oldsync",     # OAuth scope name
}


def test_no_external_urls_in_pages_or_assets() -> None:
    files = [p for p in list(STATIC.rglob("*")) + list(TEMPLATES.rglob("*")) if p.is_file()]
    assert files
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for url in re.findall(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'`<>)]*", text):
            if url.endswith("://"):
                continue  # the bare scheme in prose ("starts with http://")
            if url.rstrip(".,;") not in ALLOWED_URLS:
                found.append((path.name, url))
        # Protocol-relative references and imports from anything but a relative path.
        found += [(path.name, m) for m in re.findall(r"""(?:src|href)=["']//[^"']*""", text)]
        bare_import = r"""\bimport\b[^;]*?from\s+["']([^"'.][^"']*)"""
        found += [(path.name, m) for m in re.findall(bare_import, text)]
        found += [(path.name, m) for m in re.findall(r"@import", text)]
    routes_src = Path(routes.__file__).read_text()
    found += [("routes.py", u) for u in re.findall(r"https?://[^\s\"'<]+", routes_src)]
    assert found == []


def test_no_inline_script_or_style_in_templates() -> None:
    for path in TEMPLATES.glob("*.html"):
        text = path.read_text()
        assert "<style" not in text and " style=" not in text, path.name
        assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) is None, path.name
        assert re.search(r"\son[a-z]+=", text) is None, path.name
        assert "javascript:" not in text, path.name
