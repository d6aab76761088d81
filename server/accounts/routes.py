"""The FxA auth API under /v1: accounts (this module), sessions, passwords and devices
(session_routes, password_routes, device_routes).  Models: fxa-auth-server
lib/routes/account.ts, session.js, password.js, devices-and-sessions.js, oauth/key_data.js.

Every route answers FxA's envelope on error; bodies over MAX_BODY_BYTES are 413 errno 113.
Nothing here logs a password, authPW, token, key or payload.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from .. import fxa_errors
from . import clients, common, deletion, errors, store, tokens
from .auth import authenticate
from .common import reply, verified_fields
from .context import ctx, locale, user_agent
from .validate import HEX, MAX_BODY_BYTES, Fields, invalid, json_body, query_bool

bp = Blueprint("accounts", __name__, url_prefix="/v1")


@bp.before_request
async def _limit_body() -> None:
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise errors.request_too_large()
    if request.method in ("POST", "PUT", "PATCH"):
        try:
            data = await request.get_data(cache=True, as_text=False)
        except RequestEntityTooLarge:
            raise errors.request_too_large() from None
        if len(data) > MAX_BODY_BYTES:
            raise errors.request_too_large()


@bp.errorhandler(RequestEntityTooLarge)
async def _too_large(_exc: RequestEntityTooLarge) -> Response:
    return errors.request_too_large().response()


# --- sign-up and sign-in ------------------------------------------------------------------

@bp.post("/account/create")
async def account_create() -> Response:
    c = ctx()
    if not c.settings.signup_open:
        raise errors.signup_closed()
    f = Fields(await json_body())
    email = f.email("email")
    auth_pw = f.hex("authPW", 32, required=True)
    v2 = common.v2_credentials(f, ("authPWVersion2", "wrapKb", "wrapKbVersion2", "clientSalt"))
    wrap_kb = f.hex("wrapKb", 32) if v2 else None
    keys = query_bool("keys")
    assert email is not None and auth_pw is not None
    if await c.db.read(lambda conn: store.find_by_email(conn, email)) is not None:
        raise errors.account_exists(email)
    new = await c.hasher.new_record(auth_pw, wrap_kb, v2)
    now, ua, loc = c.now_ms(), user_agent(), locale()

    def write(conn: Any) -> dict[str, Any]:
        account = store.create(conn, email, new.record, now, locale=loc)
        session, session_id = common.new_session(conn, account.uid, now, ua)
        out: dict[str, Any] = {"uid": account.uid, "sessionToken": session,
                               "authAt": now // 1000, **verified_fields()}
        if keys:
            out["keyFetchToken"] = tokens.create_key_fetch(
                conn, account.uid, account.ka, new.wrap_kb, now, session_id=session_id)
            if new.wrap_kb_v2 is not None:
                out["keyFetchTokenVersion2"] = tokens.create_key_fetch(
                    conn, account.uid, account.ka, new.wrap_kb_v2, now, session_id=session_id)
        return out

    try:
        return reply(await c.db.write(write))
    except store.AccountExists:
        raise errors.account_exists(email) from None


@bp.post("/account/login")
async def account_login() -> Response:
    c = ctx()
    f = Fields(await json_body())
    email = f.email("email")
    auth_pw = f.hex("authPW", 32, required=True)
    f.string("reason", max_len=16)
    f.string("service", max_len=16)
    f.string("unblockCode", max_len=32)
    f.string("verificationMethod", max_len=16)
    f.email("originalLoginEmail", required=False)
    keys = query_bool("keys")
    assert email is not None and auth_pw is not None
    common.check_address(c)
    account = await c.db.read(lambda conn: store.find_by_email(conn, email))
    if account is None or account.disabled_at is not None:
        raise common.unknown_account(c, email)
    match = await common.verify_password(c, account, auth_pw, email)
    now, ua = c.now_ms(), user_agent()

    def write(conn: Any) -> dict[str, Any]:
        session, session_id = common.new_session(conn, account.uid, now, ua)
        out: dict[str, Any] = {"uid": account.uid, "sessionToken": session,
                               "authAt": now // 1000, "metricsEnabled": False,
                               **verified_fields()}
        if keys:
            name = "keyFetchTokenVersion2" if match.version == 2 else "keyFetchToken"
            out[name] = tokens.create_key_fetch(conn, account.uid, account.ka, match.wrap_kb,
                                                now, session_id=session_id)
        return out

    return reply(await c.db.write(write))


# --- account status and keys --------------------------------------------------------------

@bp.get("/account/status")
async def account_status_get() -> Response:
    c = ctx()
    if request.headers.get("Authorization"):
        row = await authenticate("sessionToken")
        account = await c.db.read(lambda conn: store.get(conn, row.uid))
        if account is None:
            raise errors.unknown_account()
        return reply({"exists": True, "locale": account.locale, "hasPassword": True})
    uid = request.args.get("uid")
    if uid is None:
        raise fxa_errors.missing_parameter("uid")
    if len(uid) != 32 or not HEX.match(uid):
        raise invalid("uid", "query")
    account = await c.db.read(lambda conn: store.get(conn, uid.lower()))
    return reply({"exists": account is not None})


@bp.post("/account/status")
async def account_status_post() -> Response:
    c = ctx()
    email = Fields(await json_body()).email("email")
    assert email is not None
    account = await c.db.read(lambda conn: store.find_by_email(conn, email))
    return reply({"exists": account is not None})


@bp.post("/account/credentials/status")
async def credentials_status() -> Response:
    """PyFxA's key-stretch probe (``get_key_stretch_version``)."""
    c = ctx()
    email = Fields(await json_body()).email("email")
    assert email is not None
    account = await c.db.read(lambda conn: store.find_by_email(conn, email))
    if account is None:
        raise errors.unknown_account(email)
    out: dict[str, Any] = {"currentVersion": "v2" if account.client_salt else "v1",
                           "upgradeNeeded": account.wrap_wrap_kb_v2 is None}
    if account.client_salt:
        out["clientSalt"] = account.client_salt
    return reply(out)


