"""Request parsing with Mozilla's error numbers (fxa-auth-server lib/routes/validators.js).

* body that is not JSON → 400 errno 106; JSON that is not an object → 107;
* a required field absent → 400 errno 108 with ``param``;
* wrong type, bad hex, wrong length, bad email, out of range → 400 errno 107 with
  ``validation: {source, keys}``.

# DIVERGENCE: unknown fields are ignored where Mozilla's joi schemas reject them: Firefox,
# the pages and PyFxA all send extras (metricsContext, reason, capabilities, …), and a
# field we do not read cannot hurt.
"""

from __future__ import annotations

import json
import re
from typing import Any

from quart import request

from .. import fxa_errors
from ..errors import FxaError

MAX_BODY_BYTES = 256 * 1024

HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")
URL_SAFE_B64 = re.compile(r"^[A-Za-z0-9_-]+$")
# C0/C1 controls, DEL, line/paragraph separators, private use, specials are not display-safe.
_UNSAFE = re.compile("[\u0000-\u001f\u007f\u0080-\u009f\u2028\u2029\ue000-\uf8ff"
                     "\ufff9-\ufffc\ufffe\uffff\ud800-\udfff]")
_EMAIL_USER = re.compile(r"^[A-Z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$", re.I)
_EMAIL_DOMAIN = re.compile(
    r"^[A-Z0-9](?:[A-Z0-9-]{0,253}[A-Z0-9])?(?:\.[A-Z0-9](?:[A-Z0-9-]{0,253}[A-Z0-9])?)+$", re.I)


def invalid(name: str, source: str = "payload", message: str | None = None) -> FxaError:
    return FxaError(400, fxa_errors.INVALID_PARAMETER,
                    message or f"Invalid parameter in request body: {name}",
                    validation={"source": source, "keys": [name]})


def display_safe(value: str) -> bool:
    return _UNSAFE.search(value) is None


def _to_ascii(part: str) -> str:
    # punycode.toASCII as Node does it: only labels with non-ASCII characters change.
    labels = []
    for label in part.split("."):
        if label.isascii():
            labels.append(label)
        else:
            labels.append("xn--" + label.encode("punycode").decode("ascii"))
    return ".".join(labels)


def is_valid_email(value: str) -> bool:
    if not value or len(value) > 255 or not display_safe(value):
        return False
    parts = value.split("@")
    if len(parts) != 2 or len(parts[1]) > 255:
        return False
    try:
        user, domain = _to_ascii(parts[0]), _to_ascii(parts[1])
    except UnicodeError:
        return False
    return bool(_EMAIL_USER.match(user) and _EMAIL_DOMAIN.match(domain))


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


async def json_body(*, allow_empty: bool = False) -> dict[str, Any]:
    data = await request.get_data(cache=True, as_text=False)
    if not data.strip():
        if allow_empty:
            return {}
        raise fxa_errors.invalid_json()
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise fxa_errors.invalid_json() from None
    if not isinstance(value, dict):
        raise FxaError(400, fxa_errors.INVALID_PARAMETER, "Request body must be an object",
                       validation={"source": "payload", "keys": []})
    return value


class Fields:
    """Typed getters over a JSON object (``source`` is "payload" or "query")."""

    def __init__(self, data: dict[str, Any], source: str = "payload") -> None:
        self.data = data
        self.source = source

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def _get(self, name: str, required: bool) -> Any:
        if name not in self.data:
            if required:
                raise fxa_errors.missing_parameter(name)
            return None
        value = self.data[name]
        if value is None and required:
            raise invalid(name, self.source)
        return value

    def string(self, name: str, *, required: bool = False, max_len: int = 255,
               pattern: re.Pattern[str] | None = None, allow_empty: bool = True) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > max_len or (not value and not allow_empty) \
                or (value and pattern is not None and not pattern.match(value)):
            raise invalid(name, self.source)
        return value

    def hex(self, name: str, nbytes: int, *, required: bool = False) -> bytes | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str) or len(value) != 2 * nbytes or not HEX.match(value):
            raise invalid(name, self.source)
        return bytes.fromhex(value)

    def hex_id(self, name: str, nbytes: int, *, required: bool = False) -> str | None:
        raw = self.hex(name, nbytes, required=required)
        return None if raw is None else raw.hex()

    def email(self, name: str = "email", *, required: bool = True) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str) or not is_valid_email(value):
            raise invalid(name, self.source)
        return value

    def integer(self, name: str, *, required: bool = False, minimum: int | None = None,
                maximum: int | None = None) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) \
                or (minimum is not None and value < minimum) \
                or (maximum is not None and value > maximum):
            raise invalid(name, self.source)
        return value

    def boolean(self, name: str, *, required: bool = False) -> bool | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise invalid(name, self.source)
        return value

    def obj(self, name: str, *, required: bool = False) -> dict[str, Any] | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise invalid(name, self.source)
        return value

    def array(self, name: str, *, required: bool = False) -> list[Any] | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise invalid(name, self.source)
        return value


def query_bool(name: str) -> bool:
    """Joi's boolean in a query string: "true"/"false" (any case); absent = False."""
    value = request.args.get(name)
    if value is None:
        return False
    low = value.lower()
    if low not in ("true", "false"):
        raise invalid(name, "query")
    return low == "true"


def query_int(name: str, *, minimum: int | None = None, maximum: int | None = None
              ) -> int | None:
    value = request.args.get(name)
    if value is None:
        return None
    if not re.fullmatch(r"-?[0-9]{1,16}", value):
        raise invalid(name, "query")
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise invalid(name, "query")
    return number
