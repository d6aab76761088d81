"""Mozilla's onepw protocol and the Sync key hand-off (sans-IO, ``cryptography`` only).

Client side (what Firefox's pages, PyFxA and ``foxden user add`` compute):

* quickStretch v1: ``PBKDF2-SHA256(pw, "identity.mozilla.com/picl/v1/quickStretch:" + email,
  1000, 32)``; v2: 650 000 iterations over the whole ``clientSalt`` string
  (``"identity.mozilla.com/picl/v1/quickStretchV2:" + 32 lower-case hex``).
* ``authPW = HKDF(stretched, "…/authPW")`` goes to the server; ``unwrapBKey =
  HKDF(stretched, "…/unwrapBkey")`` (lower-case k) never leaves the client.
* ``kB = wrapKB XOR unwrapBKey``.

Server side: ``scrypt(authPW, authSalt, N=2**16, r=8, p=1)`` then HKDF infos ``verifyHash``
(stored, compared) and ``wrapwrapKey`` (``wrapWrapKb = wrapKB XOR wrapwrapKey`` is stored),
so the server can hand out wrapKB to whoever proves authPW, and never learns kB.

Key bundle (``/account/keys``): ``HKDF(keyRequestKey, "…/account/keys", 96)`` →
respHMACkey[0:32] ‖ respXORkey[32:96]; bundle = ``(kA‖wrapKB) XOR respXORkey`` ‖ HMAC.

The oldsync scoped key and the ``keys_jwe`` (ECDH-ES + A256GCM, compact, empty encrypted-key
part) follow firefox-signin.md §3.3 and pairing.md §5.2-5.3.

Vectors: tests/vectors/onepw.json (Mozilla's published ones plus our own).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

NAMESPACE = "identity.mozilla.com/picl/v1/"
V1_SALT_PREFIX = NAMESPACE + "quickStretch:"
V2_SALT_PREFIX = NAMESPACE + "quickStretchV2:"
V1_ITERATIONS = 1000
V2_ITERATIONS = 650_000
SCRYPT_N, SCRYPT_R, SCRYPT_P = 65536, 8, 1
OLDSYNC_SCOPE = "https://identity.mozilla.com/apps/oldsync"

_CLIENT_SALT = re.compile(r"^" + re.escape(V2_SALT_PREFIX) + r"[0-9a-f]{32}$")
_B64U = re.compile(r"^[A-Za-z0-9_-]*$")


class OnepwError(ValueError):
    """Malformed input or a failed integrity check (bad bundle MAC, bad JWE)."""


# --- primitives ----------------------------------------------------------------------------

def hkdf(ikm: bytes, name: str, length: int = 32, salt: bytes = b"") -> bytes:
    """HKDF-SHA256 with the onepw info namespace; an empty salt is RFC 5869's zero salt."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None,
                info=(NAMESPACE + name).encode()).derive(ikm)


def xor(a: bytes, b: bytes) -> bytes:
    if len(a) != len(b):
        raise OnepwError("xor of unequal lengths")
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def b64u_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Strict base64url without padding (Firefox decodes with ``padding: "reject"``)."""
    if not isinstance(text, str) or not _B64U.match(text) or len(text) % 4 == 1:
        raise OnepwError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- client side ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What a client derives from the password; only ``auth_pw`` is ever sent."""

    stretched: bytes
    auth_pw: bytes
    unwrap_b_key: bytes


def _credentials(stretched: bytes) -> ClientCredentials:
    return ClientCredentials(stretched, hkdf(stretched, "authPW"), hkdf(stretched, "unwrapBkey"))


def _pbkdf2(password: str, salt: str, iterations: int) -> bytes:
    return PBKDF2HMAC(hashes.SHA256(), 32, salt.encode("utf-8"), iterations).derive(
        password.encode("utf-8"))


def quick_stretch_v1(email: str, password: str) -> bytes:
    return _pbkdf2(password, V1_SALT_PREFIX + email, V1_ITERATIONS)


def quick_stretch_v2(client_salt: str, password: str) -> bytes:
    return _pbkdf2(password, parse_client_salt(client_salt), V2_ITERATIONS)


def client_credentials_v1(email: str, password: str) -> ClientCredentials:
    return _credentials(quick_stretch_v1(email, password))


def client_credentials_v2(client_salt: str, password: str) -> ClientCredentials:
    return _credentials(quick_stretch_v2(client_salt, password))


def new_client_salt() -> str:
    return V2_SALT_PREFIX + secrets.token_hex(16)


def parse_client_salt(value: object) -> str:
    """The full ``clientSalt`` string, as PyFxA and fxa-auth-client send it."""
    if not isinstance(value, str) or not _CLIENT_SALT.match(value):
        raise OnepwError("clientSalt must be " + V2_SALT_PREFIX + "<32 lower-case hex>")
    return value


