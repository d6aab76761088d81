"""Store functions for FxA tokens (run inside Database.read/.write)."""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto import fxatokens
from ..crypto.fxatokens import TokenKind
from ..db.engine import Connection


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
    conn.execute(
        "INSERT INTO fxa_tokens (id, kind, uid, hawk_key, data, session_id, verified, "
        "created_at, last_access, expires_at, user_agent) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (creds.id, kind, uid, creds.hawk_key, data, session_id, int(verified), now_ms, now_ms,
         expires_at, user_agent[:255]),
    )
    return token_hex


def get(conn: Connection, token_id: str, now_ms: int) -> TokenRow | None:
    r = conn.execute(
        f"SELECT {_COLUMNS} FROM fxa_tokens t JOIN accounts a ON a.uid = t.uid "  # noqa: S608
        "WHERE t.id = ? AND (t.expires_at IS NULL OR t.expires_at > ?) "
        "AND a.disabled_at IS NULL",
        (token_id, now_ms),
    ).fetchone()
    return _row(r) if r else None


def touch(conn: Connection, token_id: str, now_ms: int) -> None:
    conn.execute("UPDATE fxa_tokens SET last_access = ? WHERE id = ?", (now_ms, token_id))


def delete(conn: Connection, token_id: str) -> None:
    conn.execute("DELETE FROM fxa_tokens WHERE id = ? OR session_id = ?", (token_id, token_id))


def purge_expired(conn: Connection, now_ms: int, limit: int = 5000) -> int:
    cur = conn.execute(
        "DELETE FROM fxa_tokens WHERE id IN (SELECT id FROM fxa_tokens "
        "WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)", (now_ms, limit))
    return cur.rowcount
