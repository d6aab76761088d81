"""Pieces the account, session and password routes share: JSON replies, new sessions, the
password check with its throttle, and the v2 credential group."""

from __future__ import annotations

import json
from typing import Any

from quart import Response

from ..crypto import fxatokens, onepw
from ..db.engine import Connection
from ..errors import FxaError
from . import errors, tokens
from .context import AccountsContext, client_address
from .passwords import Match, V2Credentials
from .store import AccountRow
from .validate import Fields, invalid


def reply(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status,
                    content_type="application/json")


def new_session(conn: Connection, uid: str, now_ms: int, user_agent: str) -> tuple[str, str]:
    """(token hex for the client, token id)."""
    token_hex, creds = fxatokens.new_token("sessionToken")
    tokens.insert(conn, creds, uid, now_ms, user_agent=user_agent)
    return token_hex, creds.id


def verified_fields() -> dict[str, Any]:
    # DIVERGENCE: a LAN has no SMTP, so there is no email confirmation; a session is
    # verified by the password that created it (firefox-signin.md §6 item 12).
    return {"verified": True, "emailVerified": True, "sessionVerified": True}


def check_address(c: AccountsContext) -> None:
    """The hard per-address limit, *before* any password work (see throttle.py)."""
    retry = c.throttle.address_blocked(client_address())
    if retry is not None:
        raise errors.too_many_requests(retry)


async def verify_password(c: AccountsContext, account: AccountRow, auth_pw: bytes,
                          request_email: str) -> Match:
    """Check authPW; a wrong one counts against the address and the account, and past the
    account's soft limit is answered 429 instead of 103/120.  The right one always passes."""
    match = await c.hasher.check(account, auth_pw)
    if match is not None:
        c.throttle.success(account.uid)
        return match
    limited = c.throttle.account_limited(account.uid)
    c.throttle.failure(client_address(), account.uid)
    if limited is not None:
        raise errors.too_many_requests(limited)
    raise errors.incorrect_password(account.email, request_email)


def unknown_account(c: AccountsContext, email: str) -> FxaError:
    # An unknown address is a failed attempt too: it bounds enumeration and spraying.
    c.throttle.failure(client_address())
    return errors.unknown_account(email)


V2_GROUP = ("authPWVersion2", "wrapKbVersion2", "clientSalt")


def v2_credentials(f: Fields, group: tuple[str, ...] = V2_GROUP) -> V2Credentials | None:
    """authPWVersion2 + wrapKbVersion2 + clientSalt come together or not at all (Mozilla's
    joi ``.and(…)``: otherwise 107)."""
    present = [f.has(name) for name in group]
    if not any(present):
        return None
    if not all(present):
        missing = group[present.index(False)]
        raise invalid(missing, message=f"{', '.join(group)} go together")
    auth_pw = f.hex("authPWVersion2", 32, required=True)
    wrapped = f.hex("wrapKbVersion2", 32, required=True)
    try:
        salt = onepw.parse_client_salt(f.data["clientSalt"])
    except onepw.OnepwError:
        raise invalid("clientSalt") from None
    assert auth_pw is not None and wrapped is not None
    return V2Credentials(auth_pw, wrapped, salt)