def unwrap_kb(wrapped_kb: bytes, unwrap_b_key: bytes) -> bytes:
    """kB = wrapKB XOR unwrapBKey."""
    return xor(wrapped_kb, unwrap_b_key)


def wrap_kb(kb: bytes, unwrap_b_key: bytes) -> bytes:
    """The wrapKB a client sends for a (new) password so that kB stays the same."""
    return xor(kb, unwrap_b_key)


# --- server side ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StretchedAuthPW:
    """``scrypt(authPW, authSalt)``: the only thing verifyHash and wrapwrapKey come from.

    # DIVERGENCE: Mozilla's Node server feeds the *hex text* of the scrypt output to HKDF
    # (a Buffer.from(string) quirk in its hkdf helper).  We follow the published onepw
    # vectors (raw bytes).  Both values stay on the server, so no client can tell.
    """

    value: bytes

    @property
    def verify_hash(self) -> bytes:
        return hkdf(self.value, "verifyHash")

    @property
    def wrapwrap_key(self) -> bytes:
        return hkdf(self.value, "wrapwrapKey")

    def matches(self, verify_hash: bytes) -> bool:
        return hmac.compare_digest(self.verify_hash, verify_hash)

    def wrap(self, data: bytes) -> bytes:
        """wrapKB ↔ wrapWrapKb (XOR is its own inverse)."""
        return xor(self.wrapwrap_key, data)


def stretch_auth_pw(auth_pw: bytes, auth_salt: bytes) -> StretchedAuthPW:
    """Deliberately slow (≈0.3 s, 64 MiB): run it off the event loop."""
    if len(auth_pw) != 32 or len(auth_salt) != 32:
        raise OnepwError("authPW and authSalt are 32 bytes")
    return StretchedAuthPW(
        Scrypt(salt=auth_salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(auth_pw))


# --- key bundle (/account/keys) ------------------------------------------------------------

def _bundle_keys(key_request_key: bytes) -> tuple[bytes, bytes]:
    out = hkdf(key_request_key, "account/keys", 96)
    return out[:32], out[32:]


def bundle_keys(key_request_key: bytes, ka: bytes, wrapped_kb: bytes) -> bytes:
    if len(ka) != 32 or len(wrapped_kb) != 32:
        raise OnepwError("kA and wrapKB are 32 bytes")
    hmac_key, xor_key = _bundle_keys(key_request_key)
    ciphertext = xor(ka + wrapped_kb, xor_key)
    return ciphertext + hmac.new(hmac_key, ciphertext, hashlib.sha256).digest()


def unbundle_keys(key_request_key: bytes, bundle: bytes) -> tuple[bytes, bytes]:
    """(kA, wrapKB), after checking the MAC."""
    if len(bundle) != 96:
        raise OnepwError("a key bundle is 96 bytes")
    hmac_key, xor_key = _bundle_keys(key_request_key)
    ciphertext, mac = bundle[:64], bundle[64:]
    if not hmac.compare_digest(hmac.new(hmac_key, ciphertext, hashlib.sha256).digest(), mac):
        raise OnepwError("key bundle MAC mismatch")
    plain = xor(ciphertext, xor_key)
    return plain[:32], plain[32:]


# --- the oldsync scoped key ----------------------------------------------------------------

def oldsync_key(kb: bytes) -> bytes:
    """64 bytes: AES-256 key ‖ HMAC-SHA256 key of Sync's default key bundle."""
    return hkdf(kb, "oldsync", 64)


def client_state(kb: bytes) -> bytes:
    """First 16 bytes of SHA-256(kB): hex = X-Client-State, base64url = the kid suffix."""
    return hashlib.sha256(kb).digest()[:16]


def oldsync_kid(kb: bytes, key_rotation_timestamp_ms: int) -> str:
    return f"{key_rotation_timestamp_ms}-{b64u_encode(client_state(kb))}"


def oldsync_jwk(kb: bytes, key_rotation_timestamp_ms: int) -> dict[str, str]:
    return {"kty": "oct", "scope": OLDSYNC_SCOPE, "k": b64u_encode(oldsync_key(kb)),
            "kid": oldsync_kid(kb, key_rotation_timestamp_ms)}


# --- keys_jwe: ECDH-ES + A256GCM compact JWE -----------------------------------------------

def public_key_from_jwk(jwk: object) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from a JWK; extra members such as ext/key_ops are ignored."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise OnepwError("keys_jwk must be an EC P-256 JWK")
    try:
        x, y = b64u_decode(jwk["x"]), b64u_decode(jwk["y"])
    except (KeyError, TypeError) as exc:
        raise OnepwError("keys_jwk lacks x/y") from exc
    if len(x) != 32 or len(y) != 32:
        raise OnepwError("keys_jwk x/y must be 32 bytes")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
    except ValueError as exc:
        raise OnepwError("keys_jwk is not a point on P-256") from exc


def private_key_from_jwk(jwk: dict[str, Any]) -> ec.EllipticCurvePrivateKey:
    public = public_key_from_jwk(jwk)
    d = int.from_bytes(b64u_decode(jwk["d"]), "big")
    key = ec.derive_private_key(d, ec.SECP256R1())
    if key.public_key().public_numbers() != public.public_numbers():
        raise OnepwError("d does not match x/y")
    return key


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    nums = key.public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64u_encode(nums.x.to_bytes(32, "big")),
            "y": b64u_encode(nums.y.to_bytes(32, "big"))}