@bp.get("/account/keys")
async def account_keys() -> Response:
    c = ctx()
    row = await authenticate("keyFetchToken")
    now = c.now_ms()
    # Single use, atomically: of two racing requests only the one that deletes it wins.
    used = await c.db.write(lambda conn: tokens.consume(conn, row.id, "keyFetchToken", now))
    if used is None or used.data is None:
        raise fxa_errors.invalid_token()
    return reply({"bundle": used.data.hex()})


@bp.post("/account/scoped-key-data")
async def scoped_key_data() -> Response:
    c = ctx()
    row = await authenticate("sessionToken")
    f = Fields(await json_body())
    client_id = f.string("client_id", required=True, max_len=16, pattern=HEX)
    scope = f.string("scope", required=True, max_len=256)
    if "assertion" in f.data:
        raise invalid("assertion")
    assert client_id is not None and scope is not None
    if len(client_id) != 16:
        raise invalid("client_id")
    client = clients.lookup(client_id.lower())
    if client is None:
        raise errors.unknown_client_id(client_id)
    try:
        wanted = clients.parse_scopes(scope)
    except ValueError:
        raise invalid("scope") from None
    if clients.not_allowed(client, wanted):
        raise errors.invalid_scopes()
    account = await c.db.read(lambda conn: store.get(conn, row.uid))
    if account is None:
        raise fxa_errors.invalid_token()
    out = {s: {"identifier": s, "keyRotationSecret": "0" * 64,
               "keyRotationTimestamp": account.keys_changed_at}
           for s in clients.key_bearing(wanted)}
    return reply(out)


@bp.get("/account/profile")
async def account_profile() -> Response:
    c = ctx()
    row = await authenticate("sessionToken")
    account = await c.db.read(lambda conn: store.get(conn, row.uid))
    if account is None:
        raise fxa_errors.invalid_token()
    out: dict[str, Any] = {"email": account.email}
    if account.locale:
        out["locale"] = account.locale
    out.update({"authenticationMethods": ["pwd", "email"], "authenticatorAssuranceLevel": 1,
                "keysChangedAt": account.keys_changed_at,
                "profileChangedAt": account.profile_changed_at, "metricsEnabled": False})
    return reply(out)


@bp.post("/account/destroy")
async def account_destroy() -> Response:
    c = ctx()
    row = await authenticate("sessionToken")
    f = Fields(await json_body())
    email = f.email("email")
    auth_pw = f.hex("authPW", 32, required=True)
    assert email is not None and auth_pw is not None
    common.check_address(c)
    account = await c.db.read(lambda conn: store.find_by_email(conn, email))
    if account is None or account.uid != row.uid:
        raise common.unknown_account(c, email)
    await common.verify_password(c, account, auth_pw, email)
    now = c.now_ms()
    await c.db.write(lambda conn: deletion.delete_account(conn, account.uid, now_ms=now))
    return reply({})

