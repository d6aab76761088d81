"""The sentinel proxy (firefox-testing.md §4): proof that Firefox reached nothing off loopback.

Firefox's HTTP and SSL proxies both point here (``user.js``, ``network.proxy.*``); loopback
stays unproxied, so the server under test is reached directly and *everything else* lands
on this listener. Each connection is recorded (time, peer, first request line, e.g.
``CONNECT push.services.mozilla.com:443 HTTP/1.1``) and answered ``403 Forbidden``; with
``network.proxy.failover_direct = false`` Firefox then gives up (``NS_ERROR_PROXY_FORBIDDEN``).

It runs in its own threads, independent of the test's Trio loop, so it keeps refusing even
while the loop is busy. A test passes only if :meth:`Sentinel.attempts` stays empty.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

READ_TIMEOUT = 5.0
MAX_LINE = 8192
REFUSAL = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class Attempt:
    at: float  # time.time()
    peer: str
    request_line: str  # "" when the client sent nothing before the read timeout
    process: str = ""  # "pid name" of the connecting process, when it could be found

    def __str__(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.at))
        who = f" [{self.process}]" if self.process else ""
        return f"{stamp} from {self.peer}{who}: {self.request_line or '<no request line>'}"


def _who(peer: tuple[str, int]) -> str:
    """The local process that owns the client end of this connection (diagnostics only)."""
    try:
        import psutil

        for conn in psutil.net_connections(kind="tcp4"):
            if conn.laddr and (conn.laddr.ip, conn.laddr.port) == peer and conn.pid:
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid} {proc.name()} (parent {proc.ppid()})"
    except Exception:  # noqa: BLE001 - best effort
        return ""
    return ""


class Sentinel:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: list[Attempt] = []
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []
        self.port = 0

    def start(self) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.settimeout(0.2)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="sentinel", daemon=True)
        self._thread.start()
        return self.port

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=self._handle, args=(conn, addr), daemon=True)
            self._workers.append(worker)
            worker.start()

    def _handle(self, conn: socket.socket, addr: tuple[str, int]) -> None:
        at = time.time()
        who = _who(addr)
        data = b""
        conn.settimeout(READ_TIMEOUT)
        try:
            while b"\n" not in data and len(data) < MAX_LINE:
                chunk = conn.recv(1024)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        line = data.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")[:500]
        with self._lock:
            self._attempts.append(Attempt(at, f"{addr[0]}:{addr[1]}", line, who))
        try:
            conn.sendall(REFUSAL)
        except OSError:
            pass
        finally:
            conn.close()

    def attempts(self) -> list[Attempt]:
        with self._lock:
            return list(self._attempts)

    def report(self) -> str:
        attempts = self.attempts()
        lines = "\n".join(f"  {a}" for a in attempts)
        return f"the sentinel proxy recorded {len(attempts)} attempt(s) to leave loopback:\n{lines}"

    def assert_clean(self, when: str = "") -> None:
        if self.attempts():
            suffix = f" ({when})" if when else ""
            raise AssertionError(self.report() + suffix)

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for worker in self._workers:
            worker.join(timeout=READ_TIMEOUT + 1)

    def __enter__(self) -> Sentinel:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
