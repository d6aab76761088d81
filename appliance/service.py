"""Serving the app: Hypercorn's Trio worker on sockets we bind ourselves.

Binding first (instead of handing Hypercorn a "host:port" string) lets us learn the real
port before the app is built, so the public URL and HAWK host/port are known up front.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

log = logging.getLogger("foxden.service")


class ListenError(Exception):
    """A listen address that cannot be bound (in use, not ours, malformed)."""


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ListenError(f"--listen wants HOST:PORT, got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def hypercorn_config() -> Config:
    config = Config()
    config.accesslog = None  # request lines could carry tokens in query strings
    config.errorlog = logging.getLogger("hypercorn.error")
    config.keep_alive_timeout = 75
    config.graceful_timeout = 5
    config.include_server_header = False
    # The pairing relay caps frames at 32 KiB; do not buffer 16 MiB frames before it looks.
    config.websocket_max_message_size = 64 * 1024
    config.websocket_ping_interval = 20
    config.h2_max_inbound_frame_size = 2**14
    return config


async def serve_http(
    app: object,
    sockets: list[socket.socket],
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    config = hypercorn_config()
    await worker_serve(
        wrap_app(app, config.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
        config,
        sockets=Sockets(secure_sockets=[], insecure_sockets=sockets, quic_sockets=[]),
        shutdown_trigger=shutdown_trigger,
        task_status=task_status,
    )
