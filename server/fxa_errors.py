"""FxA errno values (Mozilla's auth-server numbering) and constructors for the envelope."""

from __future__ import annotations

from typing import Any

from .errors import FxaError

ACCOUNT_EXISTS = 101
ACCOUNT_UNKNOWN = 102
INCORRECT_PASSWORD = 103
ACCOUNT_UNVERIFIED = 104
INVALID_VERIFICATION_CODE = 105
INVALID_JSON = 106
INVALID_PARAMETER = 107
MISSING_PARAMETER = 108
INVALID_REQUEST_SIGNATURE = 109
INVALID_TOKEN = 110
INVALID_TIMESTAMP = 111
MISSING_CONTENT_LENGTH = 112
REQUEST_TOO_LARGE = 113
THROTTLED = 114
INVALID_NONCE = 115
ENDPOINT_NOT_SUPPORTED = 116
INCORRECT_EMAIL_CASE = 120
UNKNOWN_DEVICE = 123
DEVICE_CONFLICT = 124
UNVERIFIED_SESSION = 138
FEATURE_NOT_ENABLED = 202
UNEXPECTED_ERROR = 999


def invalid_token(message: str = "The authentication token could not be found") -> FxaError:
    return FxaError(401, INVALID_TOKEN, message)


def invalid_signature(message: str = "Invalid request signature") -> FxaError:
    return FxaError(401, INVALID_REQUEST_SIGNATURE, message)


def invalid_timestamp(server_time: int) -> FxaError:
    return FxaError(401, INVALID_TIMESTAMP, "Invalid timestamp in request signature",
                    serverTime=server_time)


def invalid_nonce() -> FxaError:
    return FxaError(401, INVALID_NONCE, "Invalid nonce in request signature")


def invalid_parameter(message: str, **extra: Any) -> FxaError:
    return FxaError(400, INVALID_PARAMETER, message, **extra)


def missing_parameter(name: str) -> FxaError:
    return FxaError(400, MISSING_PARAMETER, f"Missing parameter in request body: {name}",
                    param=name)


def invalid_json() -> FxaError:
    return FxaError(400, INVALID_JSON, "Invalid JSON in request body")
