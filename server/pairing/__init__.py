"""The pairing channel relay (pairing.md §2): ``/v1/ws/`` and ``/v1/ws/<channel id>``.

Channels live in memory only, for at most their lifetime; nothing reaches the database.
"""

from __future__ import annotations

from typing import Any

from ..settings import Settings
from . import relay as _relay
from .routes import make_blueprint


def register(app: Any, settings: Settings, store: Any) -> None:
    # Read at call time so tests can swap the limits before building an app.
    relay = _relay.Relay(_relay.DEFAULT_LIMITS)
    app.extensions["foxden.pairing"] = relay
    app.register_blueprint(make_blueprint(relay))


__all__ = ["register"]
