"""The `foxden` command: thin argument parsing over the appliance's functions."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
import time
import types
from typing import Any

from . import cli_admin, logs, service
from .backup import BackupError
from .config import Config, ConfigError
from .keys import KeyError_
from .lock import LockedError
from .paths import Paths
from .runtime import StartupError
from .systemd import ServiceError

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
    user_sub = _user_parser(sub)
    _pair_parser(sub)
    cli_admin.add_parsers(sub, user_sub)
    return p


def _user_parser(sub: argparse._SubParsersAction) -> Any:  # type: ignore[type-arg]
    u = sub.add_parser("user", help="manage accounts").add_subparsers(dest="user_command",
                                                                      required=True)
    add = u.add_parser("add", help="create an account (asks for the password)")
    add.add_argument("email")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input")
    add.add_argument("--key-stretch", type=int, choices=[1, 2], default=2,
                     help="2 (default): v1 and v2 verifiers, like Mozilla today; 1: v1 only")
    ls = u.add_parser("list", help="list the accounts")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    return u


def _pair_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("pair", help="sign a phone's Firefox in by QR code (asks the password)")
    p.add_argument("--user", required=True, metavar="EMAIL", help="the account to sign in")
    p.add_argument("--url", help="Foxden's public URL (default: from the configuration)")
    p.add_argument("--connect", metavar="URL",
                   help="reach the server here instead (e.g. https://127.0.0.1:8443); "
                   "the QR code and request signatures still use the public URL")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    p.add_argument("--yes", action="store_true", help="allow the phone without asking")
    p.add_argument("--json", action="store_true", help="one JSON object per line per event")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="give up after this many seconds (at most 870)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.setup(args.log_level)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "user":
            return _user(args)
        if args.command == "pair":
            return _pair(args)
        if args.command in cli_admin.COMMANDS:
            return cli_admin.run(args)
    except (ConfigError, StartupError, service.ListenError, LockedError, BackupError,
            ServiceError, KeyError_) as exc:
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


def _pair(args: argparse.Namespace) -> int:
    from .pairing import command  # imported here: trio-websocket and segno

    paths = Paths.resolve(args.data_dir, args.config_dir)
    config = Config.load(paths.config_file)
    try:
        public_url = command.resolve_public_url(args.url, config)
        if not 0 < args.timeout <= 870:
            raise command.PairError("--timeout must be between 0 and 870 seconds")
        ca = paths.tls_dir / "ca.pem"
        options = command.PairOptions(
            email=args.user, public_url=public_url, connect_url=args.connect,
            ca_file=ca if ca.is_file() and not config.cert_file else None, yes=args.yes,
            as_json=args.json, timeout=args.timeout, device_name=command.device_name())
        password = command.read_password(args.password_stdin, args.user)
    except command.PairError as exc:
        print(f"foxden: {exc}", file=sys.stderr)
        return 2
    return command.run(options, password)


def _user(args: argparse.Namespace) -> int:
    from . import users  # imported here: it pulls in the server, which --help need not

    try:
        return _user_command(args, users)
    except users.UserError as exc:
        print(f"foxden: {exc}", file=sys.stderr)
        return 2


def _user_command(args: argparse.Namespace, users: types.ModuleType) -> int:
    # No data-dir lock: adding an account while `serve` runs is fine (SQLite/WAL takes
    # care of the two writers), and the server reads accounts from the database each time.
    from .runtime import open_database

    if args.user_command in ("remove", "passwd"):
        return cli_admin.run_user(args)
    paths = Paths.resolve(args.data_dir, args.config_dir)
    paths.ensure()
    if args.user_command == "add":
        users.check_email(args.email)
        password = _read_password(args.password_stdin)
        db = open_database(paths)
        try:
            account = users.add_user(db, args.email, password, now_ms=_now_ms(),
                                     key_stretch=args.key_stretch)
        finally:
            db.close()
        print(f"created {account.email} (uid {account.uid})")
        return 0
    db = open_database(paths)
    try:
        found = users.list_users(db, now_ms=_now_ms())
    finally:
        db.close()
    if args.json:
        print(json.dumps([u.as_json() for u in found], indent=2))
    else:
        for u in found:
            print(f"{u.email}\t{u.uid}\tkey-stretch v{u.key_stretch}\t"
                  f"{u.devices} device(s)\t{u.sessions} session(s)")
    return 0


def _read_password(from_stdin: bool) -> str:
    from .users import UserError

    # Never a command-line argument: ps and shell history would show it.
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise UserError("no terminal to ask for the password on: use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise UserError("the two passwords differ")
    return first


def _now_ms() -> int:
    return int(time.time() * 1000)
