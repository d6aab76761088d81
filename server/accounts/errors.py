"""The FxA errors the account routes raise, with Mozilla's errnos and messages
(fxa-auth-server lib/error.js)."""

from __future__ import annotations

from typing import Any

from quart import Response

from .. import fxa_errors as E
from ..errors import FxaError


class FxaErrorWithHeaders(FxaError):
    """The FxA envelope plus response headers (Retry-After on 429)."""

    def __init__(self, status: int, errno: int, message: str, *,
                 headers: dict[str, str], **extra: Any) -> None:
        super().__init__(status, errno, message, **extra)
        self.headers = headers

    def response(self) -> Response:
        resp = super().response()
        resp.headers.update(self.headers)
        return resp

DEVICE_COMMAND_UNAVAILABLE = 157
UNKNOWN_CLIENT_ID = 162
INVALID_SCOPES = 163


def account_exists(email: str) -> FxaError:
    return FxaError(400, E.ACCOUNT_EXISTS, "Account already exists", email=email)


def unknown_account(email: str | None = None) -> FxaError:
    extra: dict[str, Any] = {"email": email} if email is not None else {}
    return FxaError(400, E.ACCOUNT_UNKNOWN, "Unknown account", **extra)


def incorrect_password(db_email: str, request_email: str) -> FxaError:
    # Mozilla's rule: a wrong password under a differently-spelled email is reported as a
    # case problem, with the canonical spelling, so the client re-stretches and retries.
    if db_email != request_email:
        return FxaError(400, E.INCORRECT_EMAIL_CASE, "Incorrect email case", email=db_email)
    return FxaError(400, E.INCORRECT_PASSWORD, "Incorrect password", email=db_email)


def too_many_requests(retry_after: int) -> FxaError:
    return FxaErrorWithHeaders(429, E.THROTTLED, "Client has sent too many requests",
                               headers={"Retry-After": str(retry_after)},
                               retryAfter=retry_after)


def signup_closed() -> FxaError:
    # DIVERGENCE: Mozilla's featureNotEnabled is 503 + Retry-After.  A closed sign-up is
    # the household's policy, not an outage: a Retry-After would make clients (PyFxA)
    # back off every later request, so we answer 400 with the same errno.
    return FxaError(400, E.FEATURE_NOT_ENABLED, "Feature not enabled: sign-up is closed")


def unknown_device() -> FxaError:
    return FxaError(400, E.UNKNOWN_DEVICE, "Unknown device")


def device_command_unavailable() -> FxaError:
    return FxaError(400, DEVICE_COMMAND_UNAVAILABLE, "Unavailable device command")


def unknown_client_id(client_id: str) -> FxaError:
    return FxaError(400, UNKNOWN_CLIENT_ID, "Unknown client_id", clientId=client_id)


def invalid_scopes(message: str = "Invalid scopes") -> FxaError:
    return FxaError(400, INVALID_SCOPES, message)


def request_too_large() -> FxaError:
    return FxaError(413, E.REQUEST_TOO_LARGE, "Request body too large")
