"""Key material on disk: created once, 0600 from the first byte, never logged."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger("foxden.keys")


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


KEYRING_SERVICE = "foxden"


def _keyring():  # type: ignore[no-untyped-def]
    """The OS keyring if there is a real one (not the fail/null backends), else None."""
    if os.environ.get("FOXDEN_KEYRING", "on").lower() in ("off", "0", "false", "no"):
        return None
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring) or backend.priority <= 0:
            return None
        return keyring
    except Exception:  # noqa: BLE001 - any keyring trouble means "use the file"
        return None


def _keyring_user(path: Path) -> str:
    return f"db-key:{path.resolve()}"


def db_key(path: Path, *, create: bool) -> bytes:
    """The raw 256-bit SQLCipher key: from the OS keyring when there is one, else from a
    0600 hex file in the config dir (never beside the database)."""
    ring = _keyring()
    if ring is not None and not path.exists():
        try:
            stored = ring.get_password(KEYRING_SERVICE, _keyring_user(path))
        except Exception:  # noqa: BLE001
            stored = None
        if stored:
            return _parse_key(stored, f"the keyring entry for {path}")
        if create:
            text = secrets.token_hex(32)
            try:
                ring.set_password(KEYRING_SERVICE, _keyring_user(path), text)
                return bytes.fromhex(text)
            except Exception:  # noqa: BLE001 - fall back to the file
                log.info("the OS keyring refused the database key; using a key file")
    if not path.exists():
        if not create:
            raise KeyError_(
                f"the database key {path} is missing; restore it from your backup "
                "(without it the database cannot be opened)"
            )
        write_secret_file(path, secrets.token_hex(32).encode() + b"\n")
    return _parse_key(path.read_text(), str(path))


def _parse_key(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError as exc:
        raise KeyError_(f"the database key {where} is not 64 hex digits") from exc
    if len(key) != 32:
        raise KeyError_(f"the database key {where} is not 64 hex digits")
    return key


def store_db_key(path: Path, key: bytes) -> None:
    """Replace the stored key (rekey): the keyring entry if that is where it lives."""
    ring = _keyring()
    if ring is not None and not path.exists():
        ring.set_password(KEYRING_SERVICE, _keyring_user(path), key.hex())
        return
    write_secret_file(path, key.hex().encode() + b"\n")


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
