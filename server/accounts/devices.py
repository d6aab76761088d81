"""Device records (table ``devices``, migration 0004): one per credential — a session token
(Firefox desktop) or an OAuth refresh token (Fenix/iOS, which call the device routes with
``Bearer <refresh token>``).  :class:`Owner` names the credential of a request.

Registration rules (firefox-signin.md §3.2, fxa-auth-server devices-and-sessions.js):

* no ``id``: the credential's device is updated if it has one (same id back — this absorbs
  the concurrent double registration Firefox does at sign-in), else a new device is made;
* ``id``: that device of this account is updated, and re-bound to this credential if it
  was on another one; an unknown id is 400 errno 123 (Firefox then re-registers); binding
  it when this credential already has a *different* device is errno 124.

Validation follows Mozilla's DEVICES_SCHEMA; ``availableCommands`` values are strings (the
encrypted Send Tab keys, opaque to us).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .. import fxa_errors
from ..db.engine import Connection
from ..errors import FxaError
from . import errors
from .validate import URL_SAFE_B64, Fields, display_safe, invalid

COMMAND_NAME = re.compile(r"^[a-zA-Z0-9._/\-:]{1,100}$")
DEVICE_TYPE = re.compile(r"^[a-zA-Z0-9_-]{1,16}$")
MAX_COMMANDS = 32
MAX_COMMAND_VALUE = 2048


@dataclass(frozen=True, slots=True)
class Owner:
    """Who is asking: exactly one of session_id / refresh_id is set."""

    uid: str
    session_id: str | None = None
    refresh_id: str | None = None

    @property
    def column(self) -> str:
        return "session_token_id" if self.session_id is not None else "refresh_token_id"

    @property
    def token_id(self) -> str:
        value = self.session_id if self.session_id is not None else self.refresh_id
        assert value is not None
        return value


@dataclass(frozen=True, slots=True)
class DeviceRow:
    id: str
    uid: str
    session_token_id: str | None
    refresh_token_id: str | None
    name: str
    type: str
    push_callback: str | None
    push_public_key: str | None
    push_auth_key: str | None
    push_endpoint_expired: bool
    available_commands: dict[str, str]
    created_at: int
    last_access: int          # the bound credential's last use (ms)

    def owned_by(self, owner: Owner) -> bool:
        return (self.session_token_id, self.refresh_token_id) == (owner.session_id,
                                                                  owner.refresh_id)


@dataclass(slots=True)
class DeviceUpdate:
    id: str | None = None
    name: str | None = None
    type: str | None = None
    push: tuple[str, str, str] | None = None   # callback, public key, auth key
    available_commands: dict[str, str] | None = None


def _push_callback_ok(url: str) -> bool:
    if url == "":
        return True
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname) and url.isascii()


def parse_update(body: dict[str, Any]) -> DeviceUpdate:
    f = Fields(body)
    update = DeviceUpdate()
    update.id = f.hex_id("id", 16)
    name = f.string("name", max_len=255)
    if name is not None and not display_safe(name):
        raise invalid("name")
    update.name = name
    update.type = f.string("type", max_len=16, pattern=DEVICE_TYPE, allow_empty=False)
    callback = f.string("pushCallback", max_len=255)
    public = f.string("pushPublicKey", max_len=88, pattern=URL_SAFE_B64)
    auth = f.string("pushAuthKey", max_len=24, pattern=URL_SAFE_B64)
    given = [v is not None for v in (callback, public, auth)]
    if any(given) and not all(given):
        raise invalid("pushCallback", message="pushCallback, pushPublicKey and pushAuthKey "
                      "go together")
    if callback is not None and not _push_callback_ok(callback):
        raise invalid("pushCallback")
    if callback is not None and public is not None and auth is not None:
        update.push = (callback, public, auth)
    commands = f.obj("availableCommands")
    if commands is not None:
        if len(commands) > MAX_COMMANDS:
            raise invalid("availableCommands")
        for key, value in commands.items():
            if not COMMAND_NAME.match(key) or not isinstance(value, str) \
                    or len(value) > MAX_COMMAND_VALUE:
                raise invalid("availableCommands")
        update.available_commands = dict(commands)
    capabilities = f.array("capabilities")
    if capabilities:  # old desktops send [], accepted and ignored
        raise invalid("capabilities")
    return update


_COLUMNS = (
    "d.id, d.uid, d.session_token_id, d.refresh_token_id, d.name, d.type, d.push_callback,"
    " d.push_public_key, d.push_auth_key, d.push_endpoint_expired, d.available_commands,"
    " d.created_at, COALESCE(t.last_access, r.last_used_at, d.created_at)"
)
_FROM = ("FROM devices d LEFT JOIN fxa_tokens t ON t.id = d.session_token_id"
         " LEFT JOIN oauth_refresh_tokens r ON r.id = d.refresh_token_id")


def _row(r: tuple) -> DeviceRow:  # type: ignore[type-arg]
    return DeviceRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], bool(r[9]),
                     json.loads(r[10]), r[11], r[12])


def for_session(conn: Connection, session_token_id: str) -> DeviceRow | None:
    """The device bound to a session (the OAuth helper uses this for fxa-credentials)."""
    r = conn.execute(f"SELECT {_COLUMNS} {_FROM} WHERE d.session_token_id = ?",  # noqa: S608
                     (session_token_id,)).fetchone()
    return _row(r) if r else None


def for_refresh_token(conn: Connection, refresh_token_id: str) -> DeviceRow | None:
    r = conn.execute(f"SELECT {_COLUMNS} {_FROM} WHERE d.refresh_token_id = ?",  # noqa: S608
                     (refresh_token_id,)).fetchone()
    return _row(r) if r else None


def for_owner(conn: Connection, owner: Owner) -> DeviceRow | None:
    if owner.session_id is not None:
        return for_session(conn, owner.session_id)
    return for_refresh_token(conn, owner.token_id)


def get(conn: Connection, uid: str, device_id: str) -> DeviceRow | None:
    r = conn.execute(f"SELECT {_COLUMNS} {_FROM} WHERE d.uid = ? AND d.id = ?",  # noqa: S608
                     (uid, device_id)).fetchone()
    return _row(r) if r else None


def list_for_account(conn: Connection, uid: str) -> list[DeviceRow]:
    rows = conn.execute(f"SELECT {_COLUMNS} {_FROM} WHERE d.uid = ?"  # noqa: S608
                        " ORDER BY d.created_at, d.id", (uid,)).fetchall()
    return [_row(r) for r in rows]


def upsert(conn: Connection, owner: Owner, update: DeviceUpdate, now_ms: int) -> DeviceRow:
    uid = owner.uid
    current = for_owner(conn, owner)
    if update.id is not None:
        target = get(conn, uid, update.id)
        if target is None:
            raise errors.unknown_device()
        if current is not None and current.id != target.id:
            raise FxaError(400, fxa_errors.DEVICE_CONFLICT,
                           "Session already registered by another device",
                           deviceId=current.id)
        device_id = target.id
        if not target.owned_by(owner):
            rebind(conn, device_id, owner)
    elif current is not None:
        device_id = current.id
    else:
        device_id = secrets.token_hex(16)
        # Mozilla's default for OAuth devices is "mobile", for sessions "desktop".
        default_type = "desktop" if owner.session_id is not None else "mobile"
        conn.execute(
            "INSERT INTO devices (id, uid, session_token_id, refresh_token_id, name, type,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
            (device_id, uid, owner.session_id, owner.refresh_id, "",
             update.type or default_type, now_ms))
    sets: list[str] = []
    args: list[Any] = []
    if update.name is not None:
        sets.append("name = ?")
        args.append(update.name)
    if update.type is not None:
        sets.append("type = ?")
        args.append(update.type)
    if update.push is not None:
        sets.append("push_callback = ?, push_public_key = ?, push_auth_key = ?,"
                    " push_endpoint_expired = 0")
        args.extend(update.push)
    if update.available_commands is not None:
        sets.append("available_commands = ?")
        args.append(json.dumps(update.available_commands, separators=(",", ":")))
    if sets:
        conn.execute(f"UPDATE devices SET {', '.join(sets)} WHERE id = ?",  # noqa: S608
                     (*args, device_id))
    row = get(conn, uid, device_id)
    assert row is not None
    return row


def rebind(conn: Connection, device_id: str, owner: Owner) -> None:
    conn.execute("UPDATE devices SET session_token_id = ?, refresh_token_id = ? WHERE id = ?",
                 (owner.session_id, owner.refresh_id, device_id))


def destroy(conn: Connection, uid: str, device_id: str) -> bool:
    """Remove a device *and* its credential, as Mozilla's deleteDevice (session) and
    revokeRefreshTokenById (OAuth) do: a device gone from the account list must not keep
    a live credential behind it."""
    device = get(conn, uid, device_id)
    if device is None:
        return False
    conn.execute("DELETE FROM devices WHERE id = ?", (device_id,))
    if device.session_token_id is not None:
        conn.execute("DELETE FROM fxa_tokens WHERE id = ? OR session_id = ?",
                     (device.session_token_id, device.session_token_id))
    if device.refresh_token_id is not None:
        conn.execute("DELETE FROM oauth_refresh_tokens WHERE id = ?",
                     (device.refresh_token_id,))
    return True


def as_json(device: DeviceRow, *, current: Owner | None = None,
            for_list: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"id": device.id}
    if for_list:
        out["isCurrentDevice"] = current is not None and device.owned_by(current)
        out["lastAccessTime"] = device.last_access
    else:
        out["createdAt"] = device.created_at
    out["name"] = device.name
    out["type"] = device.type
    if device.push_callback is not None:
        out["pushCallback"] = device.push_callback
        out["pushPublicKey"] = device.push_public_key
        out["pushAuthKey"] = device.push_auth_key
    elif for_list:
        # No push on a LAN: Firefox reads a null callback as "poll commands", which is what
        # we want (firefox-signin.md §3.2).
        out["pushCallback"] = None
        out["pushPublicKey"] = None
        out["pushAuthKey"] = None
    out["pushEndpointExpired"] = device.push_endpoint_expired
    out["availableCommands"] = device.available_commands
    return out
