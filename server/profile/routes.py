"""The profile server on the one origin (FxA fxa-profile-server, firefox-signin.md §3.2).

* ``GET /v1/profile`` — Bearer access token from our OAuth server (looked up by its hash,
  so a destroyed token stops working at once) with ``profile`` or a ``profile:<field>``
  sub-scope: ``{uid, email, locale, displayName, avatar, avatarDefault, amrValues,
  twoFactorAuthentication, subscriptions}``, filtered by sub-scope as FxA does.  ``ETag``
  (a digest of the body) and ``If-None-Match`` → 304.
* ``GET /v1/email``, ``/v1/uid``, ``/v1/avatar``, ``/v1/display_name`` (PyFxA's profile
  client); ``POST /v1/display_name`` with ``profile:write`` / ``profile:display_name:write``.
* ``GET /v1/avatar/<uid>.svg`` — no auth (an ``<img>`` sends none): the generated default
  avatar, the account's initial on a colour taken from the uid.

Errors use the profile server's numbers: 401 errno 100 "Unauthorized" (Firefox then
destroys the token and retries once), 403 errno 100 for a token without the needed scope,
400 errno 101 "Invalid request parameter".
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any
from xml.sax.saxutils import escape

from quart import Blueprint, Response, request
from quart_trio import QuartTrio

from ..db.engine import Connection, Database
from ..errors import FxaError
from ..oauth import clients, grants
from ..oauth import store as oauth_store
from ..oauth.http import check_size, json_response, now_ms
from ..settings import Settings

_UID = re.compile(r"^[0-9a-f]{32}$")
# FxA display_name/post.js: no control, separator, surrogate, private-use or specials.
_DISPLAY_NAME = re.compile(
    "^[^\u0000-\u001f\u007f\u0080-\u009f\u2028\u2029\ud800-\udfff\ue000-\uf8ff\ufff9-\uffff]*$")
MAX_DISPLAY_NAME = 256
_PALETTE = ("#0060df", "#8000d7", "#d7264c", "#058b00", "#b5007f", "#0a84ae", "#c45a27",
            "#5b5b66")

# Which sub-scope reveals which field (FxA _core_profile.js).
FIELD_SCOPES = {
    "uid": "profile:uid", "email": "profile:email", "locale": "profile:locale",
    "displayName": "profile:display_name", "avatar": "profile:avatar",
    "avatarDefault": "profile:avatar", "amrValues": "profile:amr",
    "twoFactorAuthentication": "profile:amr", "subscriptions": "profile:subscriptions",
}


def unauthorized(reason: str) -> FxaError:
    return FxaError(401, 100, "Unauthorized", reason=reason)


def forbidden() -> FxaError:
    return FxaError(403, 100, "Unauthorized", reason="Insufficient scope")


def invalid_parameter(name: str) -> FxaError:
    return FxaError(400, 101, "Invalid request parameter",
                    validation={"source": "payload", "keys": [name]})


def initial(display_name: str | None, email: str) -> str:
    for text in (display_name or "", email):
        for ch in text:
            if unicodedata.category(ch)[0] in "LN":
                return ch.upper()
    return "?"


def avatar_svg(uid: str, letter: str) -> bytes:
    colour = _PALETTE[int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16) % len(_PALETTE)]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="240" height="240" '
        'viewBox="0 0 240 240">'
        f'<rect width="240" height="240" fill="{colour}"/>'
        '<text x="120" y="120" dy="0.35em" text-anchor="middle" '
        'font-family="system-ui, sans-serif" font-size="120" fill="#ffffff">'
        f"{escape(letter)}</text></svg>"
    ).encode()


def etag_for(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def _with_etag(body: bytes, content_type: str, cache: str) -> Response:
    etag = etag_for(body)
    if etag_matches(request.headers.get("If-None-Match"), etag):
        resp = Response(b"", status=304)
    else:
        resp = Response(body, status=200, content_type=content_type)
    resp.headers["ETag"] = etag
    resp.headers["Cache-Control"] = cache
    return resp


def make_blueprint(settings: Settings, db: Database) -> Blueprint:
    bp = Blueprint("profile", __name__)
    origin = settings.origin

    async def bearer(*needed: str) -> tuple[str, tuple[str, ...]]:
        """(uid, scopes) of the request's access token, which must imply one of
        ``needed``."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 8192:
            raise unauthorized("Bearer token not provided")
        now = now_ms()
        row = await db.read(lambda c: oauth_store.get_access(c, grants.token_hash(token), now))
        if row is None:
            raise unauthorized("Token not found")
        if not any(clients.implies(have, want) for have in row.scope for want in needed):
            raise forbidden()
        return row.uid, row.scope

    def profile_of(account: oauth_store.AccountInfo) -> dict[str, Any]:
        return {
            "uid": account.uid,
            "email": account.email,
            "locale": account.locale or None,
            "displayName": account.display_name or None,
            "avatar": f"{origin}/v1/avatar/{account.uid}.svg",
            "avatarDefault": True,
            "amrValues": ["pwd"],
            "twoFactorAuthentication": False,
            "subscriptions": [],
        }

    async def load(uid: str) -> oauth_store.AccountInfo:
        account = await db.read(lambda c: oauth_store.account(c, uid))
        if account is None:
            raise unauthorized("Account not found")
        return account

    @bp.get("/v1/profile")
    async def profile() -> Response:
        uid, scopes = await bearer("profile", *set(FIELD_SCOPES.values()))
        full = profile_of(await load(uid))
        body = {k: v for k, v in full.items()
                if any(clients.implies(s, FIELD_SCOPES[k]) for s in scopes)}
        if "openid" in scopes:
            body["sub"] = uid
        return _with_etag(json.dumps(body).encode(), "application/json", "private, no-cache")

    @bp.get("/v1/email")
    async def email() -> Response:
        uid, _ = await bearer("profile:email")
        return json_response({"email": (await load(uid)).email})

    @bp.get("/v1/uid")
    async def uid_route() -> Response:
        uid, _ = await bearer("profile:uid")
        return json_response({"uid": uid})

    @bp.get("/v1/avatar")
    async def avatar() -> Response:
        uid, _ = await bearer("profile:avatar")
        url = f"{origin}/v1/avatar/{uid}.svg"
        # "url" is what PyFxA 0.9's get_avatar_url reads; FxA today answers "avatar".
        return json_response({"id": "default", "avatarDefault": True, "avatar": url,
                              "url": url})

    @bp.get("/v1/display_name")
    async def display_name_get() -> Response:
        uid, _ = await bearer("profile:display_name")
        name = (await load(uid)).display_name
        if not name:
            return Response(b"", status=204)
        return json_response({"displayName": name})

    @bp.post("/v1/display_name")
    async def display_name_post() -> Response:
        uid, _ = await bearer("profile:display_name:write")
        check_size()
        try:
            data = json.loads(await request.get_data(cache=True, as_text=False))
        except (ValueError, UnicodeDecodeError):
            raise invalid_parameter("displayName") from None
        name = data.get("displayName") if isinstance(data, dict) else None
        if (not isinstance(name, str) or len(name) > MAX_DISPLAY_NAME
                or not _DISPLAY_NAME.match(name)):
            raise invalid_parameter("displayName")
        now = now_ms()

        def write(conn: Connection) -> None:
            # The accounts table keeps the profile fields; bumping profile_changed_at lets
            # token verifiers (fxa-profileChangedAt) see the change.
            conn.execute("UPDATE accounts SET display_name = ?, profile_changed_at = ? "
                         "WHERE uid = ?", (name or None, now, uid))

        await db.write(write)
        return json_response({})

    @bp.get("/v1/avatar/<name>")
    async def avatar_image(name: str) -> Response:
        uid = name.removesuffix(".svg")
        if not name.endswith(".svg") or not _UID.match(uid):
            raise FxaError(404, 999, "Not Found")
        account = await db.read(lambda c: oauth_store.account(c, uid))
        # Unknown uids get "?" rather than a 404: the image says nothing about existence.
        letter = initial(account.display_name, account.email) if account else "?"
        return _with_etag(avatar_svg(uid, letter), "image/svg+xml", "public, no-cache")

    return bp


def register(app: QuartTrio, settings: Settings, db: Database) -> None:
    app.register_blueprint(make_blueprint(settings, db))
