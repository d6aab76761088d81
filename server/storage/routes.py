"""Sync 1.5 storage endpoints under /1.5/<uid> (docs: storage-tokenserver.md §1–§9).

One Quart rule catches /1.5/<path>; :meth:`Storage.dispatch` matches the path itself
(whole-string regexes, so "A\\n" never routes), answers 404 ``0`` for unknown paths and
405 for other methods on known ones, authenticates, then runs exactly one
``store.read`` or ``store.write`` for the request. Parsing lives in query.py, SQL in
store.py/batch.py; this module only sequences them and builds responses.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import trio
from quart import Response, g, request

from ..crypto import tokenlib
from ..db.engine import Database
from ..errors import WEAVE_SIZE_LIMIT, WeaveError
from ..settings import Settings
from . import batch, query, store
from .auth import AuthError, Identity, StorageAuth, UidMismatch, verify_payload
from .query import JSON, Precondition, ProtocolError
from .timestamps import fmt, now_ms

T = TypeVar("T")

_UID = r"(?P<uid>[0-9]{1,10})"
_COLL = r"(?P<coll>[a-zA-Z0-9._-]{1,32})"
_BSO = r"(?P<bso>[ -~]{1,64})"
# (whole-path pattern, {method: handler name}); other methods on a match are 405.
_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(p), handlers) for p, handlers in (
        (_UID, {"DELETE": "delete_all"}),
        (rf"{_UID}/storage", {"DELETE": "delete_all"}),
        (rf"{_UID}/info/collections", {"GET": "info_collections"}),
        (rf"{_UID}/info/collection_counts", {"GET": "info_counts"}),
        (rf"{_UID}/info/collection_usage", {"GET": "info_usage"}),
        (rf"{_UID}/info/quota", {"GET": "info_quota"}),
        (rf"{_UID}/info/configuration", {"GET": "info_configuration"}),
        (rf"{_UID}/storage/{_COLL}", {"GET": "collection_get", "POST": "collection_post",
                                      "DELETE": "collection_delete"}),
        (rf"{_UID}/storage/{_COLL}/{_BSO}", {"GET": "bso_get", "PUT": "bso_put",
                                             "DELETE": "bso_delete"}),
    )
]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]

# Firefox-iOS < 20 crashes on our headers; RS answers it 503 (web/middleware/rejectua.rs).
# DIVERGENCE: checked on /1.5/ paths only (RS does it app-wide, tokenserver included).
_OLD_IOS_UA = re.compile(r"Firefox-iOS-Sync/(?P<major>[0-9]+)\.[.0-9]+b.*\s\(.+;\siPhone\sOS"
                         r"\s.+\)\s\(.*\)")
# Bodies larger than this are parsed in a worker thread, off the Trio loop.
_THREAD_PARSE_BYTES = 64 * 1024


class _Stop(Exception):
    """Leave the transaction early with a ready response (304/412), writing nothing."""

    def __init__(self, status: int, last_modified: int) -> None:
        super().__init__(status)
        self.status = status
        self.last_modified = last_modified


@dataclass(frozen=True, slots=True)
class Req:
    """What a handler needs from the request, parsed once."""

    uid: int
    coll: str
    bso: str
    pairs: list[tuple[str, str]]
    identity: Identity


def _route(rest: str) -> tuple[re.Match[str], dict[str, str]] | None:
    for pattern, handlers in _ROUTES:
        match = pattern.fullmatch(rest)
        if match:
            return match, handlers
    return None


def _header(name: str) -> str | None:
    return request.headers.get(name)


def _respond(body: str | bytes, status: int = 200, *, last_modified: int | None = None,
             content_type: str = JSON, headers: dict[str, str] | None = None) -> Response:
    data = body.encode("utf-8") if isinstance(body, str) else body
    resp = Response(data, status=status, content_type=content_type)
    if last_modified is not None:
        resp.headers["X-Last-Modified"] = fmt(last_modified)
    if headers:
        resp.headers.update(headers)
    return resp


def _empty(status: int, *, last_modified: int | None = None) -> Response:
    """304/405/412: no body and, as in RS, no Content-Type."""
    resp = Response(b"", status=status)
    resp.headers.pop("Content-Type", None)
    if last_modified is not None:
        resp.headers["X-Last-Modified"] = fmt(last_modified)
    return resp


def _check(pre: Precondition, resource_ts: int) -> None:
    verdict = pre.verdict(resource_ts)
    if verdict is not None:
        raise _Stop(verdict, resource_ts)


class Storage:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.limits = settings.limits
        self.db = db
        self._last_write: dict[int, int] = {}  # uid -> storage ts we committed (_write)
        self.auth = StorageAuth(tokenlib.TokenSecrets.from_master(settings.sync_master_secret),
                                settings.public_host, settings.public_port)

    # ------------------------------------------------------------------ dispatch

    async def dispatch(self, rest: str) -> Response:
        ua = request.headers.get("User-Agent", "")
        m = _OLD_IOS_UA.fullmatch(ua)
        if m and 0 < int(m.group("major")) < 20:
            return WeaveError(503).response()
        found = _route(rest)
        if found is None:
            raise WeaveError(404)
        match, handlers = found
        name = handlers.get(request.method)
        if name is None:
            return _empty(405)
        groups = match.groupdict()
        uid = int(groups["uid"])
        if name == "info_configuration":
            return self.info_configuration()  # no auth, no preconditions (as RS)
        try:
            identity = self._authenticate(uid, allow_expired=name == "info_collections")
            req = Req(uid, groups.get("coll") or "", groups.get("bso") or "",
                      query.query_pairs(request.scope.get("query_string", b"")), identity)
            handler: Callable[[Req], Awaitable[Response]] = getattr(self, name)
            return await handler(req)
        except _Stop as stop:
            return _empty(stop.status, last_modified=stop.last_modified)
        except ProtocolError as exc:
            return WeaveError(exc.status, exc.code).response()
        except AuthError:
            return WeaveError(401).response()
        except UidMismatch:
            return WeaveError(400).response()

    def _authenticate(self, uid: int, *, allow_expired: bool) -> Identity:
        raw_path = request.scope.get("raw_path") or request.path.encode("utf-8")
        target = raw_path.decode("ascii", "replace")
        qs = request.scope.get("query_string", b"")
        if qs:
            target += "?" + qs.decode("ascii", "replace")
        # DIVERGENCE: host/port come from the configured public URL, never from Host or
        # X-Forwarded-*: a MAC made for another host is not ours to accept.
        return self.auth.verify(request.headers.get("Authorization"), request.method,
                                target, uid, allow_expired=allow_expired)

    async def _body(self, identity: Identity) -> tuple[bytes, str]:
        """Content-Type (415), Content-Length (413/17), body, HAWK payload hash (401)."""
        content_type = request.headers.get("Content-Type")
        kind = query.body_kind(content_type)
        if kind is None:
            raise ProtocolError(415)
        length = request.content_length
        if length is not None and length > self.limits.max_request_bytes:
            raise ProtocolError(413, WEAVE_SIZE_LIMIT)
        body = await request.get_data()
        assert isinstance(body, bytes)
        g.body_read = True  # the after_request drain has nothing left to wait for
        verify_payload(identity, content_type or "", body)
        return body, kind

    async def _parse(self, fn: Callable[[], T], size: int) -> T:
        if size > _THREAD_PARSE_BYTES:
            return await trio.to_thread.run_sync(fn)
        return fn()

    # ------------------------------------------------------------------ writes

    async def _write(self, uid: int, fn: Callable[[Any], T]) -> T:
        """``db.write(fn)``, first sleeping in Trio until this user's next 10 ms tick.

        store.write_time waits (holding the one writer) until the clock passes the user's
        storage timestamp. A client that writes back to back would hold the writer for
        most of every tick, stalling every other user; so the wait happens here, outside
        the lock, from the storage timestamp this process last committed for the user. It
        stops ~1 ms short (Trio's timers round up to whole ms) and write_time, which reads
        the real timestamp inside the transaction, still does the exact final wait and
        decides T as before.
        """
        last = self._last_write.get(uid)
        if last is not None:
            wait_ms = (last + 10) - time.time_ns() / 1e6
            if 1.5 < wait_ms <= store.MAX_WAIT_MS:
                await trio.sleep((wait_ms - 1) / 1000)
        return await self.db.write(fn)

    def _advanced(self, uid: int, ts: int) -> None:
        """A committed write moved the user's storage timestamp to ``ts``."""
        if len(self._last_write) > 4096:
            self._last_write.clear()  # only a hint; a household has a handful of uids
        self._last_write[uid] = ts

    # ------------------------------------------------------------------ quota

    def _usage(self, conn: Any, uid: int) -> int:
        # DIVERGENCE: bytes staged in open batches count against the quota too, so
        # batches cannot be used to park unbounded data.
        return store.stored_bytes(conn, uid) + batch.staged_bytes(conn, uid)

    def _enforce(self, conn: Any, uid: int, before: int, ts: int) -> int | None:
        """Check the quota after a write; returns the usage for the header (or None)."""
        if not self.settings.enforce_quota:
            return None
        extra = batch.staged_bytes(conn, uid)
        return store.check_quota(conn, uid, before, ts, self.limits.max_quota_limit, extra)

    def _quota_headers(self, used: int | None) -> dict[str, str]:
        # DIVERGENCE: RS never sends X-Weave-Quota-Remaining; we enforce a quota, so we
        # tell Firefox how much is left (KB, two decimals, as the legacy server did).
        if used is None:
            return {}
        remaining = (self.limits.max_quota_limit - used) / 1024
        return {"X-Weave-Quota-Remaining": f"{remaining:.2f}"}

    # ------------------------------------------------------------------ info

    def info_configuration(self) -> Response:
        body = json.dumps(self.limits.as_json(), separators=(",", ":"))
        return _respond(body, headers={"X-Last-Modified": "0.00"})

    async def _info(self, req: Req, view: Callable[[Any, int], tuple[str, int]],
                    count: bool = True) -> Response:
        pre = query.parse_preconditions(_header)
        now = now_ms()

        def run(conn: Any) -> tuple[int, str, int]:
            ts = store.storage_ts(conn, req.uid)
            _check(pre, ts)
            body, n = view(conn, now)
            return ts, body, n

        ts, body, n = await self.db.read(run)
        headers = {"X-Weave-Records": str(n)} if count else None
        return _respond(body, last_modified=ts, headers=headers)

    async def info_collections(self, req: Req) -> Response:
        def view(conn: Any, now: int) -> tuple[str, int]:
            rows = store.collection_timestamps(conn, req.uid)
            return query.render_object((n, fmt(ts)) for n, ts in rows), len(rows)
        return await self._info(req, view)

    async def info_counts(self, req: Req) -> Response:
        def view(conn: Any, now: int) -> tuple[str, int]:
            rows = store.collection_counts(conn, req.uid, now)
            return query.render_object((n, str(c)) for n, c in rows), len(rows)
        return await self._info(req, view)

    async def info_usage(self, req: Req) -> Response:
        def view(conn: Any, now: int) -> tuple[str, int]:
            rows = store.collection_usage(conn, req.uid, now)
            return query.render_object((n, json.dumps(b / 1024)) for n, b in rows), len(rows)
        return await self._info(req, view)

    async def info_quota(self, req: Req) -> Response:
        limit = self.limits.max_quota_limit / 1024 if self.settings.enforce_quota else None

        def view(conn: Any, now: int) -> tuple[str, int]:
            used = store.live_bytes(conn, req.uid, now) / 1024
            return json.dumps([used, limit], separators=(",", ":")), 2
        return await self._info(req, view, count=False)

    # ------------------------------------------------------------------ DELETE storage

    async def delete_all(self, req: Req) -> Response:
        pre = query.parse_preconditions(_header)

        def run(conn: Any) -> tuple[int, int, int | None]:
            old = store.storage_ts(conn, req.uid)
            _check(pre, old)
            ts = store.write_time(conn, req.uid)
            store.delete_storage(conn, req.uid)
            return old, ts, self._enforce(conn, req.uid, 0, ts)

        old, ts, used = await self._write(req.uid, run)
        self._last_write.pop(req.uid, None)  # the storage timestamp is back to 0
        g.storage_ts = ts
        return _respond("null", last_modified=old, headers=self._quota_headers(used))

    # ------------------------------------------------------------------ collections

    async def collection_get(self, req: Req) -> Response:
        q = query.parse_bso_query(req.pairs)
        reply = query.negotiate(request.headers.get("Accept"))
        if reply is None:
            raise ProtocolError(406)
        pre = query.parse_preconditions(_header)
        now = now_ms()
        cap = self.limits.max_total_records
        # DIVERGENCE: an explicit limit above max_total_records is capped to it (RS
        # honours any limit); clients page on with X-Weave-Next-Offset.
        limit = cap if q.limit is None else min(q.limit, cap)

        def run(conn: Any) -> tuple[int, bytes, int, str | None]:
            cid = store.collection_id(conn, req.coll)
            ts = store.collection_ts(conn, req.uid, cid)
            _check(pre, ts)
            # Full records come back already rendered by SQLite (see RENDER_BSO_SQL).
            rows, more = store.list_bsos(conn, req.uid, cid, q, now, limit, rendered=True)
            if q.full:
                body = query.render_list_bytes([r[0] for r in rows], reply)
            else:
                body = query.render_list([query.json_string(r[0]) for r in rows],
                                         reply).encode("utf-8")
            if more:
                nxt = query.next_offset(q, limit, [int(r[1]) for r in rows])
            else:
                nxt = "0" if q.full and q.limit == 0 else None  # RS quirk for limit=0
            return ts, body, len(rows), nxt

        ts, body, n, nxt = await self.db.read(run)
        headers = {"X-Weave-Records": str(n)}
        if nxt is not None:
            headers["X-Weave-Next-Offset"] = nxt
        return _respond(body, last_modified=ts, content_type=reply, headers=headers)

    async def collection_delete(self, req: Req) -> Response:
        q = query.parse_bso_query(req.pairs)
        pre = query.parse_preconditions(_header)

        def run(conn: Any) -> tuple[int, int, int, int | None]:
            cid = store.collection_id(conn, req.coll)
            old = store.collection_ts(conn, req.uid, cid)
            _check(pre, old)
            ts = store.write_time(conn, req.uid)
            before = self._usage(conn, req.uid)
            if q.ids:
                if cid is None or not old:
                    # Not a collection of this user: nothing to touch (RS answers the
                    # storage timestamp here too).
                    now = store.storage_ts(conn, req.uid)
                    return now, now, ts, None
                store.delete_bsos(conn, req.uid, cid, q.ids)
                store.touch(conn, req.uid, cid, ts)
                return ts, ts, ts, self._enforce(conn, req.uid, before, ts)
            store.delete_collection(conn, req.uid, cid, ts)
            body = store.storage_ts(conn, req.uid)
            return body, old, ts, self._enforce(conn, req.uid, before, ts)

        body, last_modified, ts, used = await self._write(req.uid, run)
        if body == ts:  # the collection (or the tombstone) was touched at ts
            self._advanced(req.uid, ts)
        g.storage_ts = ts
        return _respond(fmt(body), last_modified=last_modified,
                        headers=self._quota_headers(used))

    async def collection_post(self, req: Req) -> Response:
        query.parse_bso_query(req.pairs)  # RS validates these on POST too
        body, kind = await self._body(req.identity)
        items = await self._parse(partial(query.parse_post_body, body, kind, req.coll,
                                          self.limits), len(body))
        params = query.parse_batch_params(req.pairs)
        query.check_declared_sizes(_header, self.limits)
        pre = query.parse_preconditions(_header)
        success = [b.id for b in items.valid]

        def run(conn: Any) -> tuple[int, str, int, int | None]:
            existing = store.collection_id(conn, req.coll)
            old = store.collection_ts(conn, req.uid, existing)
            _check(pre, old)
            ts = store.write_time(conn, req.uid)
            before = self._usage(conn, req.uid)
            if params is None or params.is_plain_post:
                # Collection ids are never deleted: a known id needs no INSERT attempt.
                cid = existing if existing is not None else store.ensure_collection(
                    conn, req.coll)
            elif params.id is None:
                cid = existing if existing is not None else store.ensure_collection(
                    conn, req.coll)
                bid = batch.create(conn, req.uid, cid, ts)
            elif batch.is_open(conn, req.uid, existing, params.id, ts):
                cid, bid = existing, params.id  # type: ignore[assignment]
            else:
                raise query.bad_request()  # unknown, expired, other user's or collection's
            if params is not None and not params.is_plain_post:
                if not params.commit:
                    batch.append(conn, req.uid, bid, items.valid)
                    used = self._enforce(conn, req.uid, before, ts)
                    out = query.render_post_result(success, items.failed, batch=str(bid))
                    return 202, out, old, used
                batch.commit(conn, req.uid, cid, bid, ts)
            store.upsert_many(conn, req.uid, cid, items.valid, ts)
            store.touch(conn, req.uid, cid, ts)
            used = self._enforce(conn, req.uid, before, ts)
            return 200, query.render_post_result(success, items.failed, modified=ts), ts, used

        status, out, last_modified, used = await self._write(req.uid, run)
        if status == 200:  # 202 only staged: the timestamps did not move
            self._advanced(req.uid, last_modified)
        return _respond(out, status, last_modified=last_modified,
                        headers=self._quota_headers(used))

    # ------------------------------------------------------------------ BSOs

    async def bso_get(self, req: Req) -> Response:
        pre = query.parse_preconditions(_header)
        now = now_ms()

        def run(conn: Any) -> tuple[int, str | None]:
            cid = store.collection_id(conn, req.coll)
            ts = store.bso_ts(conn, req.uid, cid, req.bso)
            _check(pre, ts)
            row = store.get_bso(conn, req.uid, cid, req.bso, now)
            return ts, None if row is None else query.render_bso(*row)

        ts, out = await self.db.read(run)
        if out is None:
            raise WeaveError(404)
        return _respond(out, last_modified=ts)

    async def bso_put(self, req: Req) -> Response:
        body, kind = await self._body(req.identity)
        bso = await self._parse(partial(query.parse_put_body, body, kind, req.bso, req.coll,
                                        self.limits), len(body))
        pre = query.parse_preconditions(_header)

        def run(conn: Any) -> tuple[int, int | None]:
            existing = store.collection_id(conn, req.coll)
            _check(pre, store.bso_ts(conn, req.uid, existing, req.bso))
            ts = store.write_time(conn, req.uid)
            before = self._usage(conn, req.uid)
            cid = store.ensure_collection(conn, req.coll)
            store.upsert(conn, req.uid, cid, bso, ts)
            store.touch(conn, req.uid, cid, ts)
            return ts, self._enforce(conn, req.uid, before, ts)

        ts, used = await self._write(req.uid, run)
        self._advanced(req.uid, ts)
        return _respond(fmt(ts), last_modified=ts, headers=self._quota_headers(used))

    async def bso_delete(self, req: Req) -> Response:
        pre = query.parse_preconditions(_header)

        def run(conn: Any) -> tuple[int, int, int | None]:
            cid = store.collection_id(conn, req.coll)
            old = store.bso_ts(conn, req.uid, cid, req.bso)
            _check(pre, old)
            ts = store.write_time(conn, req.uid)
            before = self._usage(conn, req.uid)
            if cid is None or not store.delete_bso(conn, req.uid, cid, req.bso, ts):
                raise ProtocolError(404)
            store.touch(conn, req.uid, cid, ts)
            return old, ts, self._enforce(conn, req.uid, before, ts)

        old, ts, used = await self._write(req.uid, run)
        self._advanced(req.uid, ts)
        g.storage_ts = ts
        return _respond(query.render_object([("modified", fmt(ts))]), last_modified=old,
                        headers=self._quota_headers(used))

