"""/v1/password/change/{start,finish} (FxA lib/routes/password.js), v1 and v2 stretching.

start: ``{email, oldAuthPW}`` → ``keyFetchToken`` (if oldAuthPW matched the v1 verifier) or
``keyFetchToken2`` (v2) plus a ``passwordChangeToken``.  The client fetches kB with it.

finish (passwordChangeToken): ``{authPW, wrapKb[, authPWVersion2, wrapKbVersion2,
clientSalt][, sessionToken]}`` where wrapKb = kB XOR the new unwrapBKey, so kB, the oldsync
key and all Sync data survive.  v2 fields make (or keep) the account v2; their absence
makes it v1 again (a stale v2 verifier of the old password must not stay valid).
This is also how PyFxA upgrades a v1 account to v2 right after a v2 login.

Every other token of the account is destroyed (so every other device signs in again,
firefox-signin.md §6.11) and OAuth grants are revoked; the caller gets a new session, plus
key-fetch tokens with ``?keys=true``.  ``sessionToken`` in the body is the *id* of the
caller's current session: its device (and the desktop's session-backed OAuth
authorizations) move to the new session.

# DIVERGENCE: Mozilla deletes the originating device too (Firefox then re-registers with a
# new id); we re-bind it to the new session, so Send Tab targets and queued commands stay.
# DIVERGENCE: without ``sessionToken`` Mozilla answers ``{}`` (legacy clients); we answer
# the new session anyway.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request

from .. import fxa_errors
from . import common, deletion, devices, store, tokens
from .auth import authenticate
from .common import reply, verified_fields
from .context import ctx, user_agent
from .validate import Fields, json_body, query_bool


def add_routes(bp: Blueprint) -> None:
    @bp.post("/password/change/start")
    async def change_start() -> Response:
        c = ctx()
        session = None
        if request.headers.get("Authorization"):
            # PyFxA 0.9 sends its session; Mozilla's route has no auth.  When present it
            # must be valid and of the same account.
            session = await authenticate("sessionToken")
        f = Fields(await json_body())
        email = f.email("email")
        old_auth_pw = f.hex("oldAuthPW", 32, required=True)
        assert email is not None and old_auth_pw is not None
        common.check_address(c)
        account = await c.db.read(lambda conn: store.find_by_email(conn, email))
        if account is None or (session is not None and session.uid != account.uid):
            raise common.unknown_account(c, email)
        match = await common.verify_password(c, account, old_auth_pw, email)
        now = c.now_ms()
        parent = session.id if session is not None else None

        def write(conn: Any) -> dict[str, Any]:
            name = "keyFetchToken2" if match.version == 2 else "keyFetchToken"
            out: dict[str, Any] = {name: tokens.create_key_fetch(
                conn, account.uid, account.ka, match.wrap_kb, now, session_id=parent)}
            out["passwordChangeToken"] = tokens.create(
                conn, "passwordChangeToken", account.uid, now, session_id=parent,
                expires_at=now + tokens.PASSWORD_CHANGE_TTL_MS)
            out["verified"] = True
            return out

        return reply(await c.db.write(write))

    @bp.post("/password/change/finish")
    async def change_finish() -> Response:
        c = ctx()
        token = await authenticate("passwordChangeToken")
        f = Fields(await json_body())
        auth_pw = f.hex("authPW", 32, required=True)
        wrap_kb = f.hex("wrapKb", 32, required=True)
        v2 = common.v2_credentials(f)
        old_session_id = f.hex_id("sessionToken", 32)
        keys = query_bool("keys")
        assert auth_pw is not None and wrap_kb is not None
        new = await c.hasher.new_record(auth_pw, wrap_kb, v2)
        now, ua = c.now_ms(), user_agent()

        def write(conn: Any) -> dict[str, Any]:
            if tokens.consume(conn, token.id, "passwordChangeToken", now) is None:
                raise fxa_errors.invalid_token()
            account = store.get(conn, token.uid)
            if account is None:
                raise fxa_errors.invalid_token()
            store.set_password(conn, account.uid, new.record, now)
            session, session_id = common.new_session(conn, account.uid, now, ua)
            old = tokens.get(conn, old_session_id, now) if old_session_id else None
            if old is not None and old.uid == account.uid and old.kind == "sessionToken":
                device = devices.for_session(conn, old.id)
                if device is not None:
                    devices.rebind(conn, device.id,
                                   devices.Owner(account.uid, session_id=session_id))
                deletion.carry_oauth_backing(conn, old.id, session_id)
            deletion.revoke_oauth(conn, account.uid)
            tokens.delete_all_except(conn, account.uid, session_id)
            out: dict[str, Any] = {"uid": account.uid, "sessionToken": session,
                                   "authAt": now // 1000, **verified_fields()}
            if keys:
                out["keyFetchToken"] = tokens.create_key_fetch(
                    conn, account.uid, account.ka, new.wrap_kb, now, session_id=session_id)
                if new.wrap_kb_v2 is not None:
                    out["keyFetchToken2"] = tokens.create_key_fetch(
                        conn, account.uid, account.ka, new.wrap_kb_v2, now,
                        session_id=session_id)
            return out

        return reply(await c.db.write(write))
