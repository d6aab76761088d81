"""The `foxden` command: thin argument parsing over the appliance's functions."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
import time
import types

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
    _user_parser(sub)
    return p


def _user_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.setup(args.log_level)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "user":
            return _user(args)
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
