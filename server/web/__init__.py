"""Web pages: sign-in, sign-up, account settings and their ES modules (routes.py)."""

from __future__ import annotations

from typing import Any

from ..settings import Settings


def register(app: Any, settings: Settings, store: Any) -> None:
    from .routes import make_blueprint

    app.register_blueprint(make_blueprint(settings))
