"""The `foxden` command: thin argument parsing over the appliance's functions."""

from __future__ import annotations

import argparse
import logging
import sys

from . import logs, service
from .backup import BackupError
from .config import Config, ConfigError
from .lock import LockedError
from .paths import Paths
from .runtime import StartupError

log = logging.getLogger("foxden")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="foxden", description="Your household's Firefox Sync")
    p.add_argument("--data-dir", help="where the database and keys live")
    p.add_argument("--config-dir", help="where foxden.toml and the database key live")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the server")
    s.add_argument("--listen", help="HOST:PORT for HTTPS (default: 443 if allowed, else 8443)")
    s.add_argument("--public-url", help="the one origin every client uses "
                   "(default https://<hostname>.local[:port])")
    s.add_argument("--tls", choices=["on", "off"],
                   help="off: plain HTTP, accepted only on a loopback --listen address")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.setup(args.log_level)
    try:
        if args.command == "serve":
            return _serve(args)
    except (ConfigError, StartupError, service.ListenError, LockedError, BackupError) as exc:
        print(f"foxden: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


def _serve(args: argparse.Namespace) -> int:
    from . import serve

    paths = Paths.resolve(args.data_dir, args.config_dir)
    config = Config.load(paths.config_file)
    logs.setup(args.log_level, paths.log_dir)
    return serve.serve(paths, config, listen=args.listen, public_url=args.public_url,
                       tls_mode=args.tls)
