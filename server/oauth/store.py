"""Store functions for OAuth codes and tokens (run inside ``Database.read``/``.write``).

Every code and token is looked up by ``grants.token_hash(value)``; the value itself is
never stored.  Rows of a disabled account are invisible (as for ``fxa_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..db.engine import Connection


def _scope(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# --- accounts (read-only view for grants and the profile) --------------------------------

@dataclass(frozen=True, slots=True)
class AccountInfo:
    uid: str
    email: str
    locale: str
    display_name: str | None
    verifier_set_at: int   # ms
    keys_changed_at: int   # ms
    profile_changed_at: int

    @property
    def generation(self) -> int:
        """``fxa-generation``: FxA uses verifierSetAt; never below keysChangedAt, or the
        tokenserver refuses a key change (its check 1)."""
        return max(self.verifier_set_at, self.keys_changed_at)


def account(conn: Connection, uid: str) -> AccountInfo | None:
    r = conn.execute(
        "SELECT uid, email, locale, display_name, verifier_set_at, keys_changed_at, "
        "profile_changed_at FROM accounts WHERE uid = ? AND disabled_at IS NULL",
        (uid,)).fetchone()
    return AccountInfo(*r) if r else None


# --- codes -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CodeRow:
    code_hash: str
    client_id: str
    uid: str
    session_id: str
    scope: tuple[str, ...]
    service: str
    offline: bool
    code_challenge: str | None
    keys_jwe: str | None
    auth_at: int
    created_at: int
    expires_at: int


def insert_code(conn: Connection, row: CodeRow) -> None:
    conn.execute(
        "INSERT INTO oauth_codes (code_hash, client_id, uid, session_id, scope, service, "
        "offline, code_challenge, keys_jwe, auth_at, created_at, expires_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (row.code_hash, row.client_id, row.uid, row.session_id, " ".join(row.scope),
         row.service, int(row.offline), row.code_challenge, row.keys_jwe, row.auth_at,
         row.created_at, row.expires_at))


def get_code(conn: Connection, code_hash: str) -> CodeRow | None:
    r = conn.execute(
        "SELECT c.code_hash, c.client_id, c.uid, c.session_id, c.scope, c.service, "
        "c.offline, c.code_challenge, c.keys_jwe, c.auth_at, c.created_at, c.expires_at "
        "FROM oauth_codes c JOIN accounts a ON a.uid = c.uid "
        "WHERE c.code_hash = ? AND a.disabled_at IS NULL", (code_hash,)).fetchone()
    if r is None:
        return None
    return CodeRow(r[0], r[1], r[2], r[3], _scope(r[4]), r[5], bool(r[6]), r[7], r[8],
                   r[9], r[10], r[11])


def delete_code(conn: Connection, code_hash: str) -> None:
    conn.execute("DELETE FROM oauth_codes WHERE code_hash = ?", (code_hash,))


def remember_used_code(conn: Connection, code_hash: str, uid: str, refresh_id: str | None,
                       access_id: str, expires_at: int) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO oauth_used_codes (code_hash, uid, refresh_id, access_id, "
        "expires_at) VALUES (?,?,?,?,?)", (code_hash, uid, refresh_id, access_id, expires_at))


def revoke_replayed_code(conn: Connection, code_hash: str, now_ms: int) -> bool:
    """A second use of an exchanged code: revoke what the first use minted (RFC 6749
    §4.1.2).  Returns whether the code was one we had exchanged.

    DIVERGENCE: FxA only answers 105 "Unknown code"; the RFC's SHOULD costs us one row."""
    r = conn.execute(
        "SELECT refresh_id, access_id FROM oauth_used_codes WHERE code_hash = ? "
        "AND expires_at > ?", (code_hash, now_ms)).fetchone()
    if r is None:
        return False
    if r[0]:
        conn.execute("DELETE FROM oauth_refresh_tokens WHERE id = ?", (r[0],))
    conn.execute("DELETE FROM oauth_access_tokens WHERE id = ?", (r[1],))
    conn.execute("DELETE FROM oauth_used_codes WHERE code_hash = ?", (code_hash,))
    return True


# --- refresh tokens ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RefreshRow:
    id: str
    client_id: str
    uid: str
    scope: tuple[str, ...]
    service: str
    auth_at: int
    created_at: int
    last_used_at: int


def insert_refresh(conn: Connection, row: RefreshRow) -> None:
    conn.execute(
        "INSERT INTO oauth_refresh_tokens (id, client_id, uid, scope, service, auth_at, "
        "created_at, last_used_at) VALUES (?,?,?,?,?,?,?,?)",
        (row.id, row.client_id, row.uid, " ".join(row.scope), row.service, row.auth_at,
         row.created_at, row.last_used_at))


def get_refresh(conn: Connection, token_id: str) -> RefreshRow | None:
    """The refresh token with this id (``grants.token_hash(token)``), for the token
    endpoint and for other modules that accept refresh-token Bearer auth."""
    r = conn.execute(
        "SELECT r.id, r.client_id, r.uid, r.scope, r.service, r.auth_at, r.created_at, "
        "r.last_used_at FROM oauth_refresh_tokens r JOIN accounts a ON a.uid = r.uid "
        "WHERE r.id = ? AND a.disabled_at IS NULL", (token_id,)).fetchone()
    if r is None:
        return None
    return RefreshRow(r[0], r[1], r[2], _scope(r[3]), r[4], r[5], r[6], r[7])


def touch_refresh(conn: Connection, token_id: str, now_ms: int) -> None:
    conn.execute("UPDATE oauth_refresh_tokens SET last_used_at = ? WHERE id = ?",
                 (now_ms, token_id))


