"""`foxden serve`: one Trio nursery holding the HTTPS listener, the plain-HTTP hand-off,
mDNS and the background jobs.

Order matters (Home Assistant's rule): HTTP first, then mDNS, so nothing on the LAN is told
about a server that does not answer yet; on shutdown mDNS goes first, then the listeners
drain, then the database closes, so every acknowledged write is on disk.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.config import Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from . import jobs, mdns, tls
from .admin import api as admin_api
from .admin import auth as admin_auth
from .config import Config, ConfigError
from .handoff import HandoffApp
from .languard import LanGuard
from .lock import DataDirLock
from .logs import TraceMiddleware
from .paths import Paths
from .runtime import Runtime, build
from .service import ListenError, bind, hypercorn_config, parse_listen

log = logging.getLogger("foxden.serve")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def host_label() -> str:
    """This machine's name as one DNS label (what <label>.local announces)."""
    raw = socket.gethostname().split(".")[0].lower()
    label = re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")[:63]
    return label or "foxden"


@dataclass
class Plan:
    tls: bool
    main: socket.socket
    handoff: socket.socket | None
    public_url: str
    label: str
    dns: set[str] = field(default_factory=set)
    ips: set[IPAddress] = field(default_factory=set)
    mdns: bool = False
    own_cert: tuple[str, str] | None = None
    port: int = 0
    handoff_port: int = 0

    def __post_init__(self) -> None:
        # Read now: Hypercorn closes the sockets on shutdown.
        self.port = int(self.main.getsockname()[1])
        if self.handoff is not None:
            self.handoff_port = int(self.handoff.getsockname()[1])


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind_preferred(host: str, ports: tuple[int, int]) -> socket.socket:
    """Bind the first port if we may, else the fallback (443 → 8443, 80 → 8080)."""
    try:
        return bind(host, ports[0])
    except ListenError as exc:
        log.info("port %d unavailable (%s); using %d", ports[0], exc, ports[1])
        return bind(host, ports[1])


def make_plan(config: Config, listen: str | None, public_url: str | None,
              tls_mode: str | None) -> Plan:
    use_tls = (tls_mode or config.tls) == "on"
    label = host_label()
    listen = listen or config.listen
    if use_tls:
        if listen:
            main = bind(*parse_listen(listen))
        else:
            main = _bind_preferred("0.0.0.0", (443, 8443))  # noqa: S104 - the LAN is the point
    else:
        host, port = parse_listen(listen or "127.0.0.1:8000")
        if not _is_loopback(host):
            raise ConfigError("--tls off is only allowed on a loopback address "
                              "(phones and other PCs need HTTPS)")
        main = bind(host, port)
    main_host = main.getsockname()[0]
    loop_only = _is_loopback(main_host)
    handoff = None
    if use_tls and not loop_only and config.http_listen != "off":
        try:
            if config.http_listen:
                handoff = bind(*parse_listen(config.http_listen))
            else:
                handoff = _bind_preferred("0.0.0.0", (80, 8080))  # noqa: S104
        except ListenError as exc:
            log.warning("no plain-HTTP hand-off page: %s", exc)
    port = main.getsockname()[1]
    name = config.public_name or (f"{label}.local" if use_tls and not loop_only else None)
    if public_url or config.public_url:
        url = (public_url or config.public_url or "").rstrip("/")
    else:
        scheme = "https" if use_tls else "http"
        host = name or ("localhost" if use_tls else main_host)
        default = 443 if use_tls else 80
        url = f"{scheme}://{host}" + ("" if port == default else f":{port}")
    dns = {f"{label}.local", label, "localhost"}
    if config.public_name:
        dns.add(config.public_name.lower())
    ips: set[IPAddress] = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    if not loop_only:
        ips.update(a for a in mdns.lan_addresses() if tls.is_lan_address(a))
    own = (config.cert_file, config.key_file) if config.cert_file else None
    return Plan(use_tls, main, handoff, url, label, dns, ips,
                mdns=config.mdns and use_tls and not loop_only, own_cert=own)


class _LiveTLSConfig(HyperConfig):
    """Hypercorn config whose SSL context we keep, so a renewed certificate is loaded into
    the running server (new handshakes use it) without a restart."""

    context: ssl.SSLContext | None = None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        self.context = super().create_ssl_context()
        return self.context


def _hyper(cert: Path | None, key: Path | None) -> _LiveTLSConfig:
    base = hypercorn_config()
    cfg = _LiveTLSConfig()
    for attr in ("accesslog", "errorlog", "keep_alive_timeout", "graceful_timeout",
                 "include_server_header", "websocket_max_message_size",
                 "websocket_ping_interval"):
        setattr(cfg, attr, getattr(base, attr))
    if cert is not None:
        cfg.certfile = str(cert)
        cfg.keyfile = str(key or cert)
    return cfg


def ensure_certificate(paths: Paths, plan: Plan) -> tuple[tls.CertificateAuthority, Path]:
    ca = tls.ensure_ca(paths.tls_dir, plan.label)
    cert = paths.tls_dir / "server.pem"
    reason = tls.needs_issue(cert, ca, plan.dns, plan.ips)
    if reason:
        log.info("issuing the server certificate (%s)", reason)
        tls.issue_server_cert(ca, paths.tls_dir, plan.dns, plan.ips)
    return ca, cert


