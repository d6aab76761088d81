"""HAWK request authentication (sans-IO): header parsing and MAC verification.

The route layer hands in the method, the raw request target, the host/port taken from the
configured public URL (never from the request's Host header) and the header value; this
module answers with the parsed attributes or raises :class:`HawkError`.  Used by Sync
storage (docs: storage-tokenserver.md §2) and, later, the FxA auth API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

_ATTR = re.compile(r'\s*([a-z]+)="([^"\\]*)"\s*(?:,|$)')
_ALLOWED = frozenset({"id", "ts", "nonce", "mac", "hash", "ext", "app", "dlg"})


class HawkError(Exception):
    """Missing, malformed or unverifiable HAWK credentials."""


@dataclass(frozen=True, slots=True)
class HawkHeader:
    id: str
    ts: str
    nonce: str
    mac: str
    hash: str = ""
    ext: str = ""


def parse_header(value: str | None) -> HawkHeader:
    if not value or not value.startswith("Hawk "):
        raise HawkError("not a Hawk authorization header")
    rest = value[5:].strip()
    attrs: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _ATTR.match(rest, pos)
        if not m or m.end() == pos:
            raise HawkError("malformed Hawk header")
        name, val = m.group(1), m.group(2)
        if name not in _ALLOWED or name in attrs:
            raise HawkError(f"bad Hawk attribute {name!r}")
        attrs[name] = val
        pos = m.end()
    for name in ("id", "ts", "nonce", "mac"):
        if not attrs.get(name):
            raise HawkError(f"Hawk header lacks {name}")
    if not attrs["ts"].isdigit():
        raise HawkError("Hawk ts is not an integer")
    return HawkHeader(
        id=attrs["id"], ts=attrs["ts"], nonce=attrs["nonce"], mac=attrs["mac"],
        hash=attrs.get("hash", ""), ext=attrs.get("ext", ""),
    )


def normalized_string(
    header: HawkHeader, method: str, target: str, host: str, port: int
) -> bytes:
    parts = [
        "hawk.1.header", header.ts, header.nonce, method.upper(), target,
        host.lower(), str(port), header.hash, header.ext,
    ]
    return ("\n".join(parts) + "\n").encode("utf-8")


def compute_mac(key: bytes, normalized: bytes) -> str:
    return base64.b64encode(hmac.new(key, normalized, hashlib.sha256).digest()).decode("ascii")


def verify_mac(
    header: HawkHeader, key: bytes, method: str, target: str, host: str, port: int
) -> None:
    expected = compute_mac(key, normalized_string(header, method, target, host, port))
    if not hmac.compare_digest(expected.encode(), header.mac.encode()):
        raise HawkError("Hawk MAC mismatch")


def payload_hash(content_type: str, body: bytes) -> str:
    """hawk.1.payload hash: content type without parameters, lower-cased."""
    mime = content_type.split(";", 1)[0].strip().lower()
    digest = hashlib.sha256(
        b"hawk.1.payload\n" + mime.encode() + b"\n" + body + b"\n"
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_payload(header: HawkHeader, content_type: str, body: bytes) -> None:
    # DIVERGENCE: syncstorage-rs never compares the hash attribute with the body; we do
    # whenever the client sent one, so a tampered body cannot ride a valid MAC.
    if header.hash and not hmac.compare_digest(
        payload_hash(content_type, body).encode(), header.hash.encode()
    ):
        raise HawkError("Hawk payload hash mismatch")


def sign_header(
    key: bytes, token_id: str, method: str, target: str, host: str, port: int,
    ts: int, nonce: str, content_type: str | None = None, body: bytes | None = None,
    ext: str = "",
) -> str:
    """Client side, for tests, benchmarks and Foxden's own clients."""
    phash = payload_hash(content_type or "", body) if body is not None else ""
    hdr = HawkHeader(id=token_id, ts=str(ts), nonce=nonce, mac="", hash=phash, ext=ext)
    mac = compute_mac(key, normalized_string(hdr, method, target, host, port))
    out = f'Hawk id="{token_id}", ts="{ts}", nonce="{nonce}", mac="{mac}"'
    if phash:
        out += f', hash="{phash}"'
    if ext:
        out += f', ext="{ext}"'
    return out
