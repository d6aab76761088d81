"""The FxA auth server API (/v1/account, /v1/session, /v1/password, devices, commands).

``register(app, settings, store)`` is what server/app.py calls.  Other modules use:
:mod:`.store` (accounts), :mod:`.tokens`, :mod:`.devices` (``for_session``),
:func:`.auth.authenticate` and :func:`.deletion.delete_account`.
"""

from __future__ import annotations

from quart_trio import QuartTrio

from ..db.engine import Database
from ..settings import Settings
from . import device_routes, password_routes, session_routes
from .context import KEY, AccountsContext
from .routes import bp

device_routes.add_routes(bp)
password_routes.add_routes(bp)
session_routes.add_routes(bp)


def register(app: QuartTrio, settings: Settings, store: Database) -> None:
    app.extensions[KEY] = AccountsContext(settings, store)
    app.register_blueprint(bp)


__all__ = ["register"]
