"""Admin API routes (/admin/v1/...): the tray's and remote CLI's only way in.

JSON in and out; errors are ``{"error": <short code>, "message": <for the user>}``.
Every route needs the admin token; see :mod:`appliance.admin.auth`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import trio
from quart import Blueprint, Quart, Response, jsonify, request

from .. import logs, users
from ..config import Config, ConfigError
from .auth import verdict

PREFIX = "/admin/v1"
SETTABLE = {"signup_open": bool, "public_name": str, "listen": str, "http_listen": str,
            "mdns": bool, "allow_public_clients": bool}


@dataclass
class AdminContext:
    runtime: Any                      # appliance.runtime.Runtime
    token: str
    status: dict[str, Any] = field(default_factory=dict)  # filled by serve: ports, TLS, mDNS
    started: float = field(default_factory=time.time)


class AdminError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def _now_ms() -> int:
    return int(time.time() * 1000)


def install(app: Quart, ctx: AdminContext) -> None:
    bp = Blueprint("admin", __name__, url_prefix=PREFIX)
    db = ctx.runtime.db

    @bp.before_request
    async def _auth() -> Response | None:
        client = request.scope.get("client")
        why = verdict(ctx.token, request.headers.get("Authorization"),
                      client[0] if client else None, request.scope.get("scheme", "http"))
        if why is None:
            return None
        status = 403 if "HTTPS" in why else 401
        return _error(status, "unauthorized", why)

    @bp.errorhandler(AdminError)
    async def _admin_error(exc: AdminError) -> Response:
        return _error(exc.status, exc.error, exc.message)

    @bp.errorhandler(users.UserError)
    async def _user_error(exc: users.UserError) -> Response:
        status = 404 if str(exc).startswith("no account") else 400
        return _error(status, "not_found" if status == 404 else "invalid", str(exc))

    async def body() -> dict[str, Any]:
        data = await request.get_json(force=True, silent=True)
        if not isinstance(data, dict):
            raise AdminError(400, "invalid", "the body must be a JSON object")
        return data

    def text(data: dict[str, Any], key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise AdminError(400, "invalid", f"{key} is required (a string)")
        return value

    @bp.get("/status")
    async def status() -> Response:
        settings = ctx.runtime.settings
        n_users = await db.read(lambda c: c.execute("SELECT count(*) FROM accounts")
                                .fetchone()[0])
        size = sum(p.stat().st_size for p in db.path.parent.glob(db.path.name + "*"))
        return jsonify({
            "version": settings.version, "publicUrl": settings.public_url,
            "uptimeSeconds": int(time.time() - ctx.started), "users": n_users,
            "signupOpen": settings.signup_open,
            "database": {"path": str(db.path), "bytes": size,
                         "schemaVersion": db.schema_version},
            **ctx.status})

    @bp.get("/users")
    async def list_users() -> Response:
        now = _now_ms()
        found = await db.read(lambda c: _summary_rows(c, now))
        return jsonify([u.as_json() for u in found])

    @bp.post("/users")
    async def add_user() -> Response:
        data = await body()
        email, password = users.check_email(text(data, "email")), text(data, "password")
        if await db.read(lambda c: users.store.find_by_email(c, email)) is not None:
            raise AdminError(409, "exists", f"an account for {email} already exists")
        new = await trio.to_thread.run_sync(lambda: users.new_password(email, password))
        try:
            account = await db.write(
                lambda c: users.store.create(c, email, new.record, _now_ms()))
        except users.store.AccountExists:
            raise AdminError(409, "exists", f"an account for {email} already exists") from None
        return jsonify({"uid": account.uid, "email": account.email}), 201

    @bp.delete("/users/<who>")
    async def remove_user(who: str) -> Response:
        email = await db.write(users.remove_tx(who, now_ms=_now_ms()))
        return jsonify({"removed": email})

    @bp.post("/users/<who>/password")
    async def reset_password(who: str) -> Response:
        data = await body()
        password = text(data, "password")
        if data.get("confirm") is not True:
            raise AdminError(400, "confirm", users.RESET_WARNING +
                             " Send confirm: true to go ahead.")
        account = await db.read(users.find_tx(who))
        new = await trio.to_thread.run_sync(
            lambda: users.new_password(account.email, password,
                                       key_stretch=account.key_stretch_version))
        email = await db.write(users.reset_tx(account, new, now_ms=_now_ms()))
        return jsonify({"reset": email, "warning": users.RESET_WARNING})

    @bp.get("/users/<who>/devices")
    async def devices(who: str) -> Response:
        return jsonify(await db.read(users.devices_tx(who, now_ms=_now_ms())))

    @bp.post("/users/<who>/disconnect")
    async def disconnect(who: str) -> Response:
        data = await body()
        tx = users.disconnect_tx(who, device_id=data.get("deviceId"),
                                 session_id=data.get("sessionTokenId"),
                                 client_id=data.get("clientId"))
        if not await db.write(tx):
            raise AdminError(404, "not_found", "no such device, session or client")
        return jsonify({"disconnected": True})

    @bp.get("/users/<who>/authorizations")
    async def authorizations(who: str) -> Response:
        return jsonify(await db.read(users.authorizations_tx(who)))

    @bp.post("/users/<who>/authorizations/revoke")
    async def revoke(who: str) -> Response:
        data = await body()
        tx = users.revoke_tx(who, scope=text(data, "scope"), service=text(data, "service"),
                             client_id=text(data, "clientId"))
        if not await db.write(tx):
            raise AdminError(404, "not_found", "no such authorization")
        return jsonify({"revoked": True})

    @bp.get("/usage")
    async def usage() -> Response:
        return jsonify(await db.read(users.usage_tx(now_ms=_now_ms())))

    @bp.get("/logs")
    async def recent_logs() -> Response:
        try:
            limit = max(1, min(int(request.args.get("limit", "200")), 1000))
        except ValueError:
            raise AdminError(400, "invalid", "limit must be a number") from None
        return jsonify(list(logs.RING.lines)[-limit:])

    @bp.get("/settings")
    async def get_settings() -> Response:
        config = Config.load(ctx.runtime.paths.config_file)
        return jsonify({k: getattr(config, k) for k in SETTABLE})

    @bp.patch("/settings")
    async def patch_settings() -> Response:
        data = await body()
        for key, value in data.items():
            kind = SETTABLE.get(key)
            if kind is None:
                raise AdminError(400, "invalid", f"{key} cannot be changed here")
            if not isinstance(value, kind):
                raise AdminError(400, "invalid", f"{key} must be a {kind.__name__}")
        path = ctx.runtime.paths.config_file
        current = _read_toml(path)
        current.update(data)
        try:
            probe = Config()
            probe._apply(current, "settings")  # validates the whole file as it will be
        except ConfigError as exc:
            raise AdminError(400, "invalid", str(exc)) from None
        _write_toml(path, current)
        return jsonify({"saved": sorted(data), "restartRequired": True})

    app.register_blueprint(bp)


def _summary_rows(c: Any, now_ms: int) -> list[users.UserSummary]:
    return [users.UserSummary(a.uid, a.email, a.created_at, a.key_stretch_version,
                              len(users.tokens.sessions(c, a.uid, now_ms)),
                              len(users.devices.list_for_account(c, a.uid)))
            for a in users.store.list_all(c)]


def _error(status: int, error: str, message: str) -> Response:
    resp = jsonify({"error": error, "message": message})
    resp.status_code = status
    return resp


def _read_toml(path: Any) -> dict[str, Any]:
    import tomllib

    if not path.exists():
        return {}
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _write_toml(path: Any, data: dict[str, Any]) -> None:
    """Flat key = value TOML (all Foxden options are scalars), written atomically."""
    lines = ["# Foxden settings; see docs/configuration.md"]
    for key, value in sorted(data.items()):
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int):
            lines.append(f"{key} = {value}")
        else:
            escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'{key} = "{escaped}"')
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
