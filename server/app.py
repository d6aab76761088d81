"""create_app(settings, store): the Quart-Trio application, blueprints and error routing."""

from __future__ import annotations

import logging

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from . import dockerflow
from .db.engine import Database
from .errors import WEAVE_SIZE_LIMIT, FxaError, TokenserverError, WeaveError
from .settings import Settings

log = logging.getLogger("foxden.server")


def _family(path: str) -> str:
    """Which error envelope a path speaks (FxA JSON, tokenserver JSON, or WEAVE)."""
    if path.startswith(("/v1/", "/oauth/", "/profile/")) or path == "/v1":
        return "fxa"
    if path.startswith("/1.0/"):
        return "tokenserver"
    return "weave"


def create_app(settings: Settings, store: Database) -> QuartTrio:
    app = QuartTrio("foxden")
    app.config["MAX_CONTENT_LENGTH"] = settings.limits.max_request_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.extensions["foxden.settings"] = settings
    app.extensions["foxden.store"] = store

    app.register_blueprint(dockerflow.blueprint)
    _register_optional(app, settings, store)
    _register_errors(app)
    return app


# Each protocol package exposes `register(app, settings, store)`.
PROTOCOLS = ("storage", "tokenserver", "accounts", "oauth", "profile", "discovery", "pairing",
             "web")


def _register_optional(app: QuartTrio, settings: Settings, store: Database) -> None:
    import importlib

    for name in PROTOCOLS:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise
            continue
        register = getattr(module, "register", None)
        if register is not None:
            register(app, settings, store)


def _register_errors(app: QuartTrio) -> None:
    @app.errorhandler(WeaveError)
    async def _weave(exc: WeaveError) -> Response:
        return exc.response()

    @app.errorhandler(TokenserverError)
    async def _tokenserver(exc: TokenserverError) -> Response:
        return exc.response()

    @app.errorhandler(FxaError)
    async def _fxa(exc: FxaError) -> Response:
        return exc.response()

    @app.errorhandler(HTTPException)
    async def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        family = _family(request.path)
        if family == "fxa":
            return FxaError(status, 999 if status >= 500 else 998, exc.name).response()
        if family == "tokenserver":
            if status == 404:
                return TokenserverError(404, location="url", name="application",
                                        description="Unsupported application").response()
            return TokenserverError(status, description=exc.name).response()
        if status == 405:
            return Response(b"", status=405)
        if status == 413:
            return WeaveError(413, WEAVE_SIZE_LIMIT).response()
        return WeaveError(status).response()

    @app.errorhandler(Exception)
    async def _internal(exc: Exception) -> Response:
        # Never a traceback on the wire; the log gets the type, never request data.
        log.error("internal error on %s %s: %s", request.method, request.path,
                  type(exc).__name__, exc_info=exc)
        family = _family(request.path)
        if family == "fxa":
            return FxaError(500, 999, "Unspecified error").response()
        if family == "tokenserver":
            return TokenserverError(500, "internal-error", location="internal",
                                    description="Server error").response()
        return WeaveError(500).response()
