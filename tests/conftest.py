"""Shared fixtures: a real Hypercorn on a real loopback socket over a real SQLCipher file."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from appliance import service
from appliance.config import Config
from appliance.paths import Paths
from appliance.runtime import Runtime, build
from server.app import create_app
from server.crypto import hawk, tokenlib
from server.settings import Settings

TEST_MASTER_SECRET = "TED KOPPEL IS A ROBOT"


@dataclass
class LiveServer:
    url: str
    runtime: Runtime
    cancel: trio.CancelScope
    app: Any = None

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def db(self):  # type: ignore[no-untyped-def]
        return self.runtime.db

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, **kw)

    def mint_token(self, uid: int, *, expires_in: float = 300, **extra: Any) -> dict[str, str]:
        """A storage token the way tokenlib/the tokenserver makes one."""
        secrets_ = tokenlib.TokenSecrets.from_master(self.settings.sync_master_secret)
        payload = {"uid": uid, "node": self.url, "expires": time.time() + expires_in,
                   "salt": tokenlib.new_salt(), **extra}
        token = tokenlib.make_token(secrets_, payload)
        return {"id": token, "key": tokenlib.derived_secret(secrets_, token, payload["salt"])}

    def storage_client(self, uid: int, **token_kw: Any) -> httpx.AsyncClient:
        creds = self.mint_token(uid, **token_kw)
        return httpx.AsyncClient(
            base_url=f"{self.url}/1.5/{uid}", timeout=30,
            auth=HawkAuth(creds["id"], creds["key"], self.settings),
        )


class HawkAuth(httpx.Auth):
    """Signs each request like Firefox does: host/port of the public URL, no payload hash."""

    def __init__(self, token_id: str, key: str, settings: Settings, *,
                 with_hash: bool = False) -> None:
        self.token_id = token_id
        self.key = key
        self.settings = settings
        self.with_hash = with_hash

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        target = request.url.raw_path.decode("ascii")
        body = request.content if self.with_hash else None
        request.headers["Authorization"] = hawk.sign_header(
            self.key.encode("ascii"), self.token_id, request.method, target,
            self.settings.public_host, self.settings.public_port,
            int(time.time()), secrets.token_urlsafe(8),
            content_type=request.headers.get("content-type", ""), body=body,
        )
        yield request


async def start_server(
    tmp_path: Path, nursery: trio.Nursery, *,
    prepare: Callable[[Any, Runtime], None] | None = None, **overrides: Any
) -> LiveServer:
    """A real Hypercorn on 127.0.0.1 over a fresh SQLCipher file.  ``prepare(app, runtime)``
    runs before serving (e.g. to mount the admin API); ``overrides`` replace settings."""
    sock = service.bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    paths = Paths.resolve(str(tmp_path / "data"), str(tmp_path / "config"))
    runtime = build(paths, Config(sync_master_secret=TEST_MASTER_SECRET), url)
    if overrides:
        runtime.settings = replace(runtime.settings, **overrides)
    app = create_app(runtime.settings, runtime.db)
    if prepare is not None:
        prepare(app, runtime)
    cancel = trio.CancelScope()

    async def run(task_status=trio.TASK_STATUS_IGNORED):  # type: ignore[no-untyped-def]
        with cancel:
            try:
                await service.serve_http(app, [sock], task_status=task_status)
            finally:
                runtime.db.close()

    await nursery.start(run)
    return LiveServer(url, runtime, cancel, app)


@pytest.fixture
async def server(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[LiveServer]:
    live = await start_server(tmp_path, nursery)
    yield live
    live.cancel.cancel()


@pytest.fixture
def make_server(tmp_path: Path, nursery: trio.Nursery) -> Callable[..., Any]:
    """For tests that need non-default settings: ``await make_server(limits=...)``."""
    counter = iter(range(1000))

    async def factory(**overrides: Any) -> LiveServer:
        sub = tmp_path / f"srv{next(counter)}"
        sub.mkdir()
        return await start_server(sub, nursery, **overrides)

    return factory


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests talk to loopback only; never let an inherited proxy variable route elsewhere.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
