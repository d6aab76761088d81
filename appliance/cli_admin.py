"""`foxden` subcommands for running the box: user remove/passwd, status, doctor, backup,
restore, rekey and service.  cli.py stays the entry point; these live here to keep it thin.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from .config import Config
from .paths import Paths


def add_parsers(sub: argparse._SubParsersAction, user_sub: Any) -> None:  # type: ignore[type-arg]
    rm = user_sub.add_parser("remove", help="delete an account and all its Sync data")
    rm.add_argument("email")
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    pw = user_sub.add_parser("passwd", help="set a new password (new keys: Sync data is lost)")
    pw.add_argument("email")
    pw.add_argument("--password-stdin", action="store_true")
    pw.add_argument("--yes", action="store_true", help="accept that old Sync data is lost")

    st = sub.add_parser("status", help="is Foxden running, and how")
    st.add_argument("--json", action="store_true")
    dr = sub.add_parser("doctor", help="check ports, certificate, mDNS, clock, key, disk")
    dr.add_argument("--json", action="store_true")
    dr.add_argument("--no-mdns", action="store_true", help="skip the mDNS check")

    bk = sub.add_parser("backup", help="write an encrypted backup (safe while serving)")
    bk.add_argument("file", type=Path)
    bk.add_argument("--passphrase-stdin", action="store_true")
    rs = sub.add_parser("restore", help="replace everything with a backup (server stopped)")
    rs.add_argument("file", type=Path)
    rs.add_argument("--passphrase-stdin", action="store_true")
    rs.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    sub.add_parser("rekey", help="move the database to a new random key (server stopped)")

    sv = sub.add_parser("service", help="run Foxden in the background (systemd)")
    sv.add_argument("action", choices=["install", "uninstall", "status"])
    sv.add_argument("--system", action="store_true", help="a system unit (root)")
    sv.add_argument("--user-name", help="with --system: the account the service runs as")
    sv.add_argument("--no-start", action="store_true", help="write the unit only")


COMMANDS = ("status", "doctor", "backup", "restore", "rekey", "service")


def run(args: argparse.Namespace) -> int:
    paths = Paths.resolve(args.data_dir, args.config_dir)
    handler = {"status": _status, "doctor": _doctor, "backup": _backup,
               "restore": _restore, "rekey": _rekey, "service": _service}[args.command]
    return handler(args, paths)


def run_user(args: argparse.Namespace) -> int:
    from . import users
    from .runtime import open_database

    paths = Paths.resolve(args.data_dir, args.config_dir)
    db = open_database(paths)
    now = int(time.time() * 1000)
    try:
        account = db.read_sync(users.find_tx(args.email))
        if args.user_command == "remove":
            _confirm(args.yes, f"Delete {account.email} and all of its Sync data?")
            db.write_sync(users.remove_tx(account.uid, now_ms=now))
            print(f"removed {account.email}")
            return 0
        print(users.RESET_WARNING, file=sys.stderr)
        _confirm(args.yes, "Go ahead?")
        password = _secret(args.password_stdin, "New password: ", twice=True)
        new = users.new_password(account.email, password,
                                 key_stretch=account.key_stretch_version)
        db.write_sync(users.reset_tx(account, new, now_ms=now))
        print(f"new password set for {account.email}; every device must sign in again")
        return 0
    finally:
        db.close()


def _confirm(yes: bool, question: str) -> None:
    from .users import UserError

    if yes:
        return
    if not sys.stdin.isatty():
        raise UserError("not confirmed (no terminal to ask on): add --yes")
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise UserError("cancelled")


def _secret(from_stdin: bool, prompt: str, *, twice: bool = False) -> str:
    from .users import UserError

    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise UserError("no terminal to ask on: use the --…-stdin option")
    first = getpass.getpass(prompt)
    if twice and getpass.getpass("Again: ") != first:
        raise UserError("the two entries differ")
    return first


# --- status ----------------------------------------------------------------------------

def running(paths: Paths) -> dict[str, Any] | None:
    """The run file `serve` writes, if that process is alive."""
    path = paths.data_dir / "run.json"
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info  # type: ignore[no-any-return]


def admin_get(paths: Paths, info: dict[str, Any], route: str) -> Any:
    import ssl

    import httpx

    token = paths.admin_token.read_text().strip()
    scheme = "https" if info.get("tls") else "http"
    verify: Any = True
    ca = paths.tls_dir / "ca.pem"
    if scheme == "https":
        verify = ssl.create_default_context(cafile=str(ca)) if ca.exists() else False
    url = f"{scheme}://localhost:{info['port']}/admin/v1{route}"
    r = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, verify=verify, timeout=10)
    r.raise_for_status()
    return r.json()


def _status(args: argparse.Namespace, paths: Paths) -> int:
    info = running(paths)
    out: dict[str, Any] = {"running": info is not None, "dataDir": str(paths.data_dir)}
    if info is not None:
        try:
            out.update(admin_get(paths, info, "/status"))
        except Exception as exc:  # noqa: BLE001 - report, do not crash
            out["error"] = f"the server did not answer its admin API: {type(exc).__name__}"
    else:
        ca = paths.tls_dir / "ca.pem"
        if ca.exists():
            from cryptography import x509

            from .tls import fingerprint

            out["caFingerprint"] = fingerprint(x509.load_pem_x509_certificate(ca.read_bytes()))
    if args.json:
        print(json.dumps(out, indent=2))
        return 0 if info else 3
    if info is None:
        print(f"Foxden is not running (data in {paths.data_dir}).")
    else:
        print(f"Foxden is running at {out.get('publicUrl')} (pid {info['pid']}).")
        for key, label in (("users", "accounts"), ("uptimeSeconds", "uptime (s)"),
                           ("mdns", "mDNS name"), ("handoffUrl", "hand-off page")):
            if out.get(key) is not None:
                print(f"  {label}: {out[key]}")
    if out.get("caFingerprint"):
        print(f"  CA fingerprint (SHA-256): {out['caFingerprint']}")
    if out.get("error"):
        print(f"  {out['error']}")
    return 0 if info else 3


# --- doctor ----------------------------------------------------------------------------

def _doctor(args: argparse.Namespace, paths: Paths) -> int:
    from . import doctor

    checks = doctor.run_checks(paths, Config.load(paths.config_file),
                               mdns=not args.no_mdns and os.environ.get(
                                   "FOXDEN_MDNS", "true").lower() not in ("0", "false", "no"))
    if args.json:
        print(json.dumps([c.as_json() for c in checks], indent=2))
    else:
        for c in checks:
            print(f"[{c.level.upper():4}] {c.name}: {c.message}")
            if c.hint:
                print(f"       → {c.hint}")
    return 1 if any(c.level == "fail" for c in checks) else 0


# --- backup / restore / rekey ----------------------------------------------------------

def _progress(phase: str, done: int, total: int) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r{phase:<12} [{'#' * filled}{'.' * (width - filled)}] "
                     f"{done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _backup(args: argparse.Namespace, paths: Paths) -> int:
    from . import backup, keys

    passphrase = _secret(args.passphrase_stdin, "Backup passphrase: ", twice=True)
    key = keys.db_key(paths.db_key, create=False)
    counts = backup.backup(paths, key, args.file, passphrase, _progress)
    print(f"backup written to {args.file} ({sum(counts.values())} rows); keep the "
          "passphrase safe: without it the backup cannot be opened")
    return 0


def _restore(args: argparse.Namespace, paths: Paths) -> int:
    from . import backup

    _confirm(args.yes, f"Replace everything in {paths.data_dir} with {args.file}?")
    passphrase = _secret(args.passphrase_stdin, "Backup passphrase: ")
    counts = backup.restore(paths, args.file, passphrase, _progress)
    print(f"restored and verified {sum(counts.values())} rows in {len(counts)} tables")
    return 0


def _rekey(args: argparse.Namespace, paths: Paths) -> int:
    from . import rekey

    counts = rekey.rekey(paths)
    print(f"the database has a new key ({sum(counts.values())} rows verified)")
    return 0


# --- service ---------------------------------------------------------------------------

def _service(args: argparse.Namespace, paths: Paths) -> int:
    from . import systemd

    target = systemd.UnitTarget.choose(args.system)
    extra = []
    if args.data_dir:
        extra += ["--data-dir", str(paths.data_dir)]
    if args.config_dir:
        extra += ["--config-dir", str(paths.config_dir)]
    if args.action == "install":
        path = systemd.install(target, extra, start=not args.no_start, user=args.user_name)
        print(f"installed {path}" + ("" if args.no_start else " and started it"))
    elif args.action == "uninstall":
        existed = systemd.uninstall(target, stop=shutil.which("systemctl") is not None)
        print("removed the service" if existed else "no service was installed")
    else:
        print(systemd.status(target))
    return 0
