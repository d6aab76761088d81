"""Configuration: embedded defaults < TOML file < environment < command line."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """A config file or value that cannot be used; the message says which and why."""


@dataclass
class Config:
    """Every option; docs/configuration.md describes each one."""

    # HTTPS listener; empty = 0.0.0.0 on 443 if bindable, else 8443 (127.0.0.1:8000 with
    # tls = "off").
    listen: str = ""
    # Plain-HTTP hand-off listener (CA download + redirect); empty = 80 if bindable, else 8080.
    # "off" disables it.
    http_listen: str = ""
    tls: str = "on"                       # "on" or "off" (off: loopback only)
    public_name: str = ""                 # host name clients use; default <hostname>.local
    public_url: str | None = None         # overrides the derived origin entirely
    cert_file: str = ""                   # your own certificate chain (PEM) for public_name
    key_file: str = ""                    # and its key
    mdns: bool = True
    allow_public_clients: bool = False    # the LAN-only guard
    sync_master_secret: str | None = None
    allow_new_users: bool = True
    signup_open: bool = False
    token_duration: int = 3600

    @classmethod
    def load(cls, path: Path) -> Config:
        cfg = cls()
        if path.exists():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
            cfg._apply(data, str(path))
        env = {
            key[len("FOXDEN_"):].lower(): value
            for key, value in os.environ.items()
            if key.startswith("FOXDEN_")
        }
        cfg._apply({k: v for k, v in env.items() if k in cls.__dataclass_fields__}, "env")
        return cfg

    def _apply(self, data: dict[str, object], where: str) -> None:
        for key, value in data.items():
            if key not in self.__dataclass_fields__:
                raise ConfigError(f"{where}: unknown setting {key!r}")
            current = getattr(self, key)
            kind = type(current) if current is not None else str
            if kind is bool and isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ConfigError(f"{where}: {key} must be true or false")
                value = value.lower() in ("1", "true", "yes")
            elif kind is int and isinstance(value, str):
                if not value.isdigit():
                    raise ConfigError(f"{where}: {key} must be a whole number")
                value = int(value)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ConfigError(f"{where}: {key} must be a {kind.__name__}")
            setattr(self, key, value)
        if self.tls not in ("on", "off"):
            raise ConfigError(f"{where}: tls must be \"on\" or \"off\"")
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError(f"{where}: cert_file and key_file go together")