def parse_keys_jwk(value: str) -> dict[str, Any]:
    """The ``keys_jwk`` query parameter: base64url-nopad UTF-8 JSON of a P-256 JWK."""
    try:
        jwk = json.loads(b64u_decode(value).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise OnepwError("keys_jwk is not base64url JSON") from exc
    public_key_from_jwk(jwk)
    return jwk


def _concat_kdf_a256gcm(z: bytes) -> bytes:
    # RFC 7518 §4.6.2, one round: counter ‖ Z ‖ len‖"A256GCM" ‖ len(apu)=0 ‖ len(apv)=0 ‖ 256.
    alg = b"A256GCM"
    return hashlib.sha256(
        b"\x00\x00\x00\x01" + z + len(alg).to_bytes(4, "big") + alg
        + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00" + (256).to_bytes(4, "big")
    ).digest()


def build_keys_jwe(peer_jwk: dict[str, Any], plaintext: bytes, *,
                   ephemeral: ec.EllipticCurvePrivateKey | None = None,
                   iv: bytes | None = None) -> str:
    """Encrypt ``plaintext`` to ``peer_jwk`` the way Firefox's jwcrypto and node-jose do."""
    peer = public_key_from_jwk(peer_jwk)
    eph = ephemeral or ec.generate_private_key(ec.SECP256R1())
    cek = _concat_kdf_a256gcm(eph.exchange(ec.ECDH(), peer))
    header: dict[str, Any] = {"alg": "ECDH-ES", "enc": "A256GCM",
                              "epk": public_jwk(eph.public_key())}
    if isinstance(peer_jwk.get("kid"), str):
        header["kid"] = peer_jwk["kid"]
    protected = b64u_encode(json.dumps(header, separators=(",", ":")).encode())
    iv = iv or secrets.token_bytes(12)
    sealed = AESGCM(cek).encrypt(iv, plaintext, protected.encode("ascii"))
    return ".".join([protected, "", b64u_encode(iv), b64u_encode(sealed[:-16]),
                     b64u_encode(sealed[-16:])])


def decrypt_keys_jwe(private_key: ec.EllipticCurvePrivateKey, jwe: str) -> bytes:
    parts = jwe.split(".") if isinstance(jwe, str) else []
    if len(parts) != 5:
        raise OnepwError("a compact JWE has five parts")
    protected, encrypted_key, iv_b64, ct_b64, tag_b64 = parts
    if encrypted_key:
        raise OnepwError("ECDH-ES direct agreement has an empty encrypted key")
    try:
        header = json.loads(b64u_decode(protected))
    except ValueError as exc:
        raise OnepwError("bad JWE header") from exc
    if not isinstance(header, dict) or header.get("alg") != "ECDH-ES" \
            or header.get("enc") != "A256GCM" or "apu" in header or "apv" in header:
        raise OnepwError("unsupported JWE header")
    epk = public_key_from_jwk(header.get("epk"))
    iv, ct, tag = b64u_decode(iv_b64), b64u_decode(ct_b64), b64u_decode(tag_b64)
    if len(iv) != 12 or len(tag) != 16:
        raise OnepwError("A256GCM wants a 12-byte IV and a 16-byte tag")
    cek = _concat_kdf_a256gcm(private_key.exchange(ec.ECDH(), epk))
    try:
        return AESGCM(cek).decrypt(iv, ct + tag, protected.encode("ascii"))
    except Exception as exc:  # InvalidTag
        raise OnepwError("JWE does not decrypt") from exc


def scoped_keys_plaintext(keys: dict[str, dict[str, str]]) -> bytes:
    """The JWE plaintext: a JSON map from scope to its JWK."""
    return json.dumps(keys, separators=(",", ":")).encode("utf-8")
