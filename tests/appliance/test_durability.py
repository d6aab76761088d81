"""Writes acknowledged by the server survive: an online backup taken during a stream of
writes holds every record acknowledged before it started, and SIGTERM mid-stream loses
none that were acknowledged."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from server.crypto import hawk, tokenlib

MASTER = "durability master secret"
ENV = {**os.environ, "FOXDEN_MDNS": "false", "FOXDEN_KEYRING": "off",
       "FOXDEN_SYNC_MASTER_SECRET": MASTER}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(data: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "--data-dir", str(data), "serve", "--listen",
         f"127.0.0.1:{port}", "--tls", "off"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            httpx.get(f"http://127.0.0.1:{port}/__lbheartbeat__", timeout=1)
            return proc
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


class Client:
    def __init__(self, port: int, uid: int = 77) -> None:
        s = tokenlib.TokenSecrets.from_master(MASTER)
        salt = tokenlib.new_salt()
        self.token = tokenlib.make_token(s, {"uid": uid, "node": "x", "salt": salt,
                                             "expires": time.time() + 3600})
        self.key = tokenlib.derived_secret(s, self.token, salt).encode()
        self.port, self.uid = port, uid
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}/1.5/{uid}", timeout=10)

    def _auth(self, method: str, path: str) -> dict[str, str]:
        return {"Authorization": hawk.sign_header(
            self.key, self.token, method, f"/1.5/{self.uid}{path}", "127.0.0.1", self.port,
            int(time.time()), secrets.token_urlsafe(8)), "Content-Type": "application/json"}

    def put(self, bso_id: str) -> bool:
        path = f"/storage/history/{bso_id}"
        try:
            r = self.http.put(path, content=b'{"payload": "x"}', headers=self._auth("PUT", path))
        except httpx.TransportError:
            return False
        return r.status_code == 200

    def ids(self) -> set[str]:
        path = "/storage/history"
        r = self.http.get(path, headers=self._auth("GET", path))
        r.raise_for_status()
        return set(r.json())


def _writer(client: Client, acked: list[tuple[float, str]], stop: threading.Event) -> None:
    for i in range(100_000):  # bounded; stopped long before
        if stop.is_set():
            return
        bso = f"r{i:06d}"
        if client.put(bso):
            acked.append((time.monotonic(), bso))
        elif stop.is_set():
            return


def test_online_backup_under_writes_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    port = _free_port()
    proc = _serve(tmp_path / "data", port)
    acked: list[tuple[float, str]] = []
    stop = threading.Event()
    t = threading.Thread(target=_writer, args=(Client(port), acked, stop), daemon=True)
    try:
        t.start()
        while len(acked) < 50:
            time.sleep(0.05)
        started = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "appliance", "--data-dir",
                            str(tmp_path / "data"), "backup", str(tmp_path / "b.fxbk"),
                            "--passphrase-stdin"], input="long enough\n", capture_output=True,
                           text=True, env=ENV, timeout=120)
        assert r.returncode == 0, r.stderr
        time.sleep(0.3)
    finally:
        stop.set()
        t.join(timeout=20)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    before = {bso for when, bso in acked if when < started}
    assert len(before) >= 50
    restored = tmp_path / "restored"
    r = subprocess.run([sys.executable, "-m", "appliance", "--data-dir", str(restored),
                        "restore", str(tmp_path / "b.fxbk"), "--passphrase-stdin", "--yes"],
                       input="long enough\n", capture_output=True, text=True, env=ENV,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    port2 = _free_port()
    proc2 = _serve(restored, port2)
    try:
        have = Client(port2).ids()
    finally:
        proc2.send_signal(signal.SIGTERM)
        proc2.wait(timeout=20)
    assert before <= have, sorted(before - have)[:5]


def test_sigterm_mid_stream_loses_nothing_acknowledged(tmp_path: Path) -> None:
    port = _free_port()
    proc = _serve(tmp_path / "data", port)
    acked: list[tuple[float, str]] = []
    stop = threading.Event()
    t = threading.Thread(target=_writer, args=(Client(port), acked, stop), daemon=True)
    t.start()
    while len(acked) < 80:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    stop.set()
    t.join(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    proc = _serve(tmp_path / "data", port)
    try:
        have = Client(port).ids()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert {bso for _, bso in acked} <= have
