"""Request/response helpers shared by the OAuth, attached-clients and profile routes."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl

from quart import Response, request

from . import errors
from .errors import Family

MAX_BODY = 16 * 1024  # FxA auth-server payload.maxBytes
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def now_ms() -> int:
    return int(time.time() * 1000)


def json_response(body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    resp = Response(json.dumps(body), status=status, content_type="application/json")
    if headers:
        resp.headers.update(headers)
    return resp


def check_size() -> None:
    if (request.content_length or 0) > MAX_BODY:
        raise errors.too_large()


async def read_body(family: Family) -> dict[str, Any]:
    """The request body as a dict: JSON, or a form (standard OAuth libraries post forms)."""
    check_size()
    raw = await request.get_data(cache=True, as_text=False)
    if len(raw) > MAX_BODY:
        raise errors.too_large()
    if request.mimetype == "application/x-www-form-urlencoded":
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise errors.invalid_json(family) from None
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise errors.invalid_json(family) from None
    if not isinstance(data, dict):
        raise errors.invalid_json(family)
    return data
