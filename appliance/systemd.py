"""`foxden service install|uninstall|status`: run Foxden in the background under systemd.

A user unit (~/.config/systemd/user/foxden.service, the default) or a system unit
(/etc/systemd/system/foxden.service, with --system, as root).  SIGTERM is a clean shutdown
(the serve nursery drains requests and closes the database), so systemd's default stop works.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

UNIT_NAME = "foxden.service"


class ServiceError(Exception):
    """systemd is missing or refused; the message says what to do."""


@dataclass(frozen=True)
class UnitTarget:
    system: bool
    unit_dir: Path

    @classmethod
    def choose(cls, system: bool, unit_dir: Path | None = None) -> UnitTarget:
        if unit_dir is not None:
            return cls(system, unit_dir)
        if system:
            return cls(True, Path("/etc/systemd/system"))
        base = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
        return cls(False, base / "systemd" / "user")

    @property
    def path(self) -> Path:
        return self.unit_dir / UNIT_NAME

    def systemctl(self) -> list[str]:
        return ["systemctl"] if self.system else ["systemctl", "--user"]


def foxden_command() -> list[str]:
    exe = shutil.which("foxden")
    if exe and Path(exe).resolve().parent == Path(sys.executable).resolve().parent:
        return [exe]
    return [sys.executable, "-m", "appliance"]


def render_unit(target: UnitTarget, args: list[str], user: str | None = None) -> str:
    cmd = " ".join(shlex.quote(a) for a in [*foxden_command(), *args, "serve"])
    lines = [
        "[Unit]",
        "Description=Foxden - the household's Firefox account and Sync server",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={cmd}",
        "Restart=on-failure",
        "RestartSec=5",
        "TimeoutStopSec=30",
        "KillSignal=SIGTERM",
        "NoNewPrivileges=true",
        "PrivateTmp=true",
        "ProtectSystem=full",
    ]
    if target.system:
        if user:
            lines.append(f"User={user}")
        # Lets a non-root service bind 443 and 80, which Fenix's WebChannel needs.
        lines += ["AmbientCapabilities=CAP_NET_BIND_SERVICE",
                  "CapabilityBoundingSet=CAP_NET_BIND_SERVICE"]
    lines += ["", "[Install]",
              f"WantedBy={'multi-user.target' if target.system else 'default.target'}", ""]
    return "\n".join(lines)


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    if shutil.which(cmd[0]) is None:
        raise ServiceError(f"{cmd[0]} is not available: this system does not run systemd. "
                           "Start Foxden with `foxden serve` from your session instead.")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def install(target: UnitTarget, args: list[str], *, start: bool = True,
            user: str | None = None) -> Path:
    if target.system and os.geteuid() != 0:
        raise ServiceError("installing a system service needs root: sudo foxden service "
                           "install --system")
    target.unit_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.path.with_suffix(".tmp")
    tmp.write_text(render_unit(target, args, user))
    tmp.replace(target.path)
    if start:
        for step in (["daemon-reload"], ["enable", "--now", UNIT_NAME]):
            r = _run([*target.systemctl(), *step])
            if r.returncode != 0:
                raise ServiceError(f"systemctl {' '.join(step)} failed: {r.stderr.strip()}")
    return target.path


def uninstall(target: UnitTarget, *, stop: bool = True) -> bool:
    if stop and target.path.exists():
        r = _run([*target.systemctl(), "disable", "--now", UNIT_NAME])
        if r.returncode != 0:
            raise ServiceError(f"systemctl disable failed: {r.stderr.strip()}")
    existed = target.path.exists()
    target.path.unlink(missing_ok=True)
    if stop and existed:
        _run([*target.systemctl(), "daemon-reload"])
    return existed


def status(target: UnitTarget) -> str:
    if not target.path.exists():
        return "not installed"
    r = _run([*target.systemctl(), "is-active", UNIT_NAME])
    return f"installed ({r.stdout.strip() or 'unknown'})"
