"""Per-app state of the account routes: settings, database, throttle, password hasher."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from quart import current_app, request

from ..db.engine import Database
from ..settings import Settings
from .passwords import Hasher
from .throttle import LoginThrottle

KEY = "foxden.accounts"


@dataclass
class AccountsContext:
    settings: Settings
    db: Database
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    hasher: Hasher = field(default_factory=Hasher)
    # Wall clock in ms for stored timestamps; tests may replace it.
    now_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))


def ctx() -> AccountsContext:
    return current_app.extensions[KEY]  # type: ignore[no-any-return]


def client_address() -> str:
    # DIVERGENCE: no X-Forwarded-For trust; behind a reverse proxy every client shares the
    # proxy's address and hence one per-address throttle bucket.
    return request.remote_addr or "unknown"


def user_agent() -> str:
    return request.headers.get("User-Agent", "")[:255]


def locale() -> str:
    return request.headers.get("Accept-Language", "").split(",")[0].strip()[:64]
