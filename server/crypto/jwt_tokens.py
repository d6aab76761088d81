"""OAuth access tokens as RS256 JWTs (sans-IO): mint, verify, publish the key as a JWK.

Foxden's OAuth server mints these and its tokenserver (and later the profile server)
verifies them in-process with the public half of ``settings.oauth_signing_key_pem``.

Shape, after FxA's ``lib/oauth/jwt_access_token.js`` (RFC 9068 draft):

* header ``{"alg": "RS256", "typ": "at+jwt", "kid": settings.oauth_key_id}``
  (FxA writes ``at+JWT``; verifiers compare case-insensitively, as syncstorage-rs does);
* claims ``iss`` (public URL), ``sub`` (FxA uid, 32 hex), ``aud`` (list), ``client_id``,
  ``scope`` (one space-separated string), ``iat``, ``exp``, ``jti`` and, when known,
  ``fxa-generation`` (ms; must be >= the account's keysChangedAt, tokenserver check 1).

Audience: FxA puts its configured tokenserver URL in ``aud`` for tokens carrying the
oldsync scope.  Every Foxden service shares one origin, so the bare origin would not single
out the tokenserver; its audience is the tokenserver endpoint, ``<origin>/1.0/sync/1.5``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

OLDSYNC_SCOPE = "https://identity.mozilla.com/apps/oldsync"
ACCESS_TOKEN_TYP = "at+jwt"
ALGORITHM = "RS256"
_I64_MAX = 2**63 - 1


class InvalidAccessToken(Exception):
    """Not a JWT, forged, expired, of the wrong type or audience, or malformed claims."""


def tokenserver_audience(origin: str) -> str:
    """The ``aud`` value the tokenserver demands: its own endpoint URL."""
    return origin.rstrip("/") + "/1.0/sync/1.5"


def audience_for(origin: str, client_id: str, scopes: Iterable[str]) -> list[str]:
    """What the OAuth server should put in ``aud``: the client, plus the tokenserver when
    the grant carries oldsync (FxA's choice, as a list so both fit)."""
    aud = [client_id]
    if OLDSYNC_SCOPE in set(scopes):
        aud.append(tokenserver_audience(origin))
    return aud


def split_scope(scope: str) -> frozenset[str]:
    # DIVERGENCE: syncstorage-rs splits on ',' only, but FxA writes space-separated scopes
    # (RFC 6749), so a two-scope token would fail there.  Accept both separators.
    return frozenset(scope.replace(",", " ").split())


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the OAuth signing key must be an RSA key")
    return key


@dataclass(frozen=True, slots=True)
class Signer:
    """The private half: what the OAuth server mints access tokens with."""

    private_key: rsa.RSAPrivateKey
    key_id: str
    issuer: str

    @classmethod
    def from_pem(cls, pem: bytes, key_id: str, issuer: str) -> Signer:
        return cls(load_private_key(pem), key_id, issuer.rstrip("/"))

    def mint(
        self,
        *,
        sub: str,
        client_id: str,
        scope: str | Iterable[str],
        audience: Sequence[str] | str,
        ttl: int,
        generation: int | None = None,
        now: int | None = None,
        jti: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        issued = int(time.time()) if now is None else now
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": [audience] if isinstance(audience, str) else list(audience),
            "client_id": client_id,
            "scope": scope if isinstance(scope, str) else " ".join(scope),
            "iat": issued,
            "exp": issued + ttl,
            "jti": jti or secrets.token_hex(32),
        }
        if generation:  # FxA omits a zero/absent generation
            claims["fxa-generation"] = generation
        if extra:
            claims.update(extra)
        headers = {"typ": ACCESS_TOKEN_TYP, "kid": self.key_id}
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers=headers)


@dataclass(frozen=True, slots=True)
class AccessToken:
    """The verified claims a resource server acts on."""

    sub: str
    scopes: frozenset[str]
    generation: int | None  # fxa-generation; 0 or absent -> None (syncstorage-rs)
    client_id: str | None
    exp: int
    claims: dict[str, Any] = field(repr=False)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


@dataclass(frozen=True, slots=True)
class Verifier:
    """The public half, fixed to one audience (one per resource server)."""

    public_key: rsa.RSAPublicKey
    audience: str

    @classmethod
    def from_private_pem(cls, pem: bytes, audience: str) -> Verifier:
        return cls(load_private_key(pem).public_key(), audience)

    def verify(self, token: str) -> AccessToken:
        try:
            header = jwt.get_unverified_header(token)
            # The algorithm list is fixed here, never taken from the token: no "none",
            # no HS256 keyed with our public PEM.
            # DIVERGENCE: syncstorage-rs does not check aud (FxA clients rarely ask for the
            # right one); our OAuth server always sets it, so a token minted for another
            # resource is refused.  Also no 60 s exp leeway (jsonwebtoken's default): issuer
            # and verifier share one clock.
            claims = jwt.decode(
                token, self.public_key, algorithms=[ALGORITHM], audience=self.audience,
                options={"require": ["exp", "sub", "scope"]},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidAccessToken(type(exc).__name__) from exc
        if not _typ_ok(header.get("typ")):
            raise InvalidAccessToken("typ is not at+jwt")
        return _claims(claims)


def _typ_ok(typ: object) -> bool:
    # RFC 7515 §4.1.9: case-insensitive, with an implicit "application/" prefix.
    if not isinstance(typ, str):
        return False
    full = typ if "/" in typ else "application/" + typ
    return full.lower() == "application/at+jwt"


def _claims(claims: dict[str, Any]) -> AccessToken:
    sub, scope = claims.get("sub"), claims.get("scope")
    if not isinstance(sub, str) or not sub:
        raise InvalidAccessToken("sub is not a string")
    if not isinstance(scope, str):
        raise InvalidAccessToken("scope is not a string")
    generation = claims.get("fxa-generation")
    if generation is not None and (
        not isinstance(generation, int) or isinstance(generation, bool)
        or not -_I64_MAX - 1 <= generation <= _I64_MAX
    ):
        raise InvalidAccessToken("fxa-generation is not an i64")
    client_id = claims.get("client_id")
    return AccessToken(
        sub=sub,
        scopes=split_scope(scope),
        generation=generation or None,
        client_id=client_id if isinstance(client_id, str) else None,
        exp=int(claims["exp"]),
        claims=claims,
    )


def public_jwk(public_key: rsa.RSAPublicKey, key_id: str) -> dict[str, Any]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    jwk.pop("key_ops", None)  # RFC 7517 §4.3: not together with "use" (FxA sends "use")
    jwk.update({"kid": key_id, "alg": ALGORITHM, "use": "sig"})
    return jwk


def jwks(pem: bytes, key_id: str) -> dict[str, list[dict[str, Any]]]:
    """The ``/v1/jwks`` document for the signing key in ``pem``."""
    return {"keys": [public_jwk(load_private_key(pem).public_key(), key_id)]}
