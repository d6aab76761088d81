"""The three error envelopes Firefox understands, one per protocol family.

* Sync storage: a bare JSON integer, the legacy WEAVE code (storage doc §9).
* Tokenserver: ``{"status", "errors": [{"location", "name", "description"}]}`` (§10.5).
* FxA auth/OAuth/profile: ``{"code", "errno", "error", "message"}``.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from quart import Response

# WEAVE codes syncstorage-rs emits.
WEAVE_UNKNOWN = 0
WEAVE_ILLEGAL_METHOD = 1
WEAVE_MALFORMED_JSON = 6
WEAVE_INVALID_WBO = 8
WEAVE_OVER_QUOTA = 14
WEAVE_SIZE_LIMIT = 17


class WeaveError(Exception):
    def __init__(self, status: int, code: int = WEAVE_UNKNOWN, *,
                 headers: dict[str, str] | None = None, empty: bool = False) -> None:
        super().__init__(f"{status} weave {code}")
        self.status = status
        self.code = code
        self.headers = headers or {}
        self.empty = empty

    def response(self) -> Response:
        body = b"" if self.empty else str(self.code).encode()
        resp = Response(body, status=self.status, content_type="application/json")
        resp.headers.update(self.headers)
        return resp


def weave_response(status: int, code: int = WEAVE_UNKNOWN) -> Response:
    return WeaveError(status, code).response()


class TokenserverError(Exception):
    def __init__(self, status: int, error: str = "error", *, location: str = "body",
                 name: str = "", description: str = "Unauthorized",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.location = location
        self.name = name
        self.description = description
        self.headers = headers or {}

    def response(self) -> Response:
        body = {
            "status": self.error,
            "errors": [{"location": self.location, "name": self.name,
                        "description": self.description}],
        }
        resp = Response(json.dumps(body), status=self.status, content_type="application/json")
        resp.headers.update(self.headers)
        return resp


class FxaError(Exception):
    def __init__(self, status: int, errno: int, message: str, **extra: Any) -> None:
        super().__init__(f"{status}/{errno} {message}")
        self.status = status
        self.errno = errno
        self.message = message
        self.extra = extra

    def response(self) -> Response:
        body: dict[str, Any] = {
            "code": self.status,
            "errno": self.errno,
            "error": HTTPStatus(self.status).phrase,
            "message": self.message,
        }
        body.update(self.extra)
        return Response(json.dumps(body), status=self.status, content_type="application/json")
