"""Sync 1.5 storage (docs: storage-tokenserver.md §1–§9, §11).

``register(app, settings, store)`` mounts the /1.5/<uid> routes, the app-wide
X-Weave-Timestamp and CORS hooks, and the hourly purge of expired BSOs and stale batches.
"""

from __future__ import annotations

import logging

import trio
from quart import Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from .. import dockerflow
from ..db.engine import Database
from ..settings import Settings
from . import batch, store
from .routes import METHODS, Storage
from .timestamps import fmt, now_ms, parse

log = logging.getLogger("foxden.storage")

PURGE_INTERVAL_SECONDS = 3600
PURGE_FIRST_DELAY_SECONDS = 60
CORS_MAX_AGE = "1728000"
CORS_METHODS = "DELETE, GET, POST, PUT"
# DIVERGENCE: RS's list lacks the X-If-* precondition headers a browser client would need.
# Preflights are answered without vetting the requested method/headers; the browser
# enforces the lists we return.
CORS_HEADERS = ", ".join((
    "Authorization", "Content-Type", "User-Agent", "X-Last-Modified", "X-Weave-Timestamp",
    "X-Weave-Next-Offset", "X-Weave-Records", "X-Weave-Bytes", "X-Weave-Total-Records",
    "X-Weave-Total-Bytes", "X-If-Modified-Since", "X-If-Unmodified-Since",
))


def _fxa_path(path: str) -> bool:
    # FxA's own surfaces answer CORS and timestamps themselves (later work).
    return path == "/v1" or path.startswith(("/v1/", "/oauth/", "/profile/"))


def register(app: QuartTrio, settings: Settings, db: Database) -> None:
    storage = Storage(settings, db)
    app.extensions["foxden.storage"] = storage
    # BSO ids may contain "/" (any printable ASCII): never redirect "//" away.
    app.url_map.merge_slashes = False
    app.add_url_rule("/1.5/<path:rest>", endpoint="storage", view_func=storage.dispatch,
                     methods=METHODS)

    @app.before_request
    async def _start() -> Response | None:
        g.weave_start = now_ms()
        if (request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
                and not _fxa_path(request.path)):
            return _preflight()
        return None

    @app.after_request
    async def _weave_headers(resp: Response) -> Response:
        await _drain_body(resp)
        path = request.path
        if _fxa_path(path):
            return resp
        origin = request.headers.get("Origin")
        if origin is not None:
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers.add("Vary", "Origin")
        if path.lower() not in dockerflow.PATHS:
            resp.headers["X-Weave-Timestamp"] = fmt(_weave_timestamp(resp))
        return resp

    @app.before_serving
    async def _start_purge() -> None:
        app.nursery.start_soon(purge_loop, db)


async def _drain_body(resp: Response) -> None:
    """Consume a request body the handler never read (early 401/400/415/413).

    Hypercorn will not start the next request on a keep-alive connection until the last
    body has been received, and nobody reads it once the handler returned: the client's
    next request would hang. Small bodies are drained; one we will not accept at all
    (over MAX_CONTENT_LENGTH, or too slow) closes the connection instead.
    """
    if g.get("body_read"):
        return  # Storage._body already received all of it
    if request.content_length == 0 or (request.content_length is None and
                                       "chunked" not in request.headers.get(
                                           "Transfer-Encoding", "").lower()):
        return
    try:
        await request.get_data()
    except HTTPException:
        resp.headers["Connection"] = "close"


def _preflight() -> Response:
    resp = Response(b"", status=200)
    resp.headers.pop("Content-Type", None)
    resp.headers["Access-Control-Allow-Methods"] = CORS_METHODS
    resp.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
    resp.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return resp


def _weave_timestamp(resp: Response) -> int:
    """max(request time (or the write's T), X-Last-Modified) (doc §3)."""
    ts = max(getattr(g, "weave_start", 0), getattr(g, "storage_ts", 0)) or now_ms()
    last_modified = resp.headers.get("X-Last-Modified")
    if last_modified:
        try:
            ts = max(ts, parse(last_modified))
        except ValueError:
            pass
    return ts


async def purge_all(db: Database, now: int | None = None, chunk: int = store.PURGE_CHUNK) -> int:
    """Purge expired BSOs and batches older than 2 h, one bounded transaction at a time."""
    now = now_ms() if now is None else now
    total = 0
    for step in (store.purge_expired, batch.purge_stale):
        while True:
            n = await db.write(lambda conn, step=step: step(conn, now, chunk))
            total += n
            if n < chunk:
                break
            await trio.sleep(0)  # let queued requests take the writer between chunks
    return total


async def purge_loop(db: Database, interval: float = PURGE_INTERVAL_SECONDS,
                     first_delay: float = PURGE_FIRST_DELAY_SECONDS) -> None:
    await trio.sleep(first_delay)
    while True:
        try:
            removed = await purge_all(db)
            if removed:
                log.info("storage purge removed %d rows", removed)
        except Exception as exc:  # noqa: BLE001 - a failed purge must not stop serving
            log.error("storage purge failed: %s", type(exc).__name__)
        await trio.sleep(interval)


__all__ = ["purge_all", "purge_loop", "register"]
