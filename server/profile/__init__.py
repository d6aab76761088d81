"""The profile server: /v1/profile and friends, and the generated default avatar."""

from .routes import register

__all__ = ["register"]
