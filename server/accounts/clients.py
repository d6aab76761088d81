"""Which OAuth clients may ask ``/v1/account/scoped-key-data`` for which scopes.

The registry is server/oauth/clients.py (Firefox desktop, Fenix, iOS), shared with the
OAuth routes so both agree on client ids and allowed scopes; only key-bearing scopes
(oldsync) appear in the answer (FxA lib/routes/oauth/key_data.js).
"""

from __future__ import annotations

from ..oauth import clients as oauth_clients

Client = oauth_clients.Client


def lookup(client_id: str) -> Client | None:
    return oauth_clients.get(client_id)


def parse_scopes(scope: str) -> tuple[str, ...]:
    """Raises ValueError for a malformed scope string."""
    return oauth_clients.parse_scope(scope)


def not_allowed(client: Client, wanted: tuple[str, ...]) -> list[str]:
    return oauth_clients.not_covered(client.allowed_scopes, wanted)


def key_bearing(wanted: tuple[str, ...]) -> list[str]:
    return oauth_clients.key_bearing(wanted)
