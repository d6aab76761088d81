"""OAuth request validation and token shapes (sans-IO): what the routes feed to the store.

* ``parse_authorization`` — the body of ``POST /v1/oauth/authorization`` (FxA
  lib/routes/oauth/authorization.js): client, redirect_uri, scope (or the scope a native
  client's ``service=`` implies, ADR 0049), state, access_type, PKCE, keys_jwe.
* ``parse_token`` — the body of ``POST /v1/oauth/token`` / ``/v1/token`` (FxA
  lib/routes/oauth/token.js): ``authorization_code`` (+ PKCE), ``refresh_token``,
  ``fxa-credentials``.
* Codes, refresh tokens and access tokens are stored as ``sha256(value)`` only.

``keys_jwe`` is opaque: only its compact-JWE shape and size are checked; it is stored with
the code and handed back byte for byte by the exchange.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from . import clients, errors
from .clients import Client
from .errors import Family

CODE_TTL_MS = 5 * 60 * 1000
# Remember exchanged codes this long, so a replay can revoke what they minted.
USED_CODE_MEMORY_MS = 15 * 60 * 1000
# Access tokens: the requested ttl, capped (FxA oauthServer.expiration.accessToken).
MAX_ACCESS_TTL = 24 * 3600
DEFAULT_ACCESS_TTL = MAX_ACCESS_TTL
# DIVERGENCE: FxA caps keys_jwe at 1024 characters; one oldsync key is ~550, and a few more
# scoped keys should still fit.
MAX_KEYS_JWE = 4096
MAX_STATE = 512
MAX_REDIRECT_URI = 256

GRANT_CODE = "authorization_code"
GRANT_REFRESH = "refresh_token"
GRANT_CREDENTIALS = "fxa-credentials"
GRANTS = frozenset({GRANT_CODE, GRANT_REFRESH, GRANT_CREDENTIALS})

_JWE = re.compile(
    r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")          # FxA: exactly 43 (SHA-256)
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")     # RFC 7636 §4.1 (phones send 58)
_HEX32 = re.compile(r"^[0-9a-fA-F]{64}$")
_SERVICE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# ADR 0049: a native client may send service= without scope=; the server fills it in, and
# appends oldsync when the page derived keys (keys_jwe present).
SERVICE_DEFAULT_SCOPES: dict[str, tuple[str, ...]] = {
    "sync": ("profile", clients.OLDSYNC),
    "relay": ("profile", clients.RELAY),
    "vpn": ("profile", clients.VPN),
    "smartwindow": ("profile", clients.SMARTWINDOW),
}


def token_hash(value: str) -> str:
    """The stored id of a code or token: hex SHA-256 of its text."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """A fresh code or refresh token: 32 random bytes as lower-case hex."""
    return secrets.token_hex(32)


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_ok(challenge: str, verifier: str) -> bool:
    return hmac.compare_digest(pkce_challenge(verifier).encode(), challenge.encode())


class Body:
    """Typed reads from a JSON object body, raising the family's FxA envelope."""

    def __init__(self, data: dict[str, Any], family: Family) -> None:
        self.data = data
        self.family = family

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def string(self, name: str, *, required: bool = False, max_len: int = 1024,
               pattern: re.Pattern[str] | None = None) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise errors.missing_parameter(self.family, name)
            return None
        if (not isinstance(value, str) or len(value) > max_len
                or (pattern is not None and not pattern.match(value))):
            raise errors.invalid_parameter(self.family, name)
        return value

    def required(self, name: str, **kw: Any) -> str:
        value = self.string(name, required=True, **kw)
        assert value is not None
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.string(name, max_len=64)
        if value is None:
            return default
        if value not in allowed:
            raise errors.invalid_parameter(self.family, name)
        return value

    def ttl(self) -> int:
        value = self.data.get("ttl")
        if value is None:
            return DEFAULT_ACCESS_TTL
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise errors.invalid_parameter(self.family, "ttl")
        return max(1, min(int(value), MAX_ACCESS_TTL))

    def scope(self, name: str = "scope", *, required: bool = False) -> tuple[str, ...] | None:
        raw = self.string(name, required=required, max_len=clients.MAX_SCOPE_CHARS)
        if raw is None:
            return None
        try:
            parsed = clients.parse_scope(raw)
        except clients.ScopeError:
            raise errors.invalid_parameter(self.family, name) from None
        if required and not parsed:
            raise errors.missing_parameter(self.family, name)
        return parsed

    def client(self) -> Client:
        client_id = self.required("client_id", max_len=64)
        if not clients.CLIENT_ID.match(client_id):
            raise errors.invalid_parameter(self.family, "client_id")
        client = clients.get(client_id)
        if client is None:
            raise errors.unknown_client(client_id)
        if self.has("client_secret"):  # all known clients are public
            raise errors.incorrect_secret(client.id)
        return client


