"""Tokenlib-compatible signed tokens (sans-IO).

The tokenserver mints, and the storage node verifies, tokens of the form
``urlsafe_b64encode(json_payload + HMAC-SHA256(signing_key, json_payload))`` and a
per-token secret derived from the master secret with HKDF.  Byte-compatible with
Mozilla's ``tokenlib`` 2.0 and syncstorage-rs (docs: storage-tokenserver.md §2, §10.5).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SIGNING_INFO = b"services.mozilla.com/tokenlib/v1/signing"
DERIVE_INFO_PREFIX = b"services.mozilla.com/tokenlib/v1/derive/"
_REQUIRED = {"uid": int, "node": str, "expires": (int, float), "salt": str}


class InvalidToken(Exception):
    """The token is malformed, forged or (when checked) expired."""


def hkdf_sha256(ikm: bytes, info: bytes, salt: bytes | None = None, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def signing_key(master_secret: str | bytes) -> bytes:
    return hkdf_sha256(_as_bytes(master_secret), SIGNING_INFO)


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class TokenSecrets:
    """Precomputed keys for one master secret (HKDF once, not per request)."""

    master_secret: bytes
    signing_key: bytes

    @classmethod
    def from_master(cls, master_secret: str | bytes) -> TokenSecrets:
        raw = _as_bytes(master_secret)
        return cls(raw, signing_key(raw))


def make_token(secrets: TokenSecrets, payload: dict[str, Any]) -> str:
    """Sign ``payload`` (it must carry uid/node/expires/salt)."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    sig = hmac.new(secrets.signing_key, body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(body + sig).decode("ascii")


def new_salt() -> str:
    return os.urandom(3).hex()


def derived_secret(secrets: TokenSecrets, token: str, salt: str) -> str:
    """The per-token HAWK key, as the padded urlsafe-base64 text clients use verbatim."""
    raw = hkdf_sha256(
        secrets.master_secret, DERIVE_INFO_PREFIX + token.encode("ascii"), salt.encode("ascii")
    )
    return base64.urlsafe_b64encode(raw).decode("ascii")


def parse_token(secrets: TokenSecrets, token: str) -> dict[str, Any]:
    """Verify the signature and shape; expiry is the caller's decision (§2 step 5)."""
    try:
        raw = base64.urlsafe_b64decode(_pad(token).encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidToken("token is not base64") from exc
    if len(raw) <= 32:
        raise InvalidToken("token too short")
    body, sig = raw[:-32], raw[-32:]
    expected = hmac.new(secrets.signing_key, body, hashlib.sha256).digest()
    if not hmac.compare_digest(sig, expected):
        raise InvalidToken("bad token signature")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidToken("token payload is not JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidToken("token payload is not an object")
    for key, kind in _REQUIRED.items():
        value = payload.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidToken(f"token payload lacks {key}")
    return payload


def _pad(text: str) -> str:
    return text + "=" * (-len(text) % 4)
