"""RS256 access tokens: mint/verify round trips, and every way a token must fail."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from functools import cache

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from server.crypto import jwt_tokens
from server.crypto.jwt_tokens import OLDSYNC_SCOPE, InvalidAccessToken, Signer, Verifier

ORIGIN = "https://foxden.example:8443"
AUD = jwt_tokens.tokenserver_audience(ORIGIN)
UID = "6d940dd41e636cc156074109b8092f96"
CLIENT = "5882386c6d801776"


@cache
def _pem(n: int = 0) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def signer(n: int = 0) -> Signer:
    return Signer.from_pem(_pem(n), f"kid-{n}", ORIGIN)


def verifier() -> Verifier:
    return Verifier.from_private_pem(_pem(0), AUD)


def mint(**kw: object) -> str:
    args: dict[str, object] = {"sub": UID, "client_id": CLIENT, "scope": OLDSYNC_SCOPE,
                               "audience": [AUD], "ttl": 300, "generation": 1700000000000}
    args.update(kw)
    return signer().mint(**args)  # type: ignore[arg-type]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def forge(header: dict[str, object], claims: dict[str, object], sign) -> str:  # type: ignore[no-untyped-def]
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(sign(head.encode()))


def good_claims() -> dict[str, object]:
    now = int(time.time())
    return {"sub": UID, "aud": [AUD], "scope": OLDSYNC_SCOPE, "iat": now, "exp": now + 300,
            "client_id": CLIENT, "jti": "ab" * 32, "iss": ORIGIN}


def test_round_trip_header_and_claims() -> None:
    token = mint(jti="j1", now=1_900_000_000 - 100, ttl=200)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": "kid-0"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {
        "iss": ORIGIN, "sub": UID, "aud": [AUD], "client_id": CLIENT, "scope": OLDSYNC_SCOPE,
        "iat": 1_900_000_000 - 100, "exp": 1_900_000_000 + 100, "jti": "j1",
        "fxa-generation": 1700000000000,
    }


def test_verify_returns_claims() -> None:
    access = verifier().verify(mint(scope=["profile", OLDSYNC_SCOPE]))
    assert access.sub == UID and access.client_id == CLIENT
    assert access.generation == 1700000000000
    assert access.scopes == {"profile", OLDSYNC_SCOPE} and access.has_scope(OLDSYNC_SCOPE)


def test_token_minted_by_raw_pyjwt_verifies() -> None:
    # Independence from our own minting code: plain pyjwt, FxA's upper-case typ, string aud.
    claims = good_claims() | {"aud": AUD, "fxa-generation": 5}
    key = serialization.load_pem_private_key(_pem(0), password=None)
    token = jwt.encode(claims, key, algorithm="RS256", headers={"typ": "at+JWT"})
    access = verifier().verify(token)
    assert access.sub == UID and access.generation == 5


@pytest.mark.parametrize("typ", ["at+jwt", "at+JWT", "AT+JWT", "application/at+jwt",
                                 "Application/At+Jwt"])
def test_typ_accepted(typ: str) -> None:
    key = serialization.load_pem_private_key(_pem(0), password=None)
    token = jwt.encode(good_claims(), key, algorithm="RS256", headers={"typ": typ})
    verifier().verify(token)


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+jwt2", "text/at+jwt", 7])
def test_typ_rejected(typ: object) -> None:
    key = serialization.load_pem_private_key(_pem(0), password=None)
    headers = {} if typ is None else {"typ": typ}
    token = jwt.encode(good_claims(), key, algorithm="RS256", headers=headers)
    if typ is None:  # pyjwt adds typ "JWT" by default; drop it explicitly
        token = jwt.encode(good_claims(), key, algorithm="RS256", headers={"typ": None})
        assert "typ" not in jwt.get_unverified_header(token)
    with pytest.raises(InvalidAccessToken):
        verifier().verify(token)


def test_expired() -> None:
    with pytest.raises(InvalidAccessToken):
        verifier().verify(mint(now=int(time.time()) - 1000, ttl=10))


def test_other_key_is_rejected() -> None:
    with pytest.raises(InvalidAccessToken):
        verifier().verify(signer(1).mint(sub=UID, client_id=CLIENT, scope=OLDSYNC_SCOPE,
                                         audience=[AUD], ttl=300))


@pytest.mark.parametrize("aud", [None, [], ["other"], "other", [CLIENT],
                                 [ORIGIN], [AUD + "/"]])
def test_wrong_audience(aud: object) -> None:
    claims = good_claims()
    if aud is None:
        del claims["aud"]
    else:
        claims["aud"] = aud
    key = serialization.load_pem_private_key(_pem(0), password=None)
    token = jwt.encode(claims, key, algorithm="RS256", headers={"typ": "at+jwt"})
    with pytest.raises(InvalidAccessToken):
        verifier().verify(token)


@pytest.mark.parametrize("missing", ["exp", "sub", "scope"])
def test_required_claims(missing: str) -> None:
    claims = good_claims()
    del claims[missing]
    key = serialization.load_pem_private_key(_pem(0), password=None)
    token = jwt.encode(claims, key, algorithm="RS256", headers={"typ": "at+jwt"})
    with pytest.raises(InvalidAccessToken):
        verifier().verify(token)


@pytest.mark.parametrize("field,value", [
    ("sub", 42), ("sub", ""), ("scope", [OLDSYNC_SCOPE]), ("fxa-generation", "123"),
    ("fxa-generation", True), ("fxa-generation", 1.5), ("fxa-generation", 2**63),
    ("exp", "soon"), ("iat", int(time.time()) + 3600),
])
def test_malformed_claims(field: str, value: object) -> None:
    claims = good_claims() | {field: value}
    key = serialization.load_pem_private_key(_pem(0), password=None)
    token = jwt.encode(claims, key, algorithm="RS256", headers={"typ": "at+jwt"})
    with pytest.raises(InvalidAccessToken):
        verifier().verify(token)


def test_zero_generation_is_absent() -> None:
    assert verifier().verify(mint(generation=0)).generation is None
    claims = good_claims() | {"fxa-generation": 0}
    key = serialization.load_pem_private_key(_pem(0), password=None)
    token = jwt.encode(claims, key, algorithm="RS256", headers={"typ": "at+jwt"})
    assert verifier().verify(token).generation is None


def test_alg_none_is_rejected() -> None:
    token = forge({"alg": "none", "typ": "at+jwt"}, good_claims(), lambda _: b"")
    with pytest.raises(InvalidAccessToken):
        verifier().verify(token)
    token = token.rsplit(".", 1)[0] + "."
    with pytest.raises(InvalidAccessToken):
        verifier().verify(token)


def test_hs256_keyed_with_public_key_is_rejected() -> None:
    # The classic confusion: HMAC with the verifier's public key (PEM or DER) as secret.
    public = serialization.load_pem_private_key(_pem(0), password=None).public_key()
    for secret in (
        public.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo),
        public.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo),
    ):
        token = forge({"alg": "HS256", "typ": "at+jwt"}, good_claims(),
                      lambda m, s=secret: hmac.new(s, m, hashlib.sha256).digest())
        with pytest.raises(InvalidAccessToken):
            verifier().verify(token)


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256"])
def test_other_rsa_algorithms_are_rejected(alg: str) -> None:
    key = serialization.load_pem_private_key(_pem(0), password=None)
    token = jwt.encode(good_claims(), key, algorithm=alg, headers={"typ": "at+jwt"})
    with pytest.raises(InvalidAccessToken):
        verifier().verify(token)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "....", "x" * 5000,
                                   "eyJhbGciOiJSUzI1NiJ9.e30.", "Zm9v.YmFy.YmF6",
                                   "ünïcode.tøken.sig"])
def test_garbage(token: str) -> None:
    with pytest.raises(InvalidAccessToken):
        verifier().verify(token)


def test_tampered_payload() -> None:
    head, _, sig = mint().split(".")
    claims = good_claims() | {"sub": "f" * 32}
    with pytest.raises(InvalidAccessToken):
        verifier().verify(f"{head}.{b64(json.dumps(claims).encode())}.{sig}")


def test_split_scope() -> None:
    assert jwt_tokens.split_scope("a b,c  d ,") == {"a", "b", "c", "d"}
    assert jwt_tokens.split_scope("") == frozenset()


def test_audience_for() -> None:
    assert jwt_tokens.audience_for(ORIGIN + "/", CLIENT, ["profile"]) == [CLIENT]
    assert jwt_tokens.audience_for(ORIGIN, CLIENT, [OLDSYNC_SCOPE, "profile"]) == [
        CLIENT, "https://foxden.example:8443/1.0/sync/1.5"]


def test_jwks_verifies_our_tokens() -> None:
    doc = jwt_tokens.jwks(_pem(0), "kid-0")
    (jwk,) = doc["keys"]
    assert jwk["kty"] == "RSA" and jwk["kid"] == "kid-0"
    assert jwk["alg"] == "RS256" and jwk["use"] == "sig"
    assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}  # no private parts
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(mint(), key, algorithms=["RS256"], audience=AUD)
    assert claims["sub"] == UID


def test_non_rsa_key_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(ValueError):
        Signer.from_pem(pem, "k", ORIGIN)
