"""The web pages Firefox opens (firefox-signin.md §1.2, §2): sign-in, sign-up, settings.

Every page is a static HTML shell plus ES modules under ``/assets/``; the pages read Firefox's
query parameters from ``location`` themselves, so the server never echoes them.  All
responses carry a strict CSP (no inline script or style at all), ``nosniff`` and
``no-referrer``; HTML is ``no-store``.  Assets are loaded into memory at start-up from a fixed
set of extensions, so a path outside that set (or any ``..`` trick) is simply not found.
"""

from __future__ import annotations

import hashlib
import html
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from quart import Blueprint, Response, request

from ..discovery.routes import client_configuration
from ..settings import Settings

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
HTML_TYPE = "text/html; charset=utf-8"
MIME_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets(root: Path = STATIC_DIR) -> dict[str, Asset]:
    """Every servable file under ``root``, keyed by its POSIX path relative to it."""
    assets: dict[str, Asset] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        content_type = MIME_TYPES.get(path.suffix.lower())
        if content_type is None:
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[rel.as_posix()] = Asset(body, content_type, etag)
    return assets


def render(name: str, **values: str) -> str:
    """A template with ``{{key}}`` placeholders; values are HTML-escaped unless ``*_html``."""
    text = (TEMPLATE_DIR / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value if key.endswith("_html")
                            else html.escape(value, quote=True))
    return text


def _info_page(page: str, title: str, content_html: str) -> str:
    return render("info.html", page=page, title=title, content_html=content_html)


def _info_pages() -> dict[str, str]:
    sync_button = ('<button id="open-sync-settings" type="button" '
                   'data-command="fxaccounts:sync_preferences">Open Sync settings</button>')
    account_link = '<p class="aside"><a id="settings-link" href="/settings">Your account</a></p>'
    return {
        "connect_another_device": _info_page(
            "connect_another_device", "Connect another device",
            "  <p>To sync another computer with this account:</p>\n"
            '  <ol class="steps">\n'
            "    <li>On that computer, set Firefox up for Foxden: in <code>about:config</code> set "
            "<code>identity.fxaccounts.autoconfig.uri</code> to <code data-origin></code>"
            " (and <code>identity.fxaccounts.allowHttp</code> to <code>true</code> if that "
            "address starts with <code>http://</code>).</li>\n"
            "    <li>Click <strong>Sign in</strong> in Firefox's menu and sign in with the same "
            "email and password.</li>\n"
            "  </ol>\n"
            '  <p>To connect a phone, <a id="pair-link" href="/pair">pair it with this '
            "computer</a>.</p>\n"
            f"  {sync_button}\n{account_link}\n",
        ),
        "avatar": _info_page(
            "avatar", "Profile picture",
            "  <p>Foxden does not keep profile pictures. Firefox shows a simple picture "
            "with your initial instead.</p>\n" + account_link + "\n",
        ),
        "set_password": _info_page(
            "set_password", "Nothing to do here",
            "  <p>Foxden accounts always have a password, so there is no password to set. "
            "To change your password, open your account.</p>\n" + account_link + "\n",
        ),
        "signup_closed": _info_page(
            "signup_closed", "Accounts are made by your household admin",
            "  <p>This Foxden server does not let people create their own accounts.</p>\n"
            "  <p>Ask the person who runs Foxden to create one for you. On the Foxden "
            "computer they run:</p>\n"
            "  <p><code>foxden user add you@example.org</code></p>\n"
            "  <p>Then come back and sign in with that email and the password they give you.</p>\n"
            '  <p><a id="signin-link" class="button" href="/" data-keep-query>Sign in</a></p>\n',
        ),
    }


def _secure(resp: Response) -> Response:
    resp.headers.update(SECURITY_HEADERS)
    return resp


