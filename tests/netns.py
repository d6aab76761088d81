"""Throw-away network namespaces joined by a veth pair, for tests that cross a network.

Traffic stays inside namespaces the test creates (never the machine's real interfaces);
addresses are link-local (169.254.0.0/16), which Foxden treats as LAN.  Needs root and
iproute2; CI runs as root.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class NetPair:
    a: str
    b: str
    addr_a: str
    addr_b: str

    def run_in(self, ns: str, argv: list[str], **kw) -> subprocess.Popen:  # type: ignore[no-untyped-def]
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kw)


def available() -> str | None:
    """None if namespaces can be made here, else why not."""
    if shutil.which("ip") is None:
        return "iproute2 (the ip command) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@contextmanager
def veth_pair() -> Iterator[NetPair]:
    tag = secrets.token_hex(3)
    a, b = f"fxA{tag}", f"fxB{tag}"
    va, vb = f"va{tag}", f"vb{tag}"
    third = int(tag[:2], 16) % 250 + 2
    addr_a, addr_b = f"169.254.{third}.1", f"169.254.{third}.2"
    _ip("netns", "add", a)
    try:
        _ip("netns", "add", b)
        try:
            _ip("link", "add", va, "type", "veth", "peer", "name", vb)
            _ip("link", "set", va, "netns", a)
            _ip("link", "set", vb, "netns", b)
            for ns, dev, addr in ((a, va, addr_a), (b, vb, addr_b)):
                _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
                _ip("-n", ns, "link", "set", dev, "up", "multicast", "on")
                _ip("-n", ns, "link", "set", "lo", "up")
            yield NetPair(a, b, addr_a, addr_b)
        finally:
            subprocess.run(["ip", "netns", "pids", b], capture_output=True)
            _kill_all(b)
            subprocess.run(["ip", "netns", "del", b], capture_output=True, timeout=10)
    finally:
        _kill_all(a)
        subprocess.run(["ip", "netns", "del", a], capture_output=True, timeout=10)


def _kill_all(ns: str) -> None:
    r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=10)
    for pid in r.stdout.split():
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass
