"""Sans-IO wire rules for Sync 1.5 storage (docs: storage-tokenserver.md §0, §4–§7).

Parses query strings, precondition and size headers, content types, Accept, request
bodies and BSO fields; renders the JSON the server sends.  No Quart, no database: each
function takes plain values and either returns a result or raises :class:`ProtocolError`
(the route turns it into a WEAVE error response).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _encode_string
from typing import Any
from urllib.parse import parse_qsl

from ..settings import StorageLimits
from . import timestamps
from .timestamps import BadTimestamp

# WEAVE codes (mirrors server/errors.py, which imports Quart).
UNKNOWN = 0
INVALID_WBO = 8
SIZE_LIMIT = 17

UID_RE = re.compile(r"[0-9]{1,10}")
COLLECTION_RE = re.compile(r"[a-zA-Z0-9._-]{1,32}")
# Printable ASCII incl. space. Always re.fullmatch: "$" would accept a trailing "\n".
BSO_ID_RE = re.compile(r"[ -~]{1,64}")
BATCH_ID_RE = re.compile(r"[0-9]{1,18}")
_TRUE_RE = re.compile(r"true", re.IGNORECASE)
_KNOWN_BAD_PAYLOAD = re.compile(r'IV":\s*"AAAAAAAAAAAAAAAAAAAAAA==')
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_RE = re.compile(rf"({_TOKEN})/({_TOKEN})")

MAX_IDS = 100
MAX_SORTINDEX = 999_999_999
MAX_TTL = 999_999_999
DEFAULT_TTL_SECONDS = 2_100_000_000
_I32 = (-(2**31), 2**31 - 1)
_U32_MAX = 2**32 - 1
_U63_MAX = 2**63 - 1
BSO_KEYS = frozenset({"id", "sortindex", "payload", "ttl", "modified", "collection"})

NEWEST, OLDEST, INDEX = "newest", "oldest", "index"
JSON, NEWLINES = "application/json", "application/newlines"


class ProtocolError(Exception):
    """A request the protocol rejects: HTTP status plus WEAVE code."""

    def __init__(self, status: int = 400, code: int = UNKNOWN) -> None:
        super().__init__(f"{status}/{code}")
        self.status = status
        self.code = code


def bad_request() -> ProtocolError:
    return ProtocolError(400, UNKNOWN)


def invalid_bso() -> ProtocolError:
    return ProtocolError(400, INVALID_WBO)


def valid_bso_id(value: object) -> bool:
    return isinstance(value, str) and BSO_ID_RE.fullmatch(value) is not None


def valid_collection(value: str) -> bool:
    return COLLECTION_RE.fullmatch(value) is not None


# --------------------------------------------------------------------------- query string


def query_pairs(raw: bytes) -> list[tuple[str, str]]:
    """The raw ASGI query string as (name, value) pairs; '+' is a space, as in forms."""
    text = raw.decode("latin-1")
    return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace")


def _single(pairs: Iterable[tuple[str, str]], names: Iterable[str]) -> dict[str, str]:
    # serde rejects a repeated struct field, so a repeated known parameter is a 400.
    wanted = set(names)
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in wanted:
            if name in out:
                raise bad_request()
            out[name] = value
    return out


@dataclass(frozen=True, slots=True)
class Offset:
    """Continuation token: ``N`` or ``TSMS:N`` (doc §5.1)."""

    skip: int
    ts: int | None = None

    def __str__(self) -> str:
        return str(self.skip) if self.ts is None else f"{self.ts}:{self.skip}"


def parse_offset(text: str) -> Offset:
    ts_text, sep, skip_text = text.rpartition(":")
    if not skip_text.isascii() or not skip_text.isdigit() or len(skip_text) > 19:
        raise bad_request()
    skip = int(skip_text)
    if skip > _U63_MAX:
        raise bad_request()
    if not sep:
        return Offset(skip)
    try:
        return Offset(skip, timestamps.parse_ms(ts_text))
    except BadTimestamp as exc:
        raise bad_request() from exc


def _parse_uint(text: str, maximum: int) -> int:
    digits = text[1:] if text.startswith("+") else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 20:
        raise bad_request()
    value = int(digits)
    if value > maximum:
        raise bad_request()
    return value


def parse_ids(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",")]
    ids = [i for i in ids if i]
    if len(ids) > MAX_IDS or not all(valid_bso_id(i) for i in ids):
        raise bad_request()
    return ids


def _parse_ts(text: str) -> int:
    try:
        return timestamps.parse(text)
    except BadTimestamp as exc:
        raise bad_request() from exc


@dataclass(frozen=True, slots=True)
class BsoQuery:
    ids: list[str] = field(default_factory=list)
    newer: int | None = None
    older: int | None = None
    full: bool = False
    limit: int | None = None
    offset: Offset | None = None
    sort: str | None = None


def parse_bso_query(pairs: Iterable[tuple[str, str]]) -> BsoQuery:
    """BSO query parameters (doc §5.1); unknown parameters are ignored."""
    args = _single(pairs, ("ids", "newer", "older", "full", "limit", "offset", "sort"))
    sort = args.get("sort")
    if sort is not None and sort not in (NEWEST, OLDEST, INDEX):
        raise bad_request()
    q = BsoQuery(
        ids=parse_ids(args["ids"]) if "ids" in args else [],
        newer=_parse_ts(args["newer"]) if "newer" in args else None,
        older=_parse_ts(args["older"]) if "older" in args else None,
        full="full" in args,
        limit=_parse_uint(args["limit"], _U32_MAX) if "limit" in args else None,
        offset=parse_offset(args["offset"]) if "offset" in args else None,
        sort=sort,
    )
    if q.offset is not None and q.offset.ts is not None and sort != INDEX:
        if q.newer is not None:
            if q.offset.ts < q.newer:
                raise bad_request()
        elif q.older is not None and q.offset.ts > q.older:
            raise bad_request()
    return q


@dataclass(frozen=True, slots=True)
class BatchParams:
    """``batch``/``commit`` (doc §6.3). ``id`` None means "open a new batch"."""

    id: int | None
    commit: bool

    @property
    def is_plain_post(self) -> bool:
        # batch=true&commit=true is just a POST (RS takes the same shortcut).
        return self.id is None and self.commit


def parse_batch_params(pairs: Iterable[tuple[str, str]]) -> BatchParams | None:
    args = _single(pairs, ("batch", "commit"))
    if not args:
        return None
    if "batch" not in args:
        raise bad_request()
    commit = args.get("commit")
    if commit is not None and not _TRUE_RE.fullmatch(commit):
        raise bad_request()
    batch = args["batch"]
    if batch == "" or _TRUE_RE.fullmatch(batch):
        return BatchParams(None, commit is not None)
    if not BATCH_ID_RE.fullmatch(batch):
        raise bad_request()
    return BatchParams(int(batch), commit is not None)


# --------------------------------------------------------------------------- headers

HeaderGetter = Callable[[str], "str | None"]


@dataclass(frozen=True, slots=True)
class Precondition:
    modified_since: int | None = None
    unmodified_since: int | None = None

    def verdict(self, resource_ts: int) -> int | None:
        """304/412 if the request must stop here, else None (doc §4)."""
        if self.modified_since is not None and resource_ts <= self.modified_since:
            return 304
        if self.unmodified_since is not None and resource_ts > self.unmodified_since:
            return 412
        return None


NO_PRECONDITION = Precondition()


def parse_preconditions(get: HeaderGetter) -> Precondition:
    ims = get("X-If-Modified-Since")
    ius = get("X-If-Unmodified-Since")
    if ims is not None and ius is not None:
        raise bad_request()
    if ims is not None:
        return Precondition(modified_since=_parse_ts(ims.strip()))
    if ius is not None:
        return Precondition(unmodified_since=_parse_ts(ius.strip()))
    return NO_PRECONDITION


def check_declared_sizes(get: HeaderGetter, limits: StorageLimits) -> None:
    """X-Weave-(Total-)Records/Bytes against the limits, inclusive (doc §6.1 step 8)."""
    checks = (
        ("X-Weave-Records", limits.max_post_records),
        ("X-Weave-Bytes", limits.max_post_bytes),
        ("X-Weave-Total-Records", limits.max_total_records),
        ("X-Weave-Total-Bytes", limits.max_total_bytes),
    )
    for name, limit in checks:
        value = get(name)
        if value is None:
            continue
        if _parse_uint(value, _U32_MAX) > limit:
            raise ProtocolError(400, SIZE_LIMIT)


def body_kind(content_type: str | None) -> str | None:
    """JSON or NEWLINES for an accepted Content-Type (parameters ignored), else None."""
    if not content_type:
        return None
    m = _MEDIA_RE.fullmatch(content_type.split(";", 1)[0].strip())
    if not m:
        return None
    essence = f"{m.group(1)}/{m.group(2)}".lower()
    if essence in (JSON, "text/plain"):
        return JSON
    if essence == NEWLINES:
        return NEWLINES
    return None


def negotiate(accept: str | None) -> str | None:
    """Reply format for GET collection: JSON, NEWLINES, or None for 406 (doc §5.1).

    Mirrors RS ``get_accepted``: an unparsable header means JSON; candidates are tried
    by quality; ``*/*`` means JSON; ``text/plain`` is "accepted" and then refused.
    """
    if accept is None:
        return JSON
    candidates: list[tuple[float, str]] = []
    for part in accept.split(","):
        part = part.strip()
        if not part:
            continue
        media, *params = [p.strip() for p in part.split(";")]
        if not _MEDIA_RE.fullmatch(media):
            return JSON
        quality = 1.0
        extra = False
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    return JSON
                if not 0.0 <= quality <= 1.0:
                    return JSON
            elif param:
                extra = True
        candidates.append((quality, "" if extra else media.lower()))
    if not candidates:
        return JSON
    candidates.sort(key=lambda c: -c[0])  # stable: equal qualities keep header order
    for _, media in candidates:
        if media == "*/*":
            return JSON
        if media in (JSON, NEWLINES):
            return media
        if media == "text/plain":
            return None
    return None


