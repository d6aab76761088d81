"""Background jobs, in the serve nursery: purges, certificate renewal, mDNS refresh.

Each job runs on its own period, catches and logs its own failures (a failing purge must
not take the server down) and stops when the shutdown event is set.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import trio

from . import mdns, tls

log = logging.getLogger("foxden.jobs")

PURGE_EVERY = 3600.0
# Cheap (reads one file, lists addresses): often enough that a new DHCP lease is covered
# by the certificate and announced on mDNS within minutes.
ADDRESS_CHECK_EVERY = 300.0

# Modules of server/ that expose `purge_expired(conn, now_ms, limit) -> int`.  Expired
# BSOs and stale batches are purged by the storage blueprint's own loop (it runs in this
# same Trio nursery, under Hypercorn), so they are not repeated here.
PURGERS = ("server.accounts.tokens", "server.accounts.commands", "server.oauth.store")


@dataclass
class JobContext:
    runtime: Any
    plan: Any
    hyper: Any
    ca: tls.CertificateAuthority | None
    advertiser: mdns.Advertiser | None
    announcement: mdns.Announcement | None


async def purge(ctx: JobContext) -> dict[str, int]:
    """One round over every purger, in bounded chunks so the writer is never held long."""
    counts: dict[str, int] = {}
    now_ms = int(time.time() * 1000)
    for name in PURGERS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        fn = getattr(module, "purge_expired", None)
        if fn is None:
            continue
        total = 0
        for _ in range(1000):  # bounded: at most 1000 chunks per round
            n = await ctx.runtime.db.write(lambda c, fn=fn: fn(c, now_ms, 5000))
            total += n or 0
            if not n:
                break
            await trio.sleep(0)
        counts[name] = total
    if any(counts.values()):
        log.info("purged %s", counts)
    return counts


async def renew_certificate(ctx: JobContext) -> bool:
    """Re-issue when expiring or when LAN addresses changed; load it into the live server."""
    plan = ctx.plan
    if ctx.ca is None or not plan.tls or plan.own_cert:
        return False
    ips = set(plan.ips)
    if plan.mdns:
        ips = {a for a in ips if a.is_loopback} | {
            a for a in mdns.lan_addresses() if tls.is_lan_address(a)}
    path = ctx.runtime.paths.tls_dir / "server.pem"
    reason = tls.needs_issue(path, ctx.ca, plan.dns, ips)
    if reason is None:
        return False
    log.info("re-issuing the server certificate (%s)", reason)
    tls.issue_server_cert(ctx.ca, ctx.runtime.paths.tls_dir, plan.dns, ips)
    if ctx.hyper.context is not None:
        ctx.hyper.context.load_cert_chain(path)
    plan.ips = ips
    if ctx.advertiser is not None and ctx.announcement is not None:
        ctx.announcement = replace(ctx.announcement, addresses=tuple(
            sorted((a for a in ips if not a.is_loopback), key=lambda a: (a.version, int(a)))))
        await trio.to_thread.run_sync(ctx.advertiser.update, ctx.announcement)
    return True


async def _every(period: float, fn: Callable[[JobContext], Awaitable[object]],
                 ctx: JobContext, first_delay: float) -> None:
    await trio.sleep(first_delay)
    while True:
        try:
            await fn(ctx)
        except Exception:  # noqa: BLE001 - a job logs and tries again next period
            log.exception("background job %s failed", fn.__name__)
        await trio.sleep(period)


async def run_all(ctx: JobContext, stop: trio.Event) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_every, PURGE_EVERY, purge, ctx, 60.0)
        nursery.start_soon(_every, ADDRESS_CHECK_EVERY, renew_certificate, ctx,
                           ADDRESS_CHECK_EVERY)
        await stop.wait()
        nursery.cancel_scope.cancel()
