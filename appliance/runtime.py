"""Assemble a running server from paths and config: keys, database, settings, app."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from server.db.engine import Database, WrongKeyError
from server.settings import Settings

from . import keys
from .config import Config, ConfigError
from .paths import Paths


class StartupError(Exception):
    """Start-up cannot go on; the message tells the user what to do."""


@dataclass
class Runtime:
    paths: Paths
    settings: Settings
    db: Database
    config: Config


def key_id_for(pem: bytes) -> str:
    public = serialization.load_pem_private_key(pem, password=None).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "foxden-" + hashlib.sha256(der).hexdigest()[:16]


def open_database(paths: Paths) -> Database:
    from .rekey import recover

    recover(paths)
    first_run = not paths.database.exists()
    try:
        key = keys.db_key(paths.db_key, create=first_run)
    except keys.KeyError_ as exc:
        raise StartupError(str(exc)) from exc
    try:
        return Database(paths.database, key)
    except WrongKeyError as exc:
        raise StartupError(
            f"{paths.database} does not open with the key in {paths.db_key}: the key is "
            "wrong or the file is not a Foxden database. Restore the matching key or backup."
        ) from exc


def build(paths: Paths, config: Config, public_url: str) -> Runtime:
    paths.ensure()
    master = config.sync_master_secret or keys.text_secret(paths.sync_master_secret)
    pem = keys.oauth_signing_key(paths.oauth_signing_key)
    try:
        settings = Settings(
            public_url=public_url,
            sync_master_secret=master,
            oauth_signing_key_pem=pem,
            oauth_key_id=key_id_for(pem),
            metrics_hash_secret=keys.text_secret(paths.metrics_hash_secret),
            token_duration=config.token_duration,
            allow_new_users=config.allow_new_users,
            signup_open=config.signup_open,
        )
        settings.public_port  # noqa: B018 - validates the URL now, not on first request
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return Runtime(paths, settings, open_database(paths), config)
