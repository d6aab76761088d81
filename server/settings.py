"""Everything the server needs to know, in one frozen dataclass built by the appliance."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

VERSION = "0.1.0"


@dataclass(frozen=True)
class StorageLimits:
    """Sync 1.5 limits, advertised by /info/configuration and enforced (storage doc §8)."""

    max_post_records: int = 100
    max_post_bytes: int = 2_621_440
    max_record_payload_bytes: int = 2_621_440
    max_request_bytes: int = 2_625_536
    max_total_records: int = 10_000
    max_total_bytes: int = 262_144_000
    max_quota_limit: int = 2_097_152_000

    def as_json(self) -> dict[str, int]:
        return {
            "max_post_records": self.max_post_records,
            "max_post_bytes": self.max_post_bytes,
            "max_record_payload_bytes": self.max_record_payload_bytes,
            "max_request_bytes": self.max_request_bytes,
            "max_total_records": self.max_total_records,
            "max_total_bytes": self.max_total_bytes,
            "max_quota_limit": self.max_quota_limit,
        }


@dataclass(frozen=True)
class Settings:
    # The one origin every client uses; HAWK host/port come from it, never from Host.
    public_url: str
    # Shared with tokenlib-based tools so they can mint storage tokens.
    sync_master_secret: str
    # RS256 key (PKCS#8 PEM) that signs OAuth access tokens; its kid is published.
    oauth_signing_key_pem: bytes
    oauth_key_id: str
    # Keys hashed_fxa_uid / hashed_device_id (tokenserver doc §10.5).
    metrics_hash_secret: str
    token_duration: int = 3600
    limits: StorageLimits = field(default_factory=StorageLimits)
    # DIVERGENCE: syncstorage-rs ships with quota off; a household server enforces it.
    enforce_quota: bool = True
    allow_new_users: bool = True
    # Accounts normally come from `foxden user add`; the admin may open sign-up.
    signup_open: bool = False
    version: str = VERSION

    @cached_property
    def _parts(self) -> tuple[str, str, int]:
        parts = urlsplit(self.public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"public URL must be http(s)://host[:port]: {self.public_url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return parts.scheme, parts.hostname.lower(), port

    @property
    def public_scheme(self) -> str:
        return self._parts[0]

    @property
    def public_host(self) -> str:
        return self._parts[1]

    @property
    def public_port(self) -> int:
        return self._parts[2]

    @property
    def origin(self) -> str:
        return self.public_url.rstrip("/")
