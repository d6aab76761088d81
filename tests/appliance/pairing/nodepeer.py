"""Drive tests/web/pairing/peer.mjs (our JS or Mozilla's fxa-pairing-channel) from pytest."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance.pairing import tlspsk

ROOT = Path(__file__).resolve().parents[3]
PEER = ROOT / "tests/web/pairing/peer.mjs"
VECTORS_FILE = ROOT / "tests/vectors/fxa-pairing-channel-tls-vectors.json"
# The fxa-pairing-channel trace (copied from shared/vectors), as bytes by name.
VECTORS = {
    k: bytes.fromhex(v) for k, v in json.loads(VECTORS_FILE.read_text("utf-8"))["hex"].items()
}
TIMEOUT = 10.0


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the pairing JS tests need node >= 20 on PATH")
    return node


@dataclass
class Reply:
    records: list[bytes] = field(default_factory=list)
    events: list[tuple[str, bytes | None]] = field(default_factory=list)
    error: tuple[str, str] | None = None


class NodePeer:
    """One TLS-PSK connection living in a node process; every call returns its Reply."""

    def __init__(self, impl: str, role: str, psk: bytes, psk_id: bytes,
                 randoms: Sequence[bytes] = (), env: dict[str, str] | None = None) -> None:
        args = [node_binary(), str(PEER), impl, role, psk.hex(), psk_id.hex(),
                ",".join(r.hex() for r in randoms)]
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
        self._buf = b""
        self.initial = self._read()

    def _readline(self) -> bytes:
        assert self._proc.stdout is not None
        deadline = time.monotonic() + TIMEOUT
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._proc.stdout], [], [], max(left, 0))
            chunk = os.read(self._proc.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                self._proc.kill()
                stderr = self._proc.stderr.read().decode() if self._proc.stderr else ""
                pytest.fail(f"node peer gave no answer (timeout or exit): {stderr}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def _read(self) -> Reply:
        reply = Reply()
        while (line := self._readline().decode()) != "done":
            kind, _, rest = line.partition(" ")
            if kind == "rec":
                reply.records.append(bytes.fromhex(rest))
            elif kind == "event":
                name, _, data = rest.partition(" ")
                reply.events.append((name, bytes.fromhex(data) if name == "data" else None))
            elif kind == "error":
                name, _, description = rest.partition(" ")
                reply.error = (name, description)
            else:
                raise AssertionError(f"unexpected peer output {line!r}")
        return reply

    def _call(self, line: str) -> Reply:
        assert self._proc.stdin is not None
        self._proc.stdin.write(line.encode() + b"\n")
        self._proc.stdin.flush()
        return self._read()

    def recv(self, record: bytes) -> Reply:
        return self._call(f"recv {record.hex()}")

    def send(self, data: bytes) -> Reply:
        return self._call(f"send {data.hex()}")

    def close(self) -> Reply:
        return self._call("close")

    def stop(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> NodePeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def py_events(events: list[tlspsk.Event]) -> list[tuple[str, bytes | None]]:
    """Our Python events in the peer's notation, to compare both sides alike."""
    names = {tlspsk.HandshakeComplete: "handshake", tlspsk.Closed: "closed", tlspsk.Data: "data"}
    return [(names[type(e)], e.data if isinstance(e, tlspsk.Data) else None) for e in events]


def handshake_with_python(py: tlspsk.Connection, peer: NodePeer) -> tuple[list, list]:
    """Relay records between a Python connection and a node peer until both are quiet."""
    py_seen: list[tuple[str, bytes | None]] = []
    peer_seen: list[tuple[str, bytes | None]] = []
    to_peer, to_py = py.data_to_send(), list(peer.initial.records)
    while to_peer or to_py:
        for rec in to_py:
            py_seen += py_events(py.receive_record(rec))
        to_py = []
        to_peer += py.data_to_send()
        for rec in to_peer:
            reply = peer.recv(rec)
            assert reply.error is None, reply.error
            peer_seen += reply.events
            to_py += reply.records
        to_peer = []
    return py_seen, peer_seen


def relay_node_peers(a: NodePeer, b: NodePeer) -> tuple[list, list]:
    """Relay records between two node peers (a started first) until quiet."""
    a_seen: list[tuple[str, bytes | None]] = []
    b_seen: list[tuple[str, bytes | None]] = []
    to_b, to_a = list(a.initial.records), list(b.initial.records)
    while to_a or to_b:
        for rec in to_b:
            reply = b.recv(rec)
            assert reply.error is None, reply.error
            b_seen += reply.events
            to_a += reply.records
        to_b = []
        for rec in to_a:
            reply = a.recv(rec)
            assert reply.error is None, reply.error
            a_seen += reply.events
            to_b += reply.records
        to_a = []
    return a_seen, b_seen
