"""Authenticating FxA token requests: HAWK (Firefox) and prefixed Bearer (PyFxA 0.9).

``await authenticate("sessionToken")`` inside a Quart route returns the stored
:class:`TokenRow` or raises the FxA 401 envelope Firefox acts on:

* errno 110 — unknown/expired/destroyed token (Firefox then checks /session/status);
* errno 109 — malformed header, bad MAC, bad payload hash, wrong token kind;
* errno 111 — HAWK ts more than 60 s off (body carries ``serverTime`` so clients resync);
* errno 115 — a (token id, nonce) pair seen before.

HAWK host/port come from the configured public URL, never from the Host header.

:func:`authenticate_device_owner` is for the device routes, which Fenix and iOS (Mozilla's
application-services) call with ``Authorization: Bearer <OAuth refresh token>`` instead of
a session; FxA's ``refreshToken`` scheme, restricted like FxA's to tokens with oldsync.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace

from quart import current_app, request

from .. import fxa_errors
from ..crypto import hawk
from ..crypto.fxatokens import BEARER_PREFIXES, TokenKind
from ..crypto.noncecache import NonceCache
from ..db.engine import Database
from ..settings import Settings
from . import errors, tokens
from .devices import Owner
from .tokens import TokenRow

HAWK_SKEW_SECONDS = 60
_NONCE_TTL = 2 * HAWK_SKEW_SECONDS


def _nonces() -> NonceCache:
    cache = current_app.extensions.get("foxden.fxa_nonces")
    if cache is None:
        cache = current_app.extensions["foxden.fxa_nonces"] = NonceCache()
    return cache


def request_target() -> str:
    raw = request.scope.get("raw_path") or request.path.encode()
    query = request.scope.get("query_string") or b""
    target = raw.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


async def authenticate(*kinds: TokenKind) -> TokenRow:
    """The token this request is signed with, which must be one of ``kinds``."""
    settings: Settings = current_app.extensions["foxden.settings"]
    store: Database = current_app.extensions["foxden.store"]
    header = request.headers.get("Authorization", "")
    now = time.time()
    now_ms = int(now * 1000)

    if header.startswith("Hawk "):
        try:
            parsed = hawk.parse_header(header)
        except hawk.HawkError as exc:
            raise fxa_errors.invalid_signature() from exc
        row = await store.read(lambda c: tokens.get(c, parsed.id, now_ms))
        if row is None:
            raise fxa_errors.invalid_token()
        try:
            hawk.verify_mac(parsed, row.hawk_key, request.method, request_target(),
                            settings.public_host, settings.public_port)
        except hawk.HawkError as exc:
            raise fxa_errors.invalid_signature() from exc
        # Only after the MAC: an unsigned request learns nothing about the token's kind.
        if row.kind not in kinds:
            raise fxa_errors.invalid_signature("Token of the wrong kind")
        if abs(int(parsed.ts) - now) > HAWK_SKEW_SECONDS:
            raise fxa_errors.invalid_timestamp(int(now))
        if parsed.hash:
            body = await request.get_data(cache=True, as_text=False)
            try:
                hawk.verify_payload(parsed, request.headers.get("Content-Type", ""), body)
            except hawk.HawkError as exc:
                raise fxa_errors.invalid_signature("Payload hash mismatch") from exc
        if not _nonces().check_and_add(row.id, parsed.nonce, now + _NONCE_TTL, now):
            raise fxa_errors.invalid_nonce()
        return await _touched(store, row, now_ms)

    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and "_" in credential:
        prefix, _, token_id = credential.strip().partition("_")
        kind = BEARER_PREFIXES.get(prefix)
        if kind is None:
            raise fxa_errors.invalid_token()
        if kind not in kinds:
            raise fxa_errors.invalid_signature("Token of the wrong kind")
        row = await store.read(lambda c: tokens.get(c, token_id.lower(), now_ms))
        if row is None or row.kind != kind:
            raise fxa_errors.invalid_token()
        return await _touched(store, row, now_ms)

    raise fxa_errors.invalid_token("Missing or unsupported authentication")


async def _touched(store: Database, row: TokenRow, now_ms: int) -> TokenRow:
    """Keep a session's last use (the devices list's lastAccessTime) roughly current:
    at most one write a minute per session."""
    if row.kind == "sessionToken" and now_ms - row.last_access >= tokens.TOUCH_INTERVAL_MS:
        await store.write(lambda c: tokens.touch(c, row.id, now_ms))
        return replace(row, last_access=now_ms)
    return row


_REFRESH_TOKEN = re.compile(r"^[0-9a-fA-F]{64}$")
_OLDSYNC = "https://identity.mozilla.com/apps/oldsync"


async def authenticate_device_owner() -> Owner:
    """A session (HAWK or ``Bearer fxs_``) or an OAuth refresh token with oldsync scope."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not _REFRESH_TOKEN.match(credential):
        row = await authenticate("sessionToken")
        return Owner(row.uid, session_id=row.id)
    from ..oauth import grants
    from ..oauth import store as oauth_store

    store: Database = current_app.extensions["foxden.store"]
    token_id = grants.token_hash(credential.lower())
    refresh = await store.read(lambda c: oauth_store.get_refresh(c, token_id))
    if refresh is None:
        raise fxa_errors.invalid_token()
    if _OLDSYNC not in refresh.scope:
        # FxA's refreshToken scheme only serves Sync-connected tokens.
        raise errors.invalid_scopes()
    now_ms = int(time.time() * 1000)
    if now_ms - refresh.last_used_at >= tokens.TOUCH_INTERVAL_MS:
        await store.write(lambda c: oauth_store.touch_refresh(c, token_id, now_ms))
    return Owner(refresh.uid, refresh_id=refresh.id)
