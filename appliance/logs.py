"""Logging: a file and a ring buffer for the tray, a redacting filter, a debug request trace.

Foxden never logs passwords, authPW, tokens, keys or payloads.  Code does not pass them to
the logger in the first place; the :class:`Redactor` is the second line of defence that
scrubs anything shaped like one (long hex/base64 runs, Authorization values, JSON fields
with secret names) from every record, including third-party libraries' records.
"""

from __future__ import annotations

import collections
import logging
import logging.handlers
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

SECRET_FIELDS = ("authPW", "password", "sessionToken", "keyFetchToken", "access_token",
                 "refresh_token", "code", "code_verifier", "keys_jwe", "token", "payload",
                 "wrapKb", "unwrapBKey", "kB", "key", "id_token", "passphrase", "secret")
_PATTERNS = [
    (re.compile(r"(?im)(authorization[\"']?\s*[:=]\s*).*$"), r"\1[redacted]"),
    (re.compile(r"(?i)(\bHawk\s+)id=\"[^\"]*\"[^\n]*"), r"\1[redacted]"),
    (re.compile(r"(?i)\bBearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [redacted]"),
    (re.compile(r"(?i)([\"']?(?:" + "|".join(SECRET_FIELDS) + r")[\"']?\s*[:=]\s*)"
                r"(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s,&}]+)"), r"\1[redacted]"),
    (re.compile(r"\b[0-9a-fA-F]{32,}\b"), "[hex redacted]"),
    (re.compile(r"\b[A-Za-z0-9_-]{40,}={0,2}"), "[token redacted]"),
]


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class Redactor(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is not our concern here
            return True
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            # Keep the type and place, drop the exception text (it may quote input).
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class RingBuffer(logging.Handler):
    """The last N formatted lines, for `foxden status` and the tray's log view."""

    def __init__(self, capacity: int = 1000) -> None:
        super().__init__()
        self.lines: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append({"time": record.created, "level": record.levelname,
                           "logger": record.name, "message": self.format(record)})


RING = RingBuffer()
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(level: str, log_dir: Path | None = None) -> None:
    root = logging.getLogger()
    root.setLevel(level.upper())
    for h in list(root.handlers):
        root.removeHandler(h)
    handlers: list[logging.Handler] = [logging.StreamHandler(), RING]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        handlers.append(logging.handlers.RotatingFileHandler(
            log_dir / "foxden.log", maxBytes=5_000_000, backupCount=3, encoding="utf-8"))
    redactor = Redactor()
    for h in handlers:
        h.setFormatter(logging.Formatter(FORMAT))
        h.addFilter(redactor)
        root.addHandler(h)
    # Libraries that log request data at debug level stay at info.
    for noisy in ("hpack", "h2", "h11", "zeroconf", "httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))


_SAFE_QUERY = {"full", "limit", "newer", "older", "sort", "offset", "batch", "commit",
               "keys", "service", "index", "filterIdleDevicesTimestamp", "duration",
               "context", "entrypoint", "action", "response_type", "access_type",
               "code_challenge_method", "client_id", "v"}


def describe_query(query: bytes) -> str:
    parts = []
    for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        parts.append(f"{k}={v if k in _SAFE_QUERY else '…'}")
    return "&".join(parts)


class TraceMiddleware:
    """`--log-level debug`: one line per request with method, path, safe query parameters,
    status and time; header values and bodies never appear."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log = logging.getLogger("foxden.trace")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.log.isEnabledFor(logging.DEBUG):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: list[int] = []

        async def traced_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, traced_send)
        finally:
            auth = next((v for k, v in scope.get("headers", []) if k == b"authorization"), b"")
            scheme = auth.split(b" ", 1)[0].decode("latin-1") if auth else "-"
            query = describe_query(scope.get("query_string", b""))
            path = scope.get("path", "")
            if path.startswith("/1.5/"):
                path = re.sub(r"^(/1\.5/\d+/storage/[^/]+)/.+$", r"\1/<id>", path)
            self.log.debug("%s %s%s auth=%s -> %s in %.1f ms", scope.get("method"), path,
                           f"?{query}" if query else "", scheme,
                           status[0] if status else "-",
                           (time.perf_counter() - started) * 1000)
