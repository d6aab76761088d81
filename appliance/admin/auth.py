"""Who may call the admin API: the admin token, from loopback or over HTTPS."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from pathlib import Path

from ..keys import write_secret_file


def load_or_create_token(path: Path) -> str:
    if path.exists():
        token = path.read_text().strip()
        if len(token) >= 32:
            return token
    token = secrets.token_urlsafe(32)
    write_secret_file(path, token.encode() + b"\n")
    return token


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def verdict(token: str, header: str | None, client_host: str | None, scheme: str) -> str | None:
    """None if allowed, else the reason (for the 401/403 body)."""
    if not _is_loopback(client_host) and scheme != "https":
        return "the admin API is available from another machine only over HTTPS"
    if not header or not header.startswith("Bearer "):
        return "missing admin token"
    if not hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return "wrong admin token"
    return None
