"""OAuth error envelopes, numbered as Mozilla's auth-server serves them.

Two route families answer differently, as in FxA:

* ``/v1/oauth/*`` (auth-server routes; Firefox and application-services): request
  validation uses the auth-server errnos (106 invalid JSON, 107 invalid parameter,
  108 missing parameter; 401 110/109/111/115 from HAWK), an unknown refresh token is
  401/110, and the OAuth-specific failures keep their ``lib/oauth/error.js`` numbers.
* The legacy OAuth-server routes (``/v1/authorization``, ``/v1/token``, ``/v1/verify``,
  ``/v1/destroy``, ``/v1/introspect``, ``/v1/client/<id>``; PyFxA): every validation
  failure is 109 "Invalid request parameter" and an unknown token is 400/108.

``lib/oauth/error.js`` numbers used (the OAuth namespace overlaps the auth one, e.g. 101
is both "unknown client" and "account exists"; Mozilla lives with that, so do we):
101 unknown client, 102 incorrect secret, 103 incorrect redirect_uri, 104 invalid
assertion, 105 unknown code, 106 incorrect code (other client), 107 expired code,
108 invalid token, 109 invalid request parameter, 110 invalid response_type,
114 invalid scopes, 116 not a public client, 117 incorrect code_challenge (wrong
code_verifier), 118 missing PKCE parameters, 120 mismatch acr value, 121 invalid grant_type.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from .. import fxa_errors
from ..errors import FxaError


class Family(Enum):
    AUTH = "auth"      # /v1/oauth/*
    LEGACY = "legacy"  # the OAuth-server routes


def invalid_parameter(family: Family, name: str) -> FxaError:
    validation = {"source": "payload", "keys": [name]}
    if family is Family.LEGACY:
        return FxaError(400, 109, "Invalid request parameter", validation=validation)
    return FxaError(400, fxa_errors.INVALID_PARAMETER, "Invalid parameter in request body",
                    validation=validation)


def missing_parameter(family: Family, name: str) -> FxaError:
    if family is Family.LEGACY:
        return FxaError(400, 109, "Invalid request parameter",
                        validation={"source": "payload", "keys": [name]})
    return fxa_errors.missing_parameter(name)


def invalid_json(family: Family) -> FxaError:
    if family is Family.LEGACY:
        return FxaError(400, 109, "Invalid request parameter",
                        validation={"source": "payload", "keys": []})
    return fxa_errors.invalid_json()


def too_large() -> FxaError:
    return FxaError(413, fxa_errors.REQUEST_TOO_LARGE, "Request body too large")


def unknown_client(client_id: object) -> FxaError:
    extra: dict[str, Any] = {"clientId": client_id} if isinstance(client_id, str) else {}
    return FxaError(400, 101, "Unknown client", **extra)


def incorrect_secret(client_id: str) -> FxaError:
    return FxaError(400, 102, "Incorrect secret", clientId=client_id)


def incorrect_redirect(uri: str) -> FxaError:
    return FxaError(400, 103, "Incorrect redirect_uri", redirectUri=uri)


def invalid_assertion() -> FxaError:
    return FxaError(401, 104, "Invalid assertion")


# DIVERGENCE: FxA echoes the submitted code as ``requestCode``; codes never go into our
# responses or logs.
def unknown_code() -> FxaError:
    return FxaError(400, 105, "Unknown code")


def mismatch_code() -> FxaError:
    return FxaError(400, 106, "Incorrect code")


def expired_code(expired_at: int) -> FxaError:
    return FxaError(400, 107, "Expired code", expiredAt=expired_at)


def invalid_token(family: Family) -> FxaError:
    if family is Family.AUTH:  # FxA maps OAuth 108 to AuthError.invalidToken here
        return fxa_errors.invalid_token("Invalid token")
    return FxaError(400, 108, "Invalid token")


def invalid_response_type() -> FxaError:
    return FxaError(400, 110, "Invalid response_type")


def invalid_scopes(scopes: list[str]) -> FxaError:
    return FxaError(400, 114, "Requested scopes are not allowed", invalidScopes=scopes)


def not_public_client(client_id: str) -> FxaError:
    return FxaError(400, 116, "Not a public client", clientId=client_id)


def mismatch_code_challenge() -> FxaError:
    return FxaError(400, 117, "Incorrect code_challenge")


def missing_pkce() -> FxaError:
    return FxaError(400, 118, "Public clients require PKCE OAuth parameters")


def mismatch_acr(found: int) -> FxaError:
    return FxaError(400, 120, "Mismatch acr value", foundValue=found)


def invalid_grant_type() -> FxaError:
    return FxaError(400, 121, "Invalid grant_type")


# DIVERGENCE: FxA answers a key-bearing grant on an unverified session with OAuth 104
# "Invalid assertion" (401), which Firefox would take for a bad session; the auth-server's
# own 400/138 says what is wrong.  The pages verify sessions before Firefox sees them, so
# Firefox should never meet this (firefox-signin.md §6.12).
def unverified_session() -> FxaError:
    return FxaError(400, fxa_errors.UNVERIFIED_SESSION, "Unverified session")
