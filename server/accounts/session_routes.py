"""/v1/session/* and /v1/recovery_email/status (FxA lib/routes/session.js, emails.js)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from .. import fxa_errors
from . import store, tokens
from .auth import authenticate
from .common import reply
from .context import ctx
from .validate import Fields, json_body


def add_routes(bp: Blueprint) -> None:
    @bp.get("/session/status")
    async def session_status() -> Response:
        row = await authenticate("sessionToken")
        # DIVERGENCE: every session is verified (by the password that made it): no email.
        return reply({"state": "verified", "uid": row.uid})

    @bp.post("/session/destroy")
    async def session_destroy() -> Response:
        """Sign-out: the session, its keyFetch/passwordChange tokens and its device go.
        ``customSessionToken`` (another session id of the same account) is Mozilla's way
        for the settings page to sign out a different session."""
        c = ctx()
        row = await authenticate("sessionToken")
        f = Fields(await json_body(allow_empty=True))
        target = f.hex_id("customSessionToken", 32) or row.id
        now = c.now_ms()

        def write(conn: Any) -> bool:
            victim = tokens.get(conn, target, now)
            if victim is None or victim.uid != row.uid or victim.kind != "sessionToken":
                return False
            tokens.delete(conn, victim.id)
            return True

        if not await c.db.write(write):
            raise fxa_errors.invalid_token()
        return reply({})

    @bp.get("/recovery_email/status")
    async def recovery_email_status() -> Response:
        c = ctx()
        row = await authenticate("sessionToken")
        account = await c.db.read(lambda conn: store.get(conn, row.uid))
        if account is None:
            raise fxa_errors.invalid_token()
        # DIVERGENCE: no SMTP on a LAN, so the address counts as verified.
        return reply({"email": account.email, "verified": True, "sessionVerified": True,
                      "emailVerified": True})
