"""Per-service account authorizations, after Mozilla's ADR 0051 ``accountAuthorizations``.

One row per ``(uid, scope, service, client_id)`` with ``first_authorized_at`` (set once)
and ``last_authorized_at`` (bumped by every interactive grant), for the configured browser
services only:

* written at the authorization grant (``POST /v1/oauth/authorization``), offline grants
  only, one row per granted scope that a configured service owns and whose client the
  service admits; never by token minting (``fxa-credentials``, refresh) — those are silent;
* Firefox desktop's single client id serves several services, so its grants honour the
  page's ``service=``: when it names a configured service, that name is recorded (the
  scope→service map decides otherwise and for the other clients);
* deleted when the last token backing it goes (see 0005_oauth.sql: the pending code, the
  refresh token it became, or desktop's session) and with the account (FK cascade).

Foxden configures sync, relay, vpn and smartwindow as Mozilla does, but only sync has a
backend: no known client may be granted the other three scopes (clients.py), so in
practice only sync rows appear.  Admin API entry points: :func:`list_authorizations`,
:func:`revoke_authorization`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..db.engine import Connection
from . import clients
from .clients import Client


@dataclass(frozen=True, slots=True)
class BrowserService:
    name: str
    scope: str
    client_ids: frozenset[str]


_ALL_BROWSERS = frozenset({clients.FIREFOX_DESKTOP.id, clients.FENIX.id, clients.FIREFOX_IOS.id})
BROWSER_SERVICES: dict[str, BrowserService] = {
    s.name: s for s in (
        BrowserService("sync", clients.OLDSYNC, _ALL_BROWSERS),
        BrowserService("relay", clients.RELAY, _ALL_BROWSERS),
        BrowserService("vpn", clients.VPN, frozenset({clients.FIREFOX_DESKTOP.id})),
        BrowserService("smartwindow", clients.SMARTWINDOW,
                       frozenset({clients.FIREFOX_DESKTOP.id})),
    )
}
SERVICE_BY_SCOPE: dict[str, BrowserService] = {s.scope: s for s in BROWSER_SERVICES.values()}


@dataclass(frozen=True, slots=True)
class Authorization:
    uid: str
    scope: str
    service: str
    client_id: str
    client_name: str
    first_authorized_at: int  # ms
    last_authorized_at: int   # ms

    def as_json(self) -> dict[str, object]:
        return {"uid": self.uid, "scope": self.scope, "service": self.service,
                "clientId": self.client_id, "clientName": self.client_name,
                "firstAuthorizedAt": self.first_authorized_at,
                "lastAuthorizedAt": self.last_authorized_at}


def resolve(client: Client, scope: Iterable[str], service: str) -> list[tuple[str, str]]:
    """The ``(scope, service)`` rows a grant of ``scope`` to ``client`` writes."""
    named = BROWSER_SERVICES.get(service) if client.service_ambiguous else None
    rows: list[tuple[str, str]] = []
    for s in scope:
        owner = SERVICE_BY_SCOPE.get(s)
        if named is not None and named.scope == s:
            owner = named
        if owner is not None and client.id in owner.client_ids and (s, owner.name) not in rows:
            rows.append((s, owner.name))
    return rows


def record_grant(conn: Connection, *, uid: str, client: Client, rows: list[tuple[str, str]],
                 code_hash: str, session_id: str, now_ms: int) -> None:
    """Upsert the rows and back them with the new code (and desktop's session)."""
    for scope, service in rows:
        conn.execute(
            "INSERT INTO oauth_authorizations (uid, scope, service, client_id, "
            "first_authorized_at, last_authorized_at) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT (uid, scope, service, client_id) "
            "DO UPDATE SET last_authorized_at = excluded.last_authorized_at",
            (uid, scope, service, client.id, now_ms, now_ms))
        conn.execute(
            "INSERT INTO oauth_authorization_backers (uid, scope, service, client_id, "
            "code_hash) VALUES (?,?,?,?,?)", (uid, scope, service, client.id, code_hash))
        if client.session_backed:
            conn.execute(
                "INSERT OR IGNORE INTO oauth_authorization_backers (uid, scope, service, "
                "client_id, session_id) VALUES (?,?,?,?,?)",
                (uid, scope, service, client.id, session_id))


def transfer_to_refresh_token(conn: Connection, code_hash: str, refresh_id: str) -> None:
    """At the exchange: what the code backed, its refresh token now backs.  Must run
    before the code row is deleted (the trigger would drop the authorization)."""
    conn.execute(
        "INSERT OR IGNORE INTO oauth_authorization_backers "
        "(uid, scope, service, client_id, refresh_id) "
        "SELECT uid, scope, service, client_id, ? FROM oauth_authorization_backers "
        "WHERE code_hash = ?", (refresh_id, code_hash))


def list_authorizations(conn: Connection, uid: str) -> list[Authorization]:
    rows = conn.execute(
        "SELECT uid, scope, service, client_id, first_authorized_at, last_authorized_at "
        "FROM oauth_authorizations WHERE uid = ? ORDER BY service, client_id, scope",
        (uid,)).fetchall()
    out = []
    for r in rows:
        client = clients.get(r[3])
        out.append(Authorization(r[0], r[1], r[2], r[3], client.name if client else r[3],
                                 r[4], r[5]))
    return out


def revoke_authorization(conn: Connection, uid: str, *, scope: str, service: str,
                         client_id: str) -> bool:
    """Take a service away: the row, plus the client's refresh and access tokens that
    carry ``scope``.  Sessions stay (this is not a sign-out), so Firefox desktop, which
    mints its tokens from its session, gets a fresh one at its next 401: for desktop this
    is bookkeeping plus an immediate token revocation, not a lock-out.  Returns whether a
    row existed."""
    cur = conn.execute(
        "DELETE FROM oauth_authorizations WHERE uid = ? AND scope = ? AND service = ? "
        "AND client_id = ?", (uid, scope, service, client_id))
    for table in ("oauth_refresh_tokens", "oauth_access_tokens"):
        ids = [r[0] for r in conn.execute(
            f"SELECT id, scope FROM {table} WHERE uid = ? AND client_id = ?",  # noqa: S608
            (uid, client_id)).fetchall() if scope in r[1].split()]
        conn.executemany(f"DELETE FROM {table} WHERE id = ?",  # noqa: S608
                         [(i,) for i in ids])
    return cur.rowcount > 0


def has_authorization(conn: Connection, uid: str, scope: str, client_id: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM oauth_authorizations WHERE uid = ? AND scope = ? AND client_id = ?",
        (uid, scope, client_id)).fetchone() is not None


def move_session_backers(conn: Connection, old_session_id: str, new_session_id: str) -> None:
    """For a password change that swaps desktop's session (``fxaccounts:change_password``):
    the new session keeps backing what the old one backed.  Call before deleting the old
    session, in the same transaction."""
    conn.execute(
        "INSERT OR IGNORE INTO oauth_authorization_backers "
        "(uid, scope, service, client_id, session_id) "
        "SELECT uid, scope, service, client_id, ? FROM oauth_authorization_backers "
        "WHERE session_id = ?", (new_session_id, old_session_id))
