"""`foxden serve` as a real process: starts, answers, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

FOXDEN = [sys.executable, "-m", "appliance"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [*FOXDEN, "--data-dir", str(tmp_path / "data"), "serve", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            if httpx.get(f"{url}/__lbheartbeat__", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not come up")


def test_serve_heartbeat_and_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(tmp_path, "--listen", f"127.0.0.1:{port}", "--public-url", url,
                  "--tls", "off", env={"FOXDEN_SYNC_MASTER_SECRET": "s3cret"})
    try:
        _wait_ready(url, proc)
        assert httpx.get(f"{url}/__heartbeat__").json()["database"] == "Ok"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert url in out
    assert "Traceback" not in err
    # Key material is private; the database is encrypted.
    data = tmp_path / "data"
    for key_file in [tmp_path / "data.config" / "db.key", *(data / "keys").iterdir()]:
        assert key_file.stat().st_mode & 0o777 == 0o600, key_file
    assert not (data / "foxden.db").read_bytes().startswith(b"SQLite format 3")


def test_port_in_use_is_one_clear_message(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _start(tmp_path, "--listen", f"127.0.0.1:{port}", "--tls", "off")
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "cannot listen on" in err and "Traceback" not in err


def test_bad_listen_value(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--listen", "localhost")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "HOST:PORT" in err and "Traceback" not in err


def test_missing_key_refuses_to_start(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(tmp_path, "--listen", f"127.0.0.1:{port}", "--tls", "off")
    try:
        _wait_ready(url, proc)
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    (tmp_path / "data.config" / "db.key").unlink()
    proc = _start(tmp_path, "--listen", f"127.0.0.1:{port}", "--tls", "off")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "database key" in err and "Traceback" not in err
    # And a wrong key: a different, valid-looking key.
    (tmp_path / "data.config" / "db.key").write_text("00" * 32)
    proc = _start(tmp_path, "--listen", f"127.0.0.1:{port}", "--tls", "off")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "does not open with the key" in err
