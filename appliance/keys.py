"""Key material on disk: created once, 0600 from the first byte, never logged."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class KeyError_(Exception):
    """A key file is missing where one must exist, or unreadable."""


def write_secret_file(path: Path, data: bytes) -> None:
    """Atomically create ``path`` with mode 0600 (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_or_create(path: Path, make: callable) -> bytes:  # type: ignore[valid-type]
    if path.exists():
        return path.read_bytes()
    data: bytes = make()
    write_secret_file(path, data)
    return data


def db_key(path: Path, *, create: bool) -> bytes:
    """The raw 256-bit SQLCipher key, stored as hex text."""
    if not path.exists():
        if not create:
            raise KeyError_(
                f"the database key {path} is missing; restore it from your backup "
                "(without it the database cannot be opened)"
            )
        write_secret_file(path, secrets.token_hex(32).encode() + b"\n")
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise KeyError_(f"the database key {path} is not 64 hex digits") from exc
    if len(key) != 32:
        raise KeyError_(f"the database key {path} is not 64 hex digits")
    return key


def oauth_signing_key(path: Path) -> bytes:
    """RS256 private key (PKCS#8 PEM) for OAuth access tokens, made on first run."""

    def make() -> bytes:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    return load_or_create(path, make)


def text_secret(path: Path) -> str:
    return load_or_create(path, lambda: secrets.token_hex(32).encode()).decode().strip()
