"""The `foxden` command: thin argument parsing over the appliance's functions."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import trio

from . import service
from .config import Config, ConfigError
from .paths import Paths
from .runtime import StartupError, build

log = logging.getLogger("foxden")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="foxden", description="Your household's Firefox Sync")
    p.add_argument("--data-dir", help="where the database and keys live")
    p.add_argument("--config-dir", help="where foxden.toml and the database key live")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the server")
    s.add_argument("--listen", help="HOST:PORT to listen on (default 127.0.0.1:8000)")
    s.add_argument("--public-url", help="the origin clients use, e.g. http://localhost:8000")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "serve":
            return _serve(args)
    except (ConfigError, StartupError, service.ListenError) as exc:
        print(f"foxden: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


def _serve(args: argparse.Namespace) -> int:
    paths = Paths.resolve(args.data_dir, args.config_dir)
    config = Config.load(paths.config_file)
    host, port = service.parse_listen(args.listen or config.listen)
    sock = service.bind(host, port)
    port = sock.getsockname()[1]
    shown_host = "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host  # noqa: S104
    public_url = args.public_url or config.public_url or f"http://{shown_host}:{port}"
    runtime = build(paths, config, public_url)

    from server.app import create_app

    app = create_app(runtime.settings, runtime.db)
    try:
        trio.run(_run, app, sock, runtime.settings.public_url)
    finally:
        runtime.db.close()
    return 0


async def _run(app: object, sock: object, public_url: str) -> None:
    async def shutdown_on_signal() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                log.info("shutting down")
                return

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: service.serve_http(  # type: ignore[misc]
                app, [sock], shutdown_trigger=shutdown_on_signal, task_status=task_status
            )
        )
        print(f"Foxden is running at {public_url}", flush=True)
