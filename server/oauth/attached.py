"""``GET /v1/account/attached_clients`` and ``POST /v1/account/attached_client/destroy``.

The merge of FxA lib/routes/attached-clients.js: devices (0004: each bound to a session or
to a refresh token), OAuth clients (one line per refresh token, merged into its device,
plus clients that hold only code-grant access tokens) and sessions.  Firefox reads
``clientId`` and ``lastAccessTime`` and the ``X-Timestamp`` header (ms)
(firefox-signin.md §3.2); the rest is for the settings pages.

DIVERGENCE: no GeoIP on a LAN, so ``location`` is always null; ``userAgent``/``os`` come
from the session's stored User-Agent with a small parser instead of FxA's ua-parser.
"""

from __future__ import annotations

import re
import time
from typing import Any

from quart import Blueprint, Response

from .. import fxa_errors
from ..accounts import devices as account_devices
from ..accounts import tokens as fxa_tokens
from ..accounts.auth import authenticate
from ..db.engine import Connection, Database
from ..errors import FxaError
from . import clients, errors, store
from .errors import Family
from .http import json_response, read_body

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_SESSION_BACKED = frozenset(c.id for c in clients.CLIENTS.values() if c.session_backed)

_BROWSERS = (("Firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
             ("Chrome", re.compile(r"Chrome/(\d+)")), ("Safari", re.compile(r"Version/(\d+)")))
_SYSTEMS = (("Android", "Android"), ("iOS", "iPhone"), ("iOS", "iPad"), ("Windows", "Windows"),
            ("macOS", "Mac OS X"), ("Linux", "Linux"))


def parse_user_agent(ua: str) -> tuple[str, str | None]:
    """("Firefox 153", "Linux") from a User-Agent; ("", None) when unknown."""
    browser = ""
    for name, pattern in _BROWSERS:
        if m := pattern.search(ua):
            browser = f"{name} {m.group(1)}"
            break
    os_name = next((name for name, marker in _SYSTEMS if marker in ua), None)
    return browser, os_name


def _blank() -> dict[str, Any]:
    return {"clientId": None, "deviceId": None, "sessionTokenId": None, "refreshTokenId": None,
            "isCurrentSession": False, "deviceType": None, "name": None,
            "createdTime": None, "lastAccessTime": 0, "scope": None, "location": None,
            "userAgent": "", "os": None}


def list_attached_clients(conn: Connection, uid: str, current_session: str,
                          now_ms: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    by_session: dict[str, dict[str, Any]] = {}
    by_refresh: dict[str, dict[str, Any]] = {}
    for dev in account_devices.list_for_account(conn, uid):
        entry = _blank() | {"deviceId": dev.id, "sessionTokenId": dev.session_token_id,
                            "refreshTokenId": dev.refresh_token_id,
                            "deviceType": dev.type or None, "name": dev.name or None,
                            "createdTime": dev.created_at, "lastAccessTime": dev.created_at}
        out.append(entry)
        if dev.session_token_id:
            by_session[dev.session_token_id] = entry
        if dev.refresh_token_id:
            by_refresh[dev.refresh_token_id] = entry
    for oc in store.attached_oauth_clients(conn, uid, now_ms, _SESSION_BACKED):
        client = clients.get(oc.client_id)
        entry = by_refresh.get(oc.refresh_token_id or "")
        if entry is None:
            entry = _blank() | {"refreshTokenId": oc.refresh_token_id,
                                "createdTime": oc.created_time}
            out.append(entry)
        entry["clientId"] = oc.client_id
        entry["scope"] = list(oc.scope)
        entry["createdTime"] = min(entry["createdTime"], oc.created_time)
        entry["lastAccessTime"] = max(entry["lastAccessTime"], oc.last_access_time)
        if not entry["name"]:
            entry["name"] = client.name if client else oc.client_id
        if entry["deviceId"] and not entry["deviceType"]:
            entry["deviceType"] = "mobile"  # FxA: OAuth clients with devices are apps
    for sid, created, last, ua in conn.execute(
            "SELECT id, created_at, last_access, user_agent FROM fxa_tokens "
            "WHERE uid = ? AND kind = 'sessionToken' "
            "AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at",
            (uid, now_ms)).fetchall():
        entry = by_session.get(sid)
        if entry is None:
            entry = _blank() | {"sessionTokenId": sid, "createdTime": created}
            out.append(entry)
        entry["createdTime"] = min(entry["createdTime"] or created, created)
        entry["lastAccessTime"] = max(entry["lastAccessTime"], last)
        entry["isCurrentSession"] = sid == current_session
        entry["scope"] = None  # a session can mint any scope
        browser, os_name = parse_user_agent(ua or "")
        entry["userAgent"], entry["os"] = browser, os_name
        if not entry["name"]:
            entry["name"] = ", ".join(p for p in (browser, os_name) if p) or "Web session"
    for entry in out:
        if entry["deviceId"] and not entry["deviceType"]:
            entry["deviceType"] = "desktop"
    return out


async def _attached_clients(db: Database) -> Response:
    session = await authenticate("sessionToken")
    now = int(time.time() * 1000)
    body = await db.read(lambda c: list_attached_clients(c, session.uid, session.id, now))
    return json_response(body, headers={"X-Timestamp": str(now)})


async def _destroy(db: Database) -> Response:
    session = await authenticate("sessionToken")
    family = Family.AUTH
    data = await read_body(family)
    fields: dict[str, str | None] = {}
    for name, pattern in (("clientId", clients.CLIENT_ID), ("sessionTokenId", _HEX64),
                          ("refreshTokenId", _HEX64), ("deviceId", _HEX32)):
        value = data.get(name)
        if value is not None and not (isinstance(value, str) and pattern.match(value.lower())):
            raise errors.invalid_parameter(family, name)
        fields[name] = value.lower() if isinstance(value, str) else None
    if not any(fields.values()):
        raise errors.missing_parameter(family, "clientId")
    if fields["refreshTokenId"] and not fields["clientId"]:
        raise errors.missing_parameter(family, "clientId")
    if (fields["refreshTokenId"] or fields["clientId"]) and fields["sessionTokenId"] \
            and not fields["deviceId"]:
        raise errors.invalid_parameter(family, "sessionTokenId")
    uid = session.uid

    def write(conn: Connection) -> str | None:
        if fields["deviceId"]:
            dev = account_devices.get(conn, uid, fields["deviceId"])
            if dev is None:
                return "deviceId"
            if fields["sessionTokenId"] and fields["sessionTokenId"] != dev.session_token_id:
                return "sessionTokenId"
            if fields["refreshTokenId"] and fields["refreshTokenId"] != dev.refresh_token_id:
                return "refreshTokenId"
            account_devices.destroy(conn, uid, dev.id)  # with its session / refresh token
        elif fields["refreshTokenId"]:
            # An unknown id is swallowed, as FxA does: the account is in the wanted state.
            store.delete_refresh(conn, fields["refreshTokenId"], uid=uid,
                                 client_id=fields["clientId"])
        elif fields["clientId"]:
            store.revoke_client(conn, uid, fields["clientId"])
        else:
            target = fields["sessionTokenId"]
            assert target is not None
            r = conn.execute("SELECT uid FROM fxa_tokens WHERE id = ? AND kind = 'sessionToken'",
                             (target,)).fetchone()
            if r is None or r[0] != uid:
                return "sessionTokenId"
            fxa_tokens.delete(conn, target)
        return None

    bad = await db.write(write)
    if bad == "deviceId":
        raise FxaError(400, fxa_errors.UNKNOWN_DEVICE, "Unknown device")
    if bad:
        raise errors.invalid_parameter(family, bad)
    return json_response({})


def add_routes(bp: Blueprint, db: Database) -> None:
    @bp.get("/v1/account/attached_clients")
    async def attached_clients() -> Response:
        return await _attached_clients(db)

    @bp.post("/v1/account/attached_client/destroy")
    async def attached_client_destroy() -> Response:
        return await _destroy(db)
