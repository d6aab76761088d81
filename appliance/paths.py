"""Where Foxden keeps things: platformdirs defaults, overridable per run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP = "foxden"


@dataclass(frozen=True)
class Paths:
    data_dir: Path
    config_dir: Path

    @classmethod
    def resolve(cls, data_dir: str | None, config_dir: str | None) -> Paths:
        data = Path(data_dir) if data_dir else Path(platformdirs.user_data_dir(APP))
        if config_dir:
            config = Path(config_dir)
        elif data_dir:
            # An explicit data dir gets its own config dir beside it (not inside it), so
            # two instances never share keys and a copy of the data dir alone is useless.
            config = data.parent / f"{data.name}.config"
        else:
            config = Path(platformdirs.user_config_dir(APP))
        return cls(data.resolve(), config.resolve())

    @property
    def database(self) -> Path:
        return self.data_dir / "foxden.db"

    @property
    def db_key(self) -> Path:
        return self.config_dir / "db.key"

    @property
    def config_file(self) -> Path:
        return self.config_dir / "foxden.toml"

    @property
    def oauth_signing_key(self) -> Path:
        return self.data_dir / "keys" / "oauth-signing-key.pem"

    @property
    def sync_master_secret(self) -> Path:
        return self.data_dir / "keys" / "sync-master-secret"

    @property
    def metrics_hash_secret(self) -> Path:
        return self.data_dir / "keys" / "metrics-hash-secret"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def admin_token(self) -> Path:
        return self.config_dir / "admin-token"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def ensure(self) -> None:
        for d in (self.data_dir, self.config_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