async def run(runtime: Runtime, plan: Plan, *, stop: trio.Event,
              task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    from server.app import create_app

    config = runtime.config
    quart_app = create_app(runtime.settings, runtime.db)
    admin_ctx = admin_api.AdminContext(
        runtime=runtime, token=admin_auth.load_or_create_token(runtime.paths.admin_token))
    admin_api.install(quart_app, admin_ctx)
    app = LanGuard(TraceMiddleware(quart_app), allow_public=config.allow_public_clients)
    ca: tls.CertificateAuthority | None = None
    cert: Path | None = None
    if plan.tls:
        if plan.own_cert:
            cert, key = Path(plan.own_cert[0]), Path(plan.own_cert[1])
        else:
            ca, cert = ensure_certificate(runtime.paths, plan)
            key = cert
        hyper = _hyper(cert, key)
        sockets = Sockets(secure_sockets=[plan.main], insecure_sockets=[], quic_sockets=[])
    else:
        hyper = _hyper(None, None)
        sockets = Sockets(secure_sockets=[], insecure_sockets=[plan.main], quic_sockets=[])

    advertiser: mdns.Advertiser | None = None
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(_serve, app, hyper, sockets, stop)
            if plan.handoff is not None and ca is not None:
                handoff = HandoffApp(plan.public_url, ca.cert, ca.fingerprint)
                await nursery.start(
                    _serve, handoff, _hyper(None, None),
                    Sockets(secure_sockets=[], insecure_sockets=[plan.handoff],
                            quic_sockets=[]), stop)
            # HTTP answers now; only then tell the LAN about it.
            announcement = None
            if plan.mdns:
                advertiser = mdns.Advertiser(interfaces=[
                    str(a) for a in plan.ips if a.version == 4 and not a.is_loopback])
                announcement = mdns.Announcement(
                    instance=f"Foxden on {plan.label}", host_label=plan.label,
                    port=plan.port, addresses=tuple(a for a in sorted(
                        plan.ips, key=lambda a: (a.version, int(a))) if not a.is_loopback),
                    public_url=plan.public_url, version=runtime.settings.version,
                    ca_fingerprint=ca.fingerprint if ca else "",
                    handoff_url=_handoff_url(plan))
                await trio.to_thread.run_sync(advertiser.register, announcement)
            admin_ctx.status.update(_status(plan, ca, cert, advertiser))
            nursery.start_soon(jobs.run_all, jobs.JobContext(
                runtime=runtime, plan=plan, hyper=hyper, ca=ca,
                advertiser=advertiser, announcement=announcement), stop)
            task_status.started(plan.public_url)
    finally:
        if advertiser is not None:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(advertiser.close)


def _status(plan: Plan, ca: tls.CertificateAuthority | None, cert: Path | None,
            advertiser: mdns.Advertiser | None) -> dict[str, object]:
    """What the admin API's /status reports about the listeners (fixed at start-up)."""
    out: dict[str, object] = {"tls": plan.tls, "port": plan.port,
                              "handoffUrl": _handoff_url(plan) or None,
                              "mdns": advertiser.registered_name if advertiser else None}
    if ca is not None:
        out["caFingerprint"] = ca.fingerprint
    if cert is not None and cert.exists():
        from cryptography import x509

        leaf = x509.load_pem_x509_certificate(cert.read_bytes())
        dns, ips = tls.cert_names(leaf)
        out["certificate"] = {"notAfter": leaf.not_valid_after_utc.isoformat(),
                              "names": sorted(dns) + sorted(str(i) for i in ips)}
    return out


def _handoff_url(plan: Plan) -> str:
    if plan.handoff is None:
        return ""
    port = plan.handoff_port
    host = plan.public_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
    return f"http://{host}" + ("" if port == 80 else f":{port}") + "/"


async def _serve(app: object, hyper: HyperConfig, sockets: Sockets, stop: trio.Event,
                 task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await worker_serve(
        wrap_app(app, hyper.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
        hyper, sockets=sockets, shutdown_trigger=stop.wait,
        task_status=_Started(task_status),
    )


class _Started:
    """Adapts Hypercorn's task_status (which reports binds) to a plain started()."""

    def __init__(self, inner: trio.TaskStatus[None]) -> None:
        self.inner = inner

    def started(self, value: object = None) -> None:
        self.inner.started()


def serve(args_paths: Paths, config: Config, *, listen: str | None, public_url: str | None,
          tls_mode: str | None) -> int:
    args_paths.ensure()
    with DataDirLock(args_paths.data_dir):
        plan = make_plan(config, listen, public_url, tls_mode)
        runtime = build(args_paths, config, plan.public_url)
        try:
            trio.run(_main, runtime, plan)
        finally:
            runtime.db.close()
    return 0


async def _main(runtime: Runtime, plan: Plan) -> None:
    stop = trio.Event()

    async def on_signal() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                log.info("shutting down")
                stop.set()
                return

    run_file = runtime.paths.data_dir / "run.json"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(on_signal)
        url = await nursery.start(functools.partial(run, runtime, plan, stop=stop))
        # For `foxden status` and the tray: where this process answers its admin API.
        run_file.write_text(json.dumps({"pid": os.getpid(), "port": plan.port,
                                        "tls": plan.tls, "public_url": url}))
        how = "HTTPS" if plan.tls else "HTTP (loopback only)"
        print(f"Foxden is running at {url} ({how} on port {plan.port})", flush=True)
        if plan.handoff is not None:
            print(f"Devices that do not trust Foxden yet: {_handoff_url(plan)}", flush=True)
        try:
            await stop.wait()
        finally:
            run_file.unlink(missing_ok=True)
        nursery.cancel_scope.deadline = trio.current_time() + 10
