"""Fixtures: a live server with sign-up open whose app (and its throttle) tests can reach."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from .helpers import AccountsServer, start


@pytest.fixture
async def srv(tmp_path: Path, nursery: trio.Nursery) -> AccountsServer:
    live = await start(tmp_path, nursery, signup_open=True)
    yield live  # type: ignore[misc]
    live.live.cancel.cancel()


@pytest.fixture
def start_srv(tmp_path: Path, nursery: trio.Nursery) -> Callable[..., Any]:
    counter = iter(range(100))

    async def factory(**overrides: Any) -> AccountsServer:
        sub = tmp_path / f"s{next(counter)}"
        sub.mkdir()
        return await start(sub, nursery, **overrides)

    return factory
