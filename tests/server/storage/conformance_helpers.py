"""Helpers for the black-box Sync 1.5 storage conformance suite.

Everything here is written from docs/storage-tokenserver.md (the spec), not from the
implementation: an independent HAWK signer and token minter (built on Mozilla's ``tokenlib``
where possible), timestamp parsing/formatting checks and small request shortcuts.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import tokenlib
import trio
from tokenlib.utils import HKDF

# §0: timestamps are rendered with exactly two decimals, in headers and bodies.
TS_RE = re.compile(r"^\d+\.\d{2}$")
# A "modified" member in raw JSON text, capturing the literal number as written.
MODIFIED_IN_TEXT = re.compile(r'"modified"\s*:\s*([^,}\s]+)')

SIGNING_INFO = b"services.mozilla.com/tokenlib/v1/signing"
DERIVE_INFO = b"services.mozilla.com/tokenlib/v1/derive/"

PLD = "*" * 500


# --------------------------------------------------------------------------- shared server
# Starting a server (fresh SQLCipher file, keys, migrations) costs ~0.3–0.6 s; most
# conformance tests need only "a user nobody has touched", so they share one live server
# running in a background thread and get a private uid range each (like Mozilla's suite,
# which uses random uids against one server). Tests that need their own settings or the
# Database object use `make_server` instead.

_SHARED: dict[str, Any] = {}
_SHARED_LOCK = threading.Lock()
_UID_BLOCK = 100_000
_uid_blocks = itertools.count(1)


def _start_shared() -> Any:
    from tests.conftest import start_server

    tmp = Path(tempfile.mkdtemp(prefix="foxden-conformance-"))
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        try:
            async with trio.open_nursery() as nursery:
                box["live"] = await start_server(tmp, nursery)
                box["token"] = trio.lowlevel.current_trio_token()
                box["scope"] = nursery.cancel_scope
                ready.set()
        finally:
            ready.set()

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting test
            box["error"] = exc

    thread = threading.Thread(target=run, name="conformance-server", daemon=True)
    thread.start()
    ready.wait(120)
    if "live" not in box:
        raise RuntimeError(f"shared conformance server did not start: {box.get('error')!r}")

    def stop() -> None:
        try:
            box["token"].run_sync_soon(box["scope"].cancel)
        except trio.RunFinishedError:
            pass
        thread.join(10)
        shutil.rmtree(tmp, ignore_errors=True)

    atexit.register(stop)
    return box["live"]


def _shared() -> Any:
    with _SHARED_LOCK:
        if "live" not in _SHARED:
            _SHARED["live"] = _start_shared()
        return _SHARED["live"]


class SharedServer:
    """A per-test view of the shared live server: same URL/settings, private uids."""

    def __init__(self, live: Any) -> None:
        self._live = live
        self.base = next(_uid_blocks) * _UID_BLOCK

    def uid(self, logical: int) -> int:
        """Small (logical) uids map into this test's block; large ones pass through."""
        return logical if logical >= _UID_BLOCK else self.base + logical

    @property
    def url(self) -> str:
        return self._live.url

    @property
    def settings(self) -> Any:
        return self._live.settings

    def mint_token(self, uid: int, **kw: Any) -> dict[str, str]:
        return self._live.mint_token(uid, **kw)

    def storage_client(self, uid: int, **kw: Any) -> httpx.AsyncClient:
        return self._live.storage_client(uid, **kw)

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return self._live.client(**kw)


@pytest.fixture(name="server")
def shared_server_fixture() -> SharedServer:
    """Overrides conftest's `server` in modules that assign ``server = shared_server_fixture``."""
    return SharedServer(_shared())


def real_uid(server: Any, uid: int) -> int:
    mapper = getattr(server, "uid", None)
    return mapper(uid) if callable(mapper) else uid


# --------------------------------------------------------------------------- timestamps


def ts(value: str | None) -> Decimal:
    """A header/body timestamp: asserts the two-decimal format, returns it as Decimal."""
    assert value is not None, "timestamp missing"
    assert TS_RE.match(value), f"timestamp {value!r} is not <digits>.<2 digits>"
    return Decimal(value)


def hdr_ts(r: httpx.Response, name: str = "X-Last-Modified") -> Decimal:
    assert name in r.headers, f"{name} missing from {r.status_code} response"
    return ts(r.headers[name])


def body_ts(r: httpx.Response) -> Decimal:
    """A response whose whole body is one timestamp (PUT, DELETE collection)."""
    return ts(r.text)