def check_allowed(client: Client, scope: tuple[str, ...]) -> None:
    bad = clients.not_covered(client.allowed_scopes, scope)
    if bad:
        raise errors.invalid_scopes(bad)


# --- /v1/oauth/authorization -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client: Client
    scope: tuple[str, ...]
    state: str
    offline: bool
    code_challenge: str | None
    keys_jwe: str | None
    service: str
    redirect_uri: str

    def redirect(self, code: str) -> str:
        """The client's redirect URI with ``code`` and ``state`` (FxA
        generateAuthorizationCode builds it with URLSearchParams)."""
        sep = "&" if "?" in self.redirect_uri else "?"
        return f"{self.redirect_uri}{sep}{urlencode({'code': code, 'state': self.state})}"


def parse_authorization(data: dict[str, Any], family: Family) -> AuthorizationRequest:
    body = Body(data, family)
    if body.has("assertion"):  # BrowserID is gone; sessions only
        raise (errors.invalid_assertion() if family is Family.LEGACY
               else errors.invalid_parameter(family, "assertion"))
    if body.has("resource") or body.has("ttl"):
        raise errors.invalid_parameter(family, "resource" if body.has("resource") else "ttl")
    response_type = body.string("response_type", max_len=64) or "code"
    if response_type != "code":
        # DIVERGENCE: no implicit grant (response_type=token); FxA keeps it for old clients.
        raise (errors.invalid_response_type() if family is Family.LEGACY
               else errors.invalid_parameter(family, "response_type"))
    client = body.client()
    redirect_uri = body.string("redirect_uri", max_len=MAX_REDIRECT_URI)
    if redirect_uri is not None and redirect_uri != client.redirect_uri:
        raise errors.incorrect_redirect(redirect_uri)
    state = body.required("state", max_len=MAX_STATE)
    offline = body.choice("access_type", ("online", "offline"), "online") == "offline"
    method = body.string("code_challenge_method", max_len=16)
    challenge = body.string("code_challenge", max_len=43, pattern=_CHALLENGE)
    if method is not None and method != "S256":  # no "plain"
        raise errors.invalid_parameter(family, "code_challenge_method")
    if (method is None) != (challenge is None):
        raise errors.missing_parameter(
            family, "code_challenge" if challenge is None else "code_challenge_method")
    if client.public and challenge is None:
        raise errors.missing_pkce()
    if not client.public and challenge is not None:
        raise errors.not_public_client(client.id)
    keys_jwe = body.string("keys_jwe", max_len=MAX_KEYS_JWE, pattern=_JWE)
    acr = body.string("acr_values", max_len=256)
    if acr is not None and "AAL2" in acr.split():
        raise errors.mismatch_acr(1)  # Foxden has no second factor
    service = body.string("service", max_len=64, pattern=_SERVICE) or ""
    scope = body.scope()
    if scope is None:
        scope = _scope_from_service(client, service, keys_jwe is not None, family)
    check_allowed(client, scope)
    return AuthorizationRequest(client, scope, state, offline, challenge, keys_jwe, service,
                                client.redirect_uri)


