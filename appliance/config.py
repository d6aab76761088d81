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
    listen: str = "127.0.0.1:8000"
    public_url: str | None = None
    sync_master_secret: str | None = None
    allow_new_users: bool = True
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
