"""Discovery documents: everything is served by the one public origin.

* ``/.well-known/fxa-client-configuration`` (firefox-signin.md §1.3): every base URL is the
  bare origin, because each client appends its own version segment — Firefox adds ``/v1``
  to the auth, OAuth and profile URLs and ``/1.0/sync/1.5`` to the tokenserver's;
  application-services builds ``auth_server_base_url + "/v1/oauth/token"`` and
  ``oauth_server_base_url + "/v1/destroy"`` (pairing.md §5.4), so no value may end in
  ``/v1``.  ``pairing_server_base_uri`` is ``ws(s)://host[:port]``: the pairing library
  resolves the absolute ``/v1/ws/`` against it, dropping any path (pairing.md §2.1), and
  leaving it out would keep Mozilla's channel server (checklist item 16).
* ``/.well-known/openid-configuration``: the six fields application-services requires
  (pairing.md §5.4) plus FxA's descriptive ones.
* ``/.well-known/jwks.json``: the same keys as ``/v1/jwks``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from quart import Blueprint, Response
from quart_trio import QuartTrio

from ..crypto import jwt_tokens
from ..db.engine import Database
from ..settings import Settings

# Short: the public URL can change (the admin renames the box); no client caches long.
CACHE = "public, max-age=300"


def client_configuration(settings: Settings) -> dict[str, str]:
    origin = settings.origin
    ws = "wss" if settings.public_scheme == "https" else "ws"
    return {
        "auth_server_base_url": origin,
        "oauth_server_base_url": origin,
        "pairing_server_base_uri": f"{ws}://{urlsplit(origin).netloc}",
        "profile_server_base_url": origin,
        "sync_tokenserver_base_url": origin,
    }


def openid_configuration(settings: Settings) -> dict[str, Any]:
    origin = settings.origin
    return {
        "authorization_endpoint": f"{origin}/authorization",
        "introspection_endpoint": f"{origin}/v1/introspect",
        "issuer": origin,
        "jwks_uri": f"{origin}/v1/jwks",
        "revocation_endpoint": f"{origin}/v1/destroy",
        "token_endpoint": f"{origin}/v1/token",
        "userinfo_endpoint": f"{origin}/v1/profile",
        "claims_supported": ["aud", "exp", "iat", "iss", "sub"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token", "fxa-credentials"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "scopes_supported": ["profile", "https://identity.mozilla.com/apps/oldsync"],
        "subject_types_supported": ["public"],
        "token_endpoint_auth_methods_supported": ["none"],
    }


def _json(body: Any) -> Response:
    resp = Response(json.dumps(body), status=200, content_type="application/json")
    resp.headers["Cache-Control"] = CACHE
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


def make_blueprint(settings: Settings) -> Blueprint:
    bp = Blueprint("discovery", __name__)
    fxa_config = client_configuration(settings)
    oidc_config = openid_configuration(settings)
    jwks = jwt_tokens.jwks(settings.oauth_signing_key_pem, settings.oauth_key_id)

    @bp.get("/.well-known/fxa-client-configuration")
    async def fxa_client_configuration() -> Response:
        return _json(fxa_config)

    @bp.get("/.well-known/openid-configuration")
    async def oidc() -> Response:
        return _json(oidc_config)

    @bp.get("/.well-known/jwks.json")
    async def jwks_json() -> Response:
        return _json(jwks)

    return bp


def register(app: QuartTrio, settings: Settings, db: Database) -> None:
    app.register_blueprint(make_blueprint(settings))
