"""Test helpers for the FxA auth API: a live server that exposes its app, a HAWK client that
signs like Firefox (HKDF-derived id/key, payload hash on bodies), and account creation
through the store functions."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from appliance import users
from server.accounts import store
from server.accounts.context import KEY, AccountsContext
from server.crypto import fxatokens, hawk, onepw
from server.settings import Settings
from tests.conftest import LiveServer, start_server


@dataclass
class AccountsServer:
    live: LiveServer
    app: Any

    @property
    def url(self) -> str:
        return self.live.url

    @property
    def db(self):  # type: ignore[no-untyped-def]
        return self.live.db

    @property
    def settings(self) -> Settings:
        return self.live.settings

    @property
    def accounts(self) -> AccountsContext:
        return self.app.extensions[KEY]  # type: ignore[no-any-return]

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return self.live.client(**kw)

    def hawk(self, token_hex: str, kind: str = "sessionToken") -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30,
                                 auth=FxaHawk(token_hex, kind, self.settings))


async def start(tmp_path: Path, nursery: trio.Nursery, **overrides: Any) -> AccountsServer:
    live = await start_server(tmp_path, nursery, **overrides)
    return AccountsServer(live, live.app)


class FxaHawk(httpx.Auth):
    """HAWK as Firefox computes it for FxA tokens (firefox-signin.md §3.5)."""

    def __init__(self, token_hex: str, kind: str, settings: Settings) -> None:
        self.creds = fxatokens.derive(bytes.fromhex(token_hex), kind)  # type: ignore[arg-type]
        self.settings = settings

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        body = request.content if request.method in ("POST", "PUT") else None
        request.headers["Authorization"] = hawk.sign_header(
            self.creds.hawk_key, self.creds.id, request.method,
            request.url.raw_path.decode("ascii"), self.settings.public_host,
            self.settings.public_port, int(time.time()), secrets.token_urlsafe(8),
            content_type=request.headers.get("content-type", ""), body=body)
        yield request


async def add_account(db: Any, email: str, password: str, *, key_stretch: int = 1
                      ) -> store.AccountRow:
    """An account made with the store functions, like `foxden user add` does."""
    new = await trio.to_thread.run_sync(
        lambda: users.new_password(email, password, key_stretch=key_stretch))
    now = int(time.time() * 1000)
    return await db.write(lambda c: store.create(c, email, new.record, now))  # type: ignore[no-any-return]


def creds_v1(email: str, password: str) -> onepw.ClientCredentials:
    return onepw.client_credentials_v1(email, password)


async def login(client: httpx.AsyncClient, email: str, password: str, *, keys: bool = True,
                ) -> dict[str, Any]:
    auth_pw = creds_v1(email, password).auth_pw.hex()
    r = await client.post("/v1/account/login" + ("?keys=true" if keys else ""),
                          json={"email": email, "authPW": auth_pw})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def fetch_kb(srv: AccountsServer, key_fetch_token: str, unwrap_b_key: bytes) -> bytes:
    async with srv.hawk(key_fetch_token, "keyFetchToken") as c:
        r = await c.get("/v1/account/keys")
    assert r.status_code == 200, r.text
    creds = fxatokens.derive(bytes.fromhex(key_fetch_token), "keyFetchToken")
    _ka, wrapped = onepw.unbundle_keys(creds.extra, bytes.fromhex(r.json()["bundle"]))
    return onepw.unwrap_kb(wrapped, unwrap_b_key)


def assert_fxa_error(r: httpx.Response, status: int, errno: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = json.loads(r.text)
    assert body["code"] == status and body["errno"] == errno, body
    assert isinstance(body["error"], str) and isinstance(body["message"], str)
    return body  # type: ignore[no-any-return]
