"""`foxden doctor`: the checks a household admin (or we, on the phone with them) need.

Each check says ok / warn / fail, what it saw, and what to do about it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import keys, mdns, tls
from .config import Config
from .paths import Paths


@dataclass(frozen=True)
class Check:
    name: str
    level: str      # ok, warn, fail
    message: str
    hint: str = ""

    def as_json(self) -> dict[str, str]:
        return {"check": self.name, "level": self.level, "message": self.message,
                "hint": self.hint}


def _port_free(port: int) -> bool | None:
    """True if we could bind it, False if in use, None if not permitted."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))  # noqa: S104 - probing what serve would bind
        except PermissionError:
            return None
        except OSError:
            return False
    return True


def check_ports(running: bool) -> list[Check]:
    out = []
    for port, fallback, what in ((443, 8443, "HTTPS"), (80, 8080, "hand-off page")):
        state = _port_free(port)
        if state is True or running:
            out.append(Check(f"port {port}", "ok", f"{what} can use port {port}"
                             if state else f"port {port} is in use (by Foxden, it runs)"))
        elif state is None:
            level = "warn" if port == 443 else "ok"
            out.append(Check(f"port {port}", level,
                             f"not allowed to bind {port}; Foxden uses {fallback}",
                             "phones need 443: install the system service "
                             "(sudo foxden service install --system)" if port == 443 else ""))
        else:
            out.append(Check(f"port {port}", "warn", f"port {port} is used by another program;"
                             f" Foxden falls back to {fallback}",
                             "stop the other web server, or accept the fallback port"))
    return out


def check_certificate(paths: Paths, config: Config) -> list[Check]:
    if config.cert_file:
        path = Path(config.cert_file)
        if not path.exists():
            return [Check("certificate", "fail", f"{path} does not exist",
                          "fix cert_file in foxden.toml")]
    else:
        path = paths.tls_dir / "server.pem"
        if not path.exists():
            return [Check("certificate", "ok", "not issued yet; made at the first start")]
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        return [Check("certificate", "fail", f"{path} is not a PEM certificate",
                      "delete it; Foxden issues a new one at start")]
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    dns, ips = tls.cert_names(cert)
    out = [Check("certificate", "ok" if left.days > 30 else "warn",
                 f"valid for {left.days} more days for {', '.join(sorted(dns))}"
                 + (f" and {', '.join(str(i) for i in sorted(ips, key=str))}" if ips else ""),
                 "" if left.days > 30 else "restart Foxden to renew it")]
    if not config.cert_file:
        missing = [a for a in mdns.lan_addresses() if tls.is_lan_address(a) and a not in ips]
        if missing:
            out.append(Check("certificate names", "warn",
                             f"not valid for {', '.join(map(str, missing))} yet",
                             "it is re-issued within minutes while Foxden runs"))
    return out


def check_key(paths: Paths) -> Check:
    from server.db.engine import WrongKeyError, connect

    if not paths.database.exists():
        return Check("database key", "ok", "no database yet; made at the first start")
    try:
        key = keys.db_key(paths.db_key, create=False)
    except keys.KeyError_ as exc:
        return Check("database key", "fail", str(exc),
                     "restore the key, or restore a backup with `foxden restore`")
    try:
        connect(paths.database, key).close()
    except WrongKeyError:
        return Check("database key", "fail", "the key does not open the database",
                     "restore the matching key or a backup")
    where = "the OS keyring" if not paths.db_key.exists() else str(paths.db_key)
    return Check("database key", "ok", f"opens the database (kept in {where})")


def check_disk(paths: Paths) -> Check:
    target = paths.data_dir if paths.data_dir.exists() else paths.data_dir.parent
    while not target.exists():
        target = target.parent
    free = shutil.disk_usage(target).free
    level = "ok" if free > 1 << 30 else "warn" if free > 100 << 20 else "fail"
    return Check("disk", level, f"{free / 2**30:.1f} GiB free for {paths.data_dir}",
                 "" if level == "ok" else "free some space: a full disk stops Sync")


def check_clock() -> Check:
    if shutil.which("timedatectl"):
        r = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                           capture_output=True, text=True, timeout=10, check=False)
        if r.stdout.strip() == "yes":
            return Check("clock", "ok", "synchronised with a time server")
        if r.stdout.strip() == "no":
            return Check("clock", "warn", "not synchronised with a time server",
                         "a clock that is minutes off makes devices' sign-ins fail; "
                         "enable time sync (timedatectl set-ntp true)")
    return Check("clock", "ok", f"local time {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
                 " (could not ask the system whether it is synchronised)")


def check_firewall() -> Check:
    for tool, args, active in (("ufw", ["status"], "Status: active"),
                               ("firewall-cmd", ["--state"], "running")):
        if shutil.which(tool):
            r = subprocess.run([tool, *args], capture_output=True, text=True, timeout=10,
                               check=False)
            if active in r.stdout:
                hint = ("sudo ufw allow 443/tcp; sudo ufw allow 80/tcp; sudo ufw allow "
                        "5353/udp" if tool == "ufw" else "sudo firewall-cmd --add-service="
                        "https --add-service=http --add-service=mdns --permanent")
                return Check("firewall", "warn", f"{tool} is active",
                             f"let phones in: {hint}")
    return Check("firewall", "ok", "no active ufw or firewalld found")


def check_mdns() -> Check:
    try:
        found = mdns.discover(timeout=2.0)
    except OSError as exc:
        return Check("mDNS", "warn", f"cannot use multicast DNS: {exc.strerror or exc}",
                     "phones find Foxden by name through mDNS; allow UDP 5353")
    if not found:
        return Check("mDNS", "warn", "no Foxden announced on this network",
                     "is Foxden running? is UDP 5353 blocked?")
    return Check("mDNS", "ok", "; ".join(f"{f.name.split('._')[0]} at {f.server}:{f.port}"
                                         for f in found))


def run_checks(paths: Paths, config: Config, *, mdns: bool = True) -> list[Check]:
    from .cli_admin import running

    alive = running(paths) is not None
    out = [Check("server", "ok" if alive else "warn",
                 "running" if alive else "not running", "" if alive else "foxden serve")]
    out += check_ports(alive)
    out += check_certificate(paths, config)
    out += [check_key(paths), check_disk(paths), check_clock(), check_firewall()]
    if mdns:
        out.append(check_mdns())
    return out
