"""The OAuth server: /v1/oauth/*, the legacy OAuth routes, attached clients, authorizations."""

from .routes import register

__all__ = ["register"]
