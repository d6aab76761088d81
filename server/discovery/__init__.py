"""/.well-known/fxa-client-configuration, /.well-known/openid-configuration, jwks.json."""

from .routes import register

__all__ = ["register"]