def jl(r: httpx.Response) -> Any:
    """JSON body with numbers kept exact (Decimal), so 1.10 stays 1.10."""
    return json.loads(r.text, parse_float=Decimal)


def assert_modified_two_decimals(text: str, expected_count: int | None = None) -> list[Decimal]:
    found = MODIFIED_IN_TEXT.findall(text)
    for raw in found:
        assert TS_RE.match(raw), f"'modified' rendered as {raw!r} in {text[:200]!r}"
    if expected_count is not None:
        assert len(found) == expected_count, text[:300]
    return [Decimal(x) for x in found]


def fmt(ms: int) -> str:
    """Milliseconds → the protocol's two-decimal seconds string."""
    return f"{ms // 1000}.{(ms % 1000) // 10:02d}"


def to_ms(value: Decimal) -> int:
    return int(value * 1000)


# --------------------------------------------------------------------------- errors


def assert_weave_error(r: httpx.Response, status: int, code: int = 0) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.text == str(code), f"body {r.text[:200]!r}, expected {code}"
    assert r.headers.get("content-type", "").split(";")[0].strip() == "application/json"


def assert_empty(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.content == b"", r.content[:200]


# --------------------------------------------------------------------------- quota


def quota(server: Any, used_bytes: int) -> list[Any]:
    """Expected /info/quota body: [usage KB, quota KB or null].

    §5.7 gives ``[usage, null]`` (RS, quota off); with quota enforced (Foxden) the second
    item is the quota in KB, as the published API doc defines it.
    """
    limit = (server.settings.limits.max_quota_limit / 1024.0
             if server.settings.enforce_quota else None)
    return [used_bytes / 1024.0, limit]


# --------------------------------------------------------------------------- requests


class HawkSigner(httpx.Auth):
    """Firefox-style signing (public host/port, raw target, no payload hash)."""

    def __init__(self, token: str, key: str, host: str, port: int) -> None:
        self.token, self.key, self.host, self.port = token, key, host, port

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        target = request.url.raw_path.decode("ascii")
        request.headers["Authorization"] = hawk_header(
            self.token, self.key, request.method, target, self.host, self.port)
        yield request


def storage(server: Any, uid: int = 42, **token_kw: Any) -> httpx.AsyncClient:
    """Like ``server.storage_client`` (token from the fixture's minter), but signed by this
    suite's own HAWK code and without TLS set-up (loopback HTTP only; much faster)."""
    uid = real_uid(server, uid)
    creds = server.mint_token(uid, **token_kw)
    return httpx.AsyncClient(
        base_url=f"{server.url}/1.5/{uid}", timeout=30, verify=False,
        auth=HawkSigner(creds["id"], creds["key"], server.settings.public_host,
                        server.settings.public_port),
    )


async def post(c: httpx.AsyncClient, coll: str, items: Any, *, params: Any = None,
               headers: dict[str, str] | None = None) -> httpx.Response:
    return await c.post(f"/storage/{coll}", json=items, params=params, headers=headers)


async def post_ok(c: httpx.AsyncClient, coll: str, items: Any, **kw: Any) -> Any:
    r = await post(c, coll, items, **kw)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return jl(r)


async def put(c: httpx.AsyncClient, coll: str, bid: str, body: Any, *,
              headers: dict[str, str] | None = None) -> httpx.Response:
    return await c.put(f"/storage/{coll}/{bid}", json=body, headers=headers)


async def put_ok(c: httpx.AsyncClient, coll: str, bid: str, body: Any) -> Decimal:
    r = await put(c, coll, bid, body)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return body_ts(r)


async def get_full(c: httpx.AsyncClient, coll: str, **params: Any) -> list[dict[str, Any]]:
    r = await c.get(f"/storage/{coll}", params={"full": "1", **params})
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return jl(r)


async def get_ids(c: httpx.AsyncClient, coll: str, **params: Any) -> list[str]:
    r = await c.get(f"/storage/{coll}", params=params)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return jl(r)


async def by_id(c: httpx.AsyncClient, coll: str) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in await get_full(c, coll)}


def bsos(ids: Iterable[Any], payload: str = "x", **extra: Any) -> list[dict[str, Any]]:
    return [{"id": str(i), "payload": payload, **extra} for i in ids]


def zid(i: int) -> str:
    return str(i).zfill(2)


