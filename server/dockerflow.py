"""/__heartbeat__, /__lbheartbeat__, /__version__ (Mozilla's Dockerflow conventions)."""

from __future__ import annotations

from quart import Blueprint, current_app, jsonify

from .db.engine import Database

blueprint = Blueprint("dockerflow", __name__)
PATHS = frozenset({"/__heartbeat__", "/__lbheartbeat__", "/__version__", "/__error__"})


@blueprint.get("/__lbheartbeat__")
async def lbheartbeat():  # type: ignore[no-untyped-def]
    return jsonify({})


@blueprint.get("/__heartbeat__")
async def heartbeat():  # type: ignore[no-untyped-def]
    store: Database = current_app.extensions["foxden.store"]
    settings = current_app.extensions["foxden.settings"]
    try:
        await store.read(lambda conn: conn.execute("SELECT 1").fetchone())
        db_ok = "Ok"
    except Exception:  # noqa: BLE001 - a heartbeat reports, it does not raise
        db_ok = "Err"
    status = 200 if db_ok == "Ok" else 503
    body = {"status": db_ok, "version": settings.version, "database": db_ok, "quota": {
        "enabled": settings.enforce_quota, "size": settings.limits.max_quota_limit}}
    return jsonify(body), status


@blueprint.get("/__version__")
async def version():  # type: ignore[no-untyped-def]
    settings = current_app.extensions["foxden.settings"]
    return jsonify({"source": "foxden", "version": settings.version, "commit": "", "build": ""})
