"""Store functions for FxA tokens (run inside Database.read/.write).

Lifetimes: sessionTokens never expire (Firefox mints every OAuth token with its session,
firefox-signin.md §4); keyFetchTokens are single use and short-lived; passwordChangeTokens
last 15 minutes.  A keyFetch/passwordChange token carries the id of the session it came from
in ``session_id``, so destroying that session destroys them too.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto import fxatokens, onepw
from ..crypto.fxatokens import TokenCredentials, TokenKind
from ..db.engine import Connection

KEY_FETCH_TTL_MS = 30 * 60 * 1000
PASSWORD_CHANGE_TTL_MS = 15 * 60 * 1000
# last_access is only rewritten when it is this stale: one write a minute, not per request.
TOUCH_INTERVAL_MS = 60 * 1000


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: str
    kind: TokenKind
    uid: str
    hawk_key: bytes
    data: bytes | None
    session_id: str | None
    verified: bool
    created_at: int
    last_access: int
    expires_at: int | None
    user_agent: str
    email: str


_COLUMNS = (
    "t.id, t.kind, t.uid, t.hawk_key, t.data, t.session_id, t.verified, t.created_at, "
    "t.last_access, t.expires_at, t.user_agent, a.email"
)


def _row(r: tuple) -> TokenRow:  # type: ignore[type-arg]
    return TokenRow(r[0], r[1], r[2], bytes(r[3]), None if r[4] is None else bytes(r[4]),
                    r[5], bool(r[6]), r[7], r[8], r[9], r[10], r[11])


def create(
    conn: Connection, kind: TokenKind, uid: str, now_ms: int, *, data: bytes | None = None,
    session_id: str | None = None, expires_at: int | None = None, user_agent: str = "",
    verified: bool = True,
) -> str:
    """Make and store a new token; returns the hex token for the client (never stored)."""
    token_hex, creds = fxatokens.new_token(kind)
    insert(conn, creds, uid, now_ms, data=data, session_id=session_id, expires_at=expires_at,
           user_agent=user_agent, verified=verified)
    return token_hex


def insert(
    conn: Connection, creds: TokenCredentials, uid: str, now_ms: int, *,
    data: bytes | None = None, session_id: str | None = None, expires_at: int | None = None,
    user_agent: str = "", verified: bool = True,
) -> None:
    conn.execute(
        "INSERT INTO fxa_tokens (id, kind, uid, hawk_key, data, session_id, verified, "
        "created_at, last_access, expires_at, user_agent) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (creds.id, creds.kind, uid, creds.hawk_key, data, session_id, int(verified), now_ms,
         now_ms, expires_at, user_agent[:255]),
    )


def create_key_fetch(conn: Connection, uid: str, ka: bytes, wrap_kb: bytes, now_ms: int, *,
                     session_id: str | None) -> str:
    """A keyFetchToken whose stored data is the finished bundle: kA/wrapKB are never at
    rest in the token table, only their encryption under the token's keyRequestKey."""
    token_hex, creds = fxatokens.new_token("keyFetchToken")
    insert(conn, creds, uid, now_ms, data=onepw.bundle_keys(creds.extra, ka, wrap_kb),
           session_id=session_id, expires_at=now_ms + KEY_FETCH_TTL_MS)
    return token_hex


def consume(conn: Connection, token_id: str, kind: TokenKind, now_ms: int) -> TokenRow | None:
    """Single use: the row if this call deleted it, None if it was already gone/expired."""
    row = get(conn, token_id, now_ms)
    if row is None or row.kind != kind:
        return None
    cur = conn.execute("DELETE FROM fxa_tokens WHERE id = ?", (token_id,))
    return row if cur.rowcount == 1 else None


def sessions(conn: Connection, uid: str, now_ms: int) -> list[TokenRow]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM fxa_tokens t JOIN accounts a ON a.uid = t.uid "  # noqa: S608
        "WHERE t.uid = ? AND t.kind = 'sessionToken' "
        "AND (t.expires_at IS NULL OR t.expires_at > ?) ORDER BY t.created_at",
        (uid, now_ms),
    ).fetchall()
    return [_row(r) for r in rows]


def delete_all_except(conn: Connection, uid: str, keep_id: str | None) -> None:
    """Every token of the account but one (devices of the deleted sessions cascade)."""
    conn.execute("DELETE FROM fxa_tokens WHERE uid = ? AND id IS NOT ?", (uid, keep_id))


def get(conn: Connection, token_id: str, now_ms: int) -> TokenRow | None:
    r = conn.execute(
        f"SELECT {_COLUMNS} FROM fxa_tokens t JOIN accounts a ON a.uid = t.uid "  # noqa: S608
        "WHERE t.id = ? AND (t.expires_at IS NULL OR t.expires_at > ?) "
        "AND a.disabled_at IS NULL",
        (token_id, now_ms),
    ).fetchone()
    return _row(r) if r else None


def touch(conn: Connection, token_id: str, now_ms: int) -> None:
    conn.execute("UPDATE fxa_tokens SET last_access = ? WHERE id = ? AND last_access < ?",
                 (now_ms, token_id, now_ms))


def delete(conn: Connection, token_id: str) -> None:
    conn.execute("DELETE FROM fxa_tokens WHERE id = ? OR session_id = ?", (token_id, token_id))


def purge_expired(conn: Connection, now_ms: int, limit: int = 5000) -> int:
    cur = conn.execute(
        "DELETE FROM fxa_tokens WHERE id IN (SELECT id FROM fxa_tokens "
        "WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)", (now_ms, limit))
    return cur.rowcount