# --------------------------------------------------------------------------- tokens + HAWK
# Independent of server/crypto: tokens come from Mozilla's tokenlib, MACs from hashlib here.


def mint(secret: str, uid: int, *, expires_in: float = 300, node: str = "http://x",
         **extra: Any) -> tuple[str, str]:
    """(token id, key) from Mozilla's tokenlib, the way Mozilla's suite forges them."""
    data = {"uid": uid, "node": node, "expires": time.time() + expires_in, **extra}
    token = tokenlib.make_token(data, secret=secret)
    return token, tokenlib.get_derived_secret(token, secret=secret)


def raw_token(secret: str, payload: bytes | dict[str, Any]) -> tuple[str, str | None]:
    """A token over an arbitrary (possibly malformed) payload, signed correctly.

    Returns the id and, when the payload carries a string salt, its derived key.
    """
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sig_key = HKDF(secret.encode(), salt=None, info=SIGNING_INFO, size=32)
    sig = hmac.new(sig_key, body, hashlib.sha256).digest()
    token = base64.urlsafe_b64encode(body + sig).decode()
    key = None
    try:
        salt = json.loads(body)["salt"]
    except (ValueError, KeyError, TypeError):
        salt = None
    if isinstance(salt, str):
        raw = HKDF(secret.encode(), salt=salt.encode(), info=DERIVE_INFO + token.encode(),
                   size=32)
        key = base64.urlsafe_b64encode(raw).decode()
    return token, key


def payload_hash(content_type: str, body: bytes) -> str:
    mime = content_type.split(";", 1)[0].strip().lower()
    h = hashlib.sha256(b"hawk.1.payload\n" + mime.encode() + b"\n" + body + b"\n")
    return base64.b64encode(h.digest()).decode()


def hawk_header(token: str, key: str, method: str, target: str, host: str, port: int, *,
                ts: int | None = None, nonce: str | None = None, hash_: str = "",
                ext: str = "") -> str:
    ts_s = str(int(time.time()) if ts is None else ts)
    nonce = nonce or secrets.token_urlsafe(6)
    normalized = "\n".join([
        "hawk.1.header", ts_s, nonce, method.upper(), target, host.lower(), str(port),
        hash_, ext, "",
    ])
    mac = base64.b64encode(
        hmac.new(key.encode("ascii"), normalized.encode(), hashlib.sha256).digest()
    ).decode()
    out = f'Hawk id="{token}", ts="{ts_s}", nonce="{nonce}", mac="{mac}"'
    if hash_:
        out += f', hash="{hash_}"'
    if ext:
        out += f', ext="{ext}"'
    return out


class Signer:
    """Sends requests signed by this module's HAWK code with any host/port/ts/nonce."""

    def __init__(self, server: Any, uid: int, token: str | None = None,
                 key: str | None = None, *, expires_in: float = 300) -> None:
        self.server = server
        self.uid = uid = real_uid(server, uid)
        if token is None:
            token, key = mint(server.settings.sync_master_secret, uid, expires_in=expires_in,
                              node=server.url)
        self.token = token
        self.key = key or ""
        self.host = server.settings.public_host
        self.port = server.settings.public_port

    def header(self, method: str, target: str, **kw: Any) -> str:
        kw.setdefault("host", self.host)
        kw.setdefault("port", self.port)
        host = kw.pop("host")
        port = kw.pop("port")
        return hawk_header(self.token, self.key, method, target, host, port, **kw)

    async def send(self, method: str, rest: str, *, content: bytes | None = None,
                   content_type: str | None = None, headers: dict[str, str] | None = None,
                   sign_target: str | None = None, with_hash: bool = False,
                   **sign_kw: Any) -> httpx.Response:
        target = f"/1.5/{self.uid}{rest}"
        hdrs = dict(headers or {})
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        if with_hash:
            sign_kw["hash_"] = payload_hash(content_type or "", content or b"")
        hdrs.setdefault("Authorization", self.header(method, sign_target or target, **sign_kw))
        return await raw_request(self.server, method, target, content=content, headers=hdrs)


async def raw_request(server: Any, method: str, target: str, *, content: bytes | None = None,
                      headers: dict[str, str] | None = None) -> httpx.Response:
    """Send ``target`` byte-for-byte (no re-encoding of the path or query)."""
    async with httpx.AsyncClient(timeout=30, verify=False) as c:
        url = httpx.URL(server.url + target)
        req = c.build_request(method, url, content=content, headers=headers)
        return await c.send(req)