def delete_refresh(conn: Connection, token_id: str, *, uid: str | None = None,
                   client_id: str | None = None) -> bool:
    """Its access tokens and authorization backers go with it (FK cascade)."""
    sql = "DELETE FROM oauth_refresh_tokens WHERE id = ?"
    args: list[str] = [token_id]
    if uid is not None:
        sql += " AND uid = ?"
        args.append(uid)
    if client_id is not None:
        sql += " AND client_id = ?"
        args.append(client_id)
    return conn.execute(sql, args).rowcount > 0


# --- access tokens -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AccessRow:
    id: str
    client_id: str
    uid: str
    scope: tuple[str, ...]
    refresh_id: str | None
    session_id: str | None
    auth_at: int
    created_at: int
    expires_at: int


def insert_access(conn: Connection, row: AccessRow) -> None:
    conn.execute(
        "INSERT INTO oauth_access_tokens (id, client_id, uid, scope, refresh_id, session_id, "
        "auth_at, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (row.id, row.client_id, row.uid, " ".join(row.scope), row.refresh_id, row.session_id,
         row.auth_at, row.created_at, row.expires_at))


def get_access(conn: Connection, token_id: str, now_ms: int) -> AccessRow | None:
    """A live access token: not expired, not revoked, account enabled."""
    r = conn.execute(
        "SELECT t.id, t.client_id, t.uid, t.scope, t.refresh_id, t.session_id, t.auth_at, "
        "t.created_at, t.expires_at FROM oauth_access_tokens t "
        "JOIN accounts a ON a.uid = t.uid "
        "WHERE t.id = ? AND t.expires_at > ? AND a.disabled_at IS NULL",
        (token_id, now_ms)).fetchone()
    if r is None:
        return None
    return AccessRow(r[0], r[1], r[2], _scope(r[3]), r[4], r[5], r[6], r[7], r[8])


def delete_access(conn: Connection, token_id: str, *, client_id: str | None = None) -> bool:
    if client_id is None:
        return conn.execute("DELETE FROM oauth_access_tokens WHERE id = ?",
                            (token_id,)).rowcount > 0
    return conn.execute("DELETE FROM oauth_access_tokens WHERE id = ? AND client_id = ?",
                        (token_id, client_id)).rowcount > 0


# --- whole-client and whole-account operations -------------------------------------------

def revoke_client(conn: Connection, uid: str, client_id: str) -> None:
    """Disconnect an OAuth client (attached_client/destroy with clientId only)."""
    conn.execute("DELETE FROM oauth_refresh_tokens WHERE uid = ? AND client_id = ?",
                 (uid, client_id))
    conn.execute("DELETE FROM oauth_access_tokens WHERE uid = ? AND client_id = ?",
                 (uid, client_id))
    conn.execute("DELETE FROM oauth_codes WHERE uid = ? AND client_id = ?", (uid, client_id))


def revoke_all_for_account(conn: Connection, uid: str) -> None:
    """Every code and OAuth token of an account (password reset without kB, admin lock).
    Authorizations that only these backed disappear with them."""
    for table in ("oauth_codes", "oauth_refresh_tokens", "oauth_access_tokens",
                  "oauth_used_codes"):
        conn.execute(f"DELETE FROM {table} WHERE uid = ?", (uid,))  # noqa: S608


def purge_expired(conn: Connection, now_ms: int, limit: int = 5000) -> int:
    """Expired codes, access tokens and replay memories (a background job may call it)."""
    total = 0
    for table, col in (("oauth_codes", "code_hash"), ("oauth_access_tokens", "id"),
                       ("oauth_used_codes", "code_hash")):
        total += conn.execute(
            f"DELETE FROM {table} WHERE {col} IN (SELECT {col} FROM {table} "  # noqa: S608
            "WHERE expires_at <= ? LIMIT ?)", (now_ms, limit)).rowcount
    return total


@dataclass(frozen=True, slots=True)
class OAuthClientEntry:
    """One OAuth line of attached_clients (FxA ``AttachedOAuthClient``)."""

    client_id: str
    refresh_token_id: str | None
    scope: tuple[str, ...]
    created_time: int
    last_access_time: int


def attached_oauth_clients(conn: Connection, uid: str, now_ms: int,
                           session_backed: frozenset[str]) -> list[OAuthClientEntry]:
    """Every refresh token, plus one line per client holding only live access tokens that
    came neither from a refresh token nor from a session (those are shown as the session,
    as FxA hides canGrant clients' access tokens)."""
    out = [OAuthClientEntry(r[0], r[1], _scope(r[2]), r[3], r[4]) for r in conn.execute(
        "SELECT client_id, id, scope, created_at, last_used_at FROM oauth_refresh_tokens "
        "WHERE uid = ? ORDER BY created_at", (uid,)).fetchall()]
    with_refresh = {e.client_id for e in out}
    rows = conn.execute(
        "SELECT client_id, group_concat(scope, ' '), min(created_at), max(created_at) "
        "FROM oauth_access_tokens WHERE uid = ? AND expires_at > ? AND refresh_id IS NULL "
        "AND session_id IS NULL GROUP BY client_id ORDER BY client_id",
        (uid, now_ms)).fetchall()
    for client_id, scopes, created, last in rows:
        if client_id in with_refresh or client_id in session_backed:
            continue
        out.append(OAuthClientEntry(client_id, None, tuple(dict.fromkeys(scopes.split())),
                                    created, last))
    return out
