"""The Tokenserver: ``GET /1.0/sync/1.5`` (docs: storage-tokenserver.md §10)."""

from .routes import register

__all__ = ["register"]
