"""FxA token credentials (sans-IO): what a session/key-fetch/... token derives to.

A token is 32 random bytes that only the client holds.  ``HKDF-SHA256(token, salt=empty,
info="identity.mozilla.com/picl/v1/" + kind, L=96)`` gives ``id = hex(out[0:32])`` (the name
the server stores and the Bearer ``fxs_``/``fxk_`` scheme sends), ``hawk_key = out[32:64]``
and ``extra = out[64:96]`` (keyRequestKey for keyFetchToken).  Firefox 153 HAWK-signs with
id/hawk_key (firefox-signin.md §3.5); PyFxA 0.9 sends ``Bearer <prefix>_<id>`` (ADR-0022).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from .tokenlib import hkdf_sha256

TokenKind = Literal[
    "sessionToken", "keyFetchToken", "passwordChangeToken", "accountResetToken",
    "passwordForgotToken",
]
BEARER_PREFIXES: dict[str, TokenKind] = {
    "fxs": "sessionToken",
    "fxk": "keyFetchToken",
    "fxpc": "passwordChangeToken",
    "fxar": "accountResetToken",
    "fxpf": "passwordForgotToken",
}
NAMESPACE = "identity.mozilla.com/picl/v1/"


@dataclass(frozen=True, slots=True)
class TokenCredentials:
    kind: TokenKind
    id: str          # 64 hex chars
    hawk_key: bytes  # 32 bytes
    extra: bytes     # 32 bytes (keyRequestKey for keyFetchToken)


def derive(token: bytes, kind: TokenKind) -> TokenCredentials:
    out = hkdf_sha256(token, (NAMESPACE + kind).encode(), None, 96)
    return TokenCredentials(kind, out[:32].hex(), out[32:64], out[64:])


def new_token(kind: TokenKind) -> tuple[str, TokenCredentials]:
    """A fresh token: (hex for the client, credentials for the server to store)."""
    raw = secrets.token_bytes(32)
    return raw.hex(), derive(raw, kind)