def _scope_from_service(client: Client, service: str, keys: bool,
                        family: Family) -> tuple[str, ...]:
    """ADR 0049: the scope a native client's service= stands for."""
    defaults = SERVICE_DEFAULT_SCOPES.get(service)
    if defaults is None:
        raise errors.missing_parameter(family, "scope")
    scope = list(defaults)
    if keys and clients.OLDSYNC not in scope:
        scope.append(clients.OLDSYNC)
    return tuple(scope)


# --- /v1/oauth/token ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TokenRequest:
    grant_type: str
    client: Client
    ttl: int
    code: str | None = None
    code_verifier: str | None = None
    refresh_token: str | None = None
    scope: tuple[str, ...] | None = None
    offline: bool = False


def parse_token(data: dict[str, Any], family: Family) -> TokenRequest:
    body = Body(data, family)
    default = GRANT_CODE if (family is Family.LEGACY or body.has("code")) else GRANT_CREDENTIALS
    grant_type = body.string("grant_type", max_len=128) or default
    if grant_type not in GRANTS:
        # DIVERGENCE: no RFC 8693 token-exchange grant (FxA has it for mobile Relay);
        # Foxden serves no service that needs it.
        raise errors.invalid_grant_type()
    client = body.client()
    ttl = body.ttl()
    if grant_type == GRANT_CODE:
        code = body.required("code", max_len=64, pattern=_HEX32).lower()
        verifier = body.string("code_verifier", max_len=128, pattern=_VERIFIER)
        redirect_uri = body.string("redirect_uri", max_len=MAX_REDIRECT_URI)
        if redirect_uri is not None and redirect_uri != client.redirect_uri:
            raise errors.incorrect_redirect(redirect_uri)
        return TokenRequest(grant_type, client, ttl, code=code, code_verifier=verifier)
    if grant_type == GRANT_REFRESH:
        token = body.required("refresh_token", max_len=64, pattern=_HEX32).lower()
        return TokenRequest(grant_type, client, ttl, refresh_token=token, scope=body.scope())
    scope = body.scope(required=True)
    offline = body.choice("access_type", ("online", "offline"), "online") == "offline"
    return TokenRequest(grant_type, client, ttl, scope=scope, offline=offline)


def refresh_scope(client: Client, token_scope: tuple[str, ...],
                  requested: tuple[str, ...] | None) -> tuple[str, ...]:
    """The scope of an access token minted from a refresh token (FxA
    validateRefreshTokenGrant): narrower on request; a trusted client may also add scopes
    it is allowed; one-off scopes never come back."""
    scope = token_scope
    if requested:
        extra = clients.not_covered(token_scope, requested)
        if extra and not (client.trusted and not clients.not_covered(
                tuple(client.allowed_scopes) + token_scope, requested)):
            raise errors.invalid_scopes(extra)
        scope = requested
    return tuple(s for s in scope if s not in clients.NOT_REFRESHABLE)


def refreshable(scope: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(s for s in scope if s not in clients.NOT_REFRESHABLE)


def token_response(*, access_token: str, scope: tuple[str, ...], expires_in: int,
                   auth_at: int, refresh_token: str | None = None,
                   keys_jwe: str | None = None,
                   session_token: str | None = None) -> dict[str, Any]:
    """Always ``scope`` (a string: Firefox calls ``scope.includes``), ``expires_in``,
    ``token_type`` and ``auth_at`` (firefox-signin.md §3.2)."""
    out: dict[str, Any] = {"access_token": access_token}
    if refresh_token is not None:
        out["refresh_token"] = refresh_token
    out.update({"scope": " ".join(scope), "token_type": "bearer", "expires_in": expires_in,
                "auth_at": auth_at})
    if keys_jwe is not None:
        out["keys_jwe"] = keys_jwe
    if session_token is not None:
        out["session_token"] = session_token
    return out