def _html(body: str, status: int = 200, *, csp: str = CSP) -> Response:
    resp = Response(body, status=status, content_type=HTML_TYPE)
    resp.headers["Cache-Control"] = "no-store"
    _secure(resp)
    resp.headers["Content-Security-Policy"] = csp
    return resp


def relay_origin(settings: Settings) -> str:
    """The pairing relay's websocket origin, as discovery advertises it (pairing.md §2.8)."""
    return client_configuration(settings)["pairing_server_base_uri"]


def supplicant_csp(settings: Settings) -> str:
    # Only /pair/supp opens the relay's websocket; 'self' alone does not reliably cover
    # ws(s): in every browser, so the one same-origin relay is named explicitly.
    return CSP.replace("connect-src 'self';", f"connect-src 'self' {relay_origin(settings)};")


def _not_found() -> Response:
    resp = Response("Not found\n", status=404, content_type="text/plain; charset=utf-8")
    resp.headers["Cache-Control"] = "no-store"
    return _secure(resp)


def make_blueprint(settings: Settings) -> Blueprint:
    bp = Blueprint("web", __name__)
    assets = load_assets()
    signin = render("signin.html", signup="open" if settings.signup_open else "closed")
    signup = render("signup.html")
    account = render("settings.html")
    info = _info_pages()
    # Pairing (pairing.md §6, §7): the QR landing page, the phone's supplicant page, and the
    # authority page Firefox loads into its pairing dialog.  The channel id and key live in
    # the URL fragment, which never reaches the server.
    pair_landing = render("pair.html", origin=settings.origin,
                          secure="yes" if settings.public_scheme == "https" else "no")
    pair_supp = render("pair_supp.html")
    pair_authority = render("pair_authority.html")
    supp_csp = supplicant_csp(settings)

    @bp.get("/")
    @bp.get("/signin")
    @bp.get("/force_auth")
    async def signin_page() -> Response:
        return _html(signin)

    @bp.get("/signup")
    async def signup_page() -> Response:
        return _html(signup if settings.signup_open else info["signup_closed"])

    @bp.get("/settings")
    @bp.get("/settings/clients")
    async def settings_page() -> Response:
        return _html(account)

    @bp.get("/settings/avatar/change")
    async def avatar_page() -> Response:
        return _html(info["avatar"])

    @bp.get("/connect_another_device")
    async def connect_another_device_page() -> Response:
        return _html(info["connect_another_device"])

    @bp.get("/pair")
    @bp.get("/pair/")
    async def pair_page() -> Response:
        return _html(pair_landing)

    @bp.get("/pair/supp")
    async def pair_supplicant_page() -> Response:
        return _html(pair_supp, csp=supp_csp)

    @bp.get("/oauth")
    async def pair_authority_page() -> Response:
        # Firefox opens /oauth?…&channel_id=…&redirect_uri=…pair-auth-webchannel (§6.1);
        # the page itself tells that URL from any other and explains.
        return _html(pair_authority)

    @bp.get("/post_verify/third_party_auth/set_password")
    async def set_password_page() -> Response:
        return _html(info["set_password"])

    @bp.get("/metrics-flow")
    async def metrics_flow() -> Response:
        # about:welcome asks for a flow id; it has no effect on sign-in (§1.2).
        body = {
            "flowId": secrets.token_hex(32),
            "flowBeginTime": int(time.time() * 1000),
            "deviceId": secrets.token_hex(16),
        }
        resp = Response(json.dumps(body), content_type="application/json")
        resp.headers["Cache-Control"] = "no-store"
        return _secure(resp)

    @bp.get("/assets/<path:name>")
    async def asset(name: str) -> Response:
        found = assets.get(name)
        if found is None:
            return _not_found()
        if request.headers.get("If-None-Match") == found.etag:
            resp = Response(b"", status=304)
        else:
            resp = Response(found.body, content_type=found.content_type)
        resp.headers["ETag"] = found.etag
        resp.headers["Cache-Control"] = "no-cache"
        return _secure(resp)

    return bp