# --------------------------------------------------------------------------- bodies


@dataclass(frozen=True, slots=True)
class BsoIn:
    """One incoming BSO; None means "not sent" (RS treats null the same way)."""

    id: str
    payload: str | None = None
    sortindex: int | None = None
    ttl: int | None = None

    @property
    def payload_size(self) -> int | None:
        # UTF-8 bytes; an ASCII str (every encrypted payload) is one byte per character,
        # and str.isascii() is O(1): no 450-byte copy per record per call.
        if self.payload is None:
            return None
        return len(self.payload) if self.payload.isascii() else len(self.payload.encode())


@dataclass
class PostItems:
    valid: list[BsoIn] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


_MAYBE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads(text: str) -> Any:
    """Strict JSON as serde_json reads it: no NaN/Infinity, no lone surrogates."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise invalid_bso() from exc
    if _MAYBE_SURROGATE.search(text) and _has_lone_surrogate(value):
        raise invalid_bso()
    return value


def decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid_bso() from exc


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def bso_from_fields(obj: dict[str, Any], bso_id: str) -> BsoIn | str:
    """Type and range rules of §7; the failure reason RS reports per POST item."""
    if not BSO_KEYS.issuperset(obj):  # one C-level check on the common path
        return f"unknown field {min(k for k in obj if k not in BSO_KEYS)}"
    payload = obj.get("payload")
    sortindex = obj.get("sortindex")
    ttl = obj.get("ttl")
    if payload is not None and not isinstance(payload, str):
        return "invalid json"
    if sortindex is not None and not (_is_int(sortindex) and _I32[0] <= sortindex <= _I32[1]):
        return "invalid json"
    if ttl is not None and not (_is_int(ttl) and 0 <= ttl <= _U32_MAX):
        return "invalid json"
    if not valid_bso_id(bso_id):
        return "invalid bso: id: Invalid id"
    if sortindex is not None and abs(sortindex) > MAX_SORTINDEX:
        return "invalid bso: sortindex: invalid value"
    if ttl is not None and ttl > MAX_TTL:
        return "invalid bso: ttl: Invalid TTL"
    return BsoIn(bso_id, payload, sortindex, ttl)


def known_bad_payload(collection: str, payload: str | None) -> bool:
    return collection == "crypto" and payload is not None and bool(
        _KNOWN_BAD_PAYLOAD.search(payload))


def parse_put_body(body: bytes, kind: str, url_id: str, collection: str,
                   limits: StorageLimits) -> BsoIn:
    """PUT body (doc §5.3): any failure is 400/8. The URL id wins over a body id."""
    if kind != JSON:
        raise invalid_bso()
    obj = loads(decode(body))
    if not isinstance(obj, dict):
        raise invalid_bso()
    body_id = obj.get("id")
    if body_id is not None and not valid_bso_id(body_id):
        raise invalid_bso()
    bso = bso_from_fields(obj, url_id)
    if isinstance(bso, str):
        raise invalid_bso()
    size = bso.payload_size
    if size is not None and size > limits.max_record_payload_bytes:
        raise invalid_bso()
    if known_bad_payload(collection, bso.payload):
        raise invalid_bso()
    return bso


def _post_values(text: str, kind: str) -> list[Any]:
    if kind == NEWLINES:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the segment after a final "\n" is not a line
        return [loads(line) for line in lines]
    values = loads(text)
    if not isinstance(values, list):
        raise invalid_bso()
    return values


def parse_post_body(body: bytes, kind: str, collection: str,
                    limits: StorageLimits) -> PostItems:
    """POST body (doc §6.1 steps 2–7): whole-request 400/8 or per-item failures."""
    values = _post_values(decode(body), kind)
    out = PostItems()
    seen: set[str] = set()
    total = 0
    for value in values:
        if not isinstance(value, dict):
            raise invalid_bso()
        bso_id = value.get("id")
        if not isinstance(bso_id, str) or bso_id in seen:
            raise invalid_bso()
        seen.add(bso_id)
        bso = bso_from_fields(value, bso_id)
        if isinstance(bso, str):
            out.failed[bso_id] = bso
            continue
        size = bso.payload_size or 0
        total += size
        if size <= limits.max_record_payload_bytes and total <= limits.max_post_bytes:
            out.valid.append(bso)
        else:
            out.failed[bso_id] = "retry bytes"
    if any(known_bad_payload(collection, b.payload) for b in out.valid):
        raise invalid_bso()
    while len(out.valid) > limits.max_post_records:
        out.failed[out.valid.pop().id] = "retry bso"
    return out


# --------------------------------------------------------------------------- listings


def next_offset(q: BsoQuery, limit: int, modifieds: list[int]) -> str | None:
    """X-Weave-Next-Offset for a page that had more rows after it (doc §5.1).

    ``modifieds`` are the page's items in order. Full listings sorted by time get a
    ``"<ms>:<skip>"`` keyset token; id-only listings and sort=index get ``old + size``.
    """
    prev = q.offset or Offset(0)
    if not q.full or q.sort == INDEX:
        skip = prev.skip + len(modifieds)
        return str(Offset(skip, prev.ts if q.sort != INDEX else None))
    bound = modifieds[-1]
    skip = 0
    for m in reversed(modifieds):
        if m != bound:
            break
        skip += 1
    if skip == len(modifieds) and prev.ts == bound:
        skip += prev.skip
    return str(Offset(skip, bound))


# --------------------------------------------------------------------------- rendering


def json_string(value: str) -> str:
    # What json.dumps(value, ensure_ascii=False) returns for a str, without building a
    # JSONEncoder per call (~2 µs each: most of what rendering a listing used to cost).
    if type(value) is str:
        return _encode_string(value)
    return json.dumps(value, ensure_ascii=False)


# The SQL form of render_bso, evaluated by SQLite in the reader thread (GIL released)
# and returned as UTF-8 bytes: 10,000 rows rendered in Python cost ~5 µs each.
# json_quote() escapes exactly as json.dumps(ensure_ascii=False) does (", \, \b \f \n
# \r \t, other controls as \u00xx; tested over every code point), modified is
# timestamps.fmt, sortindex an integer.
RENDER_BSO_SQL = (
    "CAST('{\"id\":' || json_quote(id) || ',\"modified\":' || (modified / 1000) || '.' || "
    "printf('%02d', (modified % 1000) / 10) || ',\"payload\":' || json_quote(payload) || "
    "CASE WHEN sortindex IS NULL THEN '}' ELSE ',\"sortindex\":' || sortindex || '}' END "
    "AS BLOB)")


def render_bso(bso_id: str, modified: int, payload: str, sortindex: int | None) -> str:
    """A BSO as RS sends it: id, modified (two decimals), payload, sortindex if set."""
    out = (f'{{"id":{json_string(bso_id)},"modified":{timestamps.fmt(modified)},'
           f'"payload":{json_string(payload)}')
    if sortindex is not None:
        out += f',"sortindex":{sortindex}'
    return out + "}"


def render_list(items: list[str], kind: str) -> str:
    """Already-rendered JSON values as a JSON array or as application/newlines."""
    if kind == NEWLINES:
        return "".join(item + "\n" for item in items)
    return "[" + ",".join(items) + "]"


def render_list_bytes(items: list[bytes], kind: str) -> bytes:
    """render_list for values already encoded as UTF-8 (the SQL-rendered BSOs)."""
    if kind == NEWLINES:
        return b"\n".join(items) + b"\n" if items else b""
    return b"[" + b",".join(items) + b"]"


def render_object(pairs: Iterable[tuple[str, str]]) -> str:
    """{key: raw JSON fragment}."""
    return "{" + ",".join(f"{json_string(k)}:{v}" for k, v in pairs) + "}"


def render_post_result(success: list[str], failed: Mapping[str, str], *,
                       modified: int | None = None, batch: str | None = None) -> str:
    pairs: list[tuple[str, str]] = []
    if modified is not None:
        pairs.append(("modified", timestamps.fmt(modified)))
    pairs.append(("success", json.dumps(success, ensure_ascii=False, separators=(",", ":"))))
    pairs.append(("failed", json.dumps(dict(failed), ensure_ascii=False,
                                       separators=(",", ":"))))
    if batch is not None:
        pairs.append(("batch", json_string(batch)))
    return render_object(pairs)
