"""The management CLI as a real process: status against a running server, doctor, backup /
restore round trip, user remove / passwd, service unit, and clear one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ENV = {**os.environ, "FOXDEN_MDNS": "false", "FOXDEN_KEYRING": "off"}
PASSWORD = "correct horse battery"


def foxden(tmp_path: Path, *args: str, stdin: str = "", timeout: float = 120
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance", "--data-dir",
                           str(tmp_path / "data"), *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=ENV)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serving(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "--data-dir", str(tmp_path / "data"), "serve",
         "--listen", f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=ENV)
    deadline = time.monotonic() + 30
    while not (tmp_path / "data" / "run.json").exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    yield proc, port
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


def test_status_running_and_stopped(tmp_path: Path, serving) -> None:  # type: ignore[no-untyped-def]
    proc, port = serving
    r = foxden(tmp_path, "status", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["running"] and info["publicUrl"] == f"https://localhost:{port}"
    assert info["tls"] is True and len(info["caFingerprint"].split(":")) == 32
    assert "localhost" in info["certificate"]["names"]
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    assert not (tmp_path / "data" / "run.json").exists()
    r = foxden(tmp_path, "status")
    assert r.returncode == 3 and "not running" in r.stdout


def test_doctor(tmp_path: Path) -> None:
    r = foxden(tmp_path, "doctor", "--json", "--no-mdns")
    checks = {c["check"]: c for c in json.loads(r.stdout)}
    assert checks["database key"]["level"] == "ok"
    assert checks["disk"]["level"] in ("ok", "warn")
    assert "port 443" in checks and "clock" in checks and "firewall" in checks
    # Break the key: doctor says so and exits non-zero.
    foxden(tmp_path, "user", "add", "a@example.org", "--password-stdin", stdin=PASSWORD + "\n")
    (tmp_path / "data.config" / "db.key").write_text("00" * 32)
    r = foxden(tmp_path, "doctor", "--no-mdns")
    assert r.returncode == 1 and "[FAIL] database key" in r.stdout
    assert "Traceback" not in r.stderr


def test_backup_restore_and_user_commands(tmp_path: Path, serving) -> None:  # type: ignore[no-untyped-def]
    r = foxden(tmp_path, "user", "add", "mum@example.org", "--password-stdin",
               stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    foxden(tmp_path, "user", "add", "kid@example.org", "--password-stdin",
           stdin=PASSWORD + "\n")
    # Online backup while the server runs.
    r = foxden(tmp_path, "backup", str(tmp_path / "home.fxbk"), "--passphrase-stdin",
               stdin="family secret\n")
    assert r.returncode == 0, r.stderr
    r = foxden(tmp_path, "restore", str(tmp_path / "home.fxbk"), "--passphrase-stdin",
               "--yes", stdin="family secret\n")
    assert r.returncode == 2 and "another Foxden is running" in r.stderr
    proc, _ = serving
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    r = foxden(tmp_path, "user", "remove", "kid@example.org", "--yes")
    assert r.returncode == 0 and "removed kid@example.org" in r.stdout
    r = foxden(tmp_path, "user", "remove", "kid@example.org", "--yes")
    assert r.returncode == 2 and "no account" in r.stderr
    r = foxden(tmp_path, "user", "passwd", "mum@example.org", "--password-stdin", "--yes",
               stdin="another password\n")
    assert r.returncode == 0 and "Sync data" in r.stderr
    r = foxden(tmp_path, "restore", str(tmp_path / "home.fxbk"), "--passphrase-stdin",
               "--yes", stdin="wrong phrase\n")
    assert r.returncode == 2 and "passphrase" in r.stderr and "Traceback" not in r.stderr
    r = foxden(tmp_path, "restore", str(tmp_path / "home.fxbk"), "--passphrase-stdin",
               "--yes", stdin="family secret\n")
    assert r.returncode == 0, r.stderr
    listed = json.loads(foxden(tmp_path, "user", "list", "--json").stdout)
    assert sorted(u["email"] for u in listed) == ["kid@example.org", "mum@example.org"]
    r = foxden(tmp_path, "rekey")
    assert r.returncode == 0 and "new key" in r.stdout
    assert len(json.loads(foxden(tmp_path, "user", "list", "--json").stdout)) == 2


def test_service_unit_without_systemd(tmp_path: Path) -> None:
    env = {**ENV, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    r = subprocess.run([sys.executable, "-m", "appliance", "--data-dir", str(tmp_path / "d"),
                        "service", "install", "--no-start"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    unit = tmp_path / "xdg" / "systemd" / "user" / "foxden.service"
    assert "ExecStart=" in unit.read_text() and str(tmp_path / "d") in unit.read_text()


@pytest.mark.parametrize(("toml", "needle"), [
    ("tls = 'maybe'", "tls must be"),
    ("listen = 443", "listen must be a str"),
    ("nonsense = true", "unknown setting 'nonsense'"),
    ("this is not toml", "not valid TOML"),
    ("cert_file = '/x.pem'", "cert_file and key_file go together"),
])
def test_bad_config_is_one_clear_message(tmp_path: Path, toml: str, needle: str) -> None:
    (tmp_path / "data.config").mkdir(parents=True)
    (tmp_path / "data.config" / "foxden.toml").write_text(toml + "\n")
    r = foxden(tmp_path, "serve", "--listen", "127.0.0.1:0", timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_corrupt_database_is_one_clear_message(tmp_path: Path) -> None:
    foxden(tmp_path, "user", "add", "a@example.org", "--password-stdin", stdin=PASSWORD + "\n")
    db = tmp_path / "data" / "foxden.db"
    data = bytearray(db.read_bytes())
    data[0:4096] = os.urandom(4096)
    db.write_bytes(bytes(data))
    r = foxden(tmp_path, "serve", "--listen", "127.0.0.1:0", "--tls", "off", timeout=60)
    assert r.returncode == 2 and "does not open with the key" in r.stderr
    assert "Traceback" not in r.stderr


def test_tls_off_refused_on_lan(tmp_path: Path) -> None:
    r = foxden(tmp_path, "serve", "--listen", "0.0.0.0:0", "--tls", "off", timeout=60)
    assert r.returncode == 2 and "loopback" in r.stderr


def test_status_talks_https_admin(tmp_path: Path, serving) -> None:  # type: ignore[no-untyped-def]
    _, port = serving
    token = (tmp_path / "data.config" / "admin-token").read_text().strip()
    import ssl

    ctx = ssl.create_default_context(cafile=str(tmp_path / "data" / "tls" / "ca.pem"))
    r = httpx.get(f"https://localhost:{port}/admin/v1/users",
                  headers={"Authorization": f"Bearer {token}"}, verify=ctx)
    assert r.status_code == 200 and r.json() == []
