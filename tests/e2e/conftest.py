"""Fixtures for the real-Firefox tests: a recorded server, the sentinel, ``firefox_factory``.

* ``foxden`` - a real Hypercorn on ``127.0.0.1`` over a real SQLCipher file (like
  ``tests/conftest.py``'s ``server``), with every HTTP exchange recorded
  (``foxden.requests``) and the server's log records captured (``foxden.logs``).
* ``sentinel`` - the refusing proxy of firefox-testing.md §4; the test fails if it recorded
  anything by the end.
* ``firefox_factory`` - ``await firefox_factory("devA")`` gives a started
  :class:`~tests.e2e.firefox.FirefoxInstance` (``start=False`` to start it yourself, e.g.
  two in parallel). At most two run at once (the machine has two cores). Every instance is
  closed at teardown, whatever happened, and the test fails if a process survives.

No Firefox installed is a failure with instructions, never a skip: CI installs it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import trio

from server.app import create_app
from tests import conftest as shared_conftest
from tests.conftest import LiveServer

from .firefox import FirefoxInstance, FirefoxNotInstalled, find_firefox
from .sentinel import Sentinel

MAX_FIREFOXES = 2
BODY_KEEP = 4096


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "firefox: drives a real headless Firefox ESR through Marionette (tests/e2e)"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    # pytest-trio runs async fixtures' teardown inside the call phase, before any report
    # exists; so the diagnostics of a failed test are attached here, from the files left.
    outcome = yield
    report = outcome.get_result()
    diagnostics = getattr(item, "_e2e_diagnostics", None)
    if report.failed and report.when in ("call", "teardown") and diagnostics is not None:
        for title, text in diagnostics():
            report.sections.append((title, text))
        item._e2e_diagnostics = None  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the recorded server


@dataclass
class Exchange:
    at: float
    method: str
    path: str
    query: str
    status: int | None = None
    request_body: bytes = b""
    response_body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def __str__(self) -> str:
        q = f"?{self.query}" if self.query else ""
        if len(q) > 120:
            q = q[:117] + "..."
        return f"{self.method} {self.path}{q} -> {self.status}"


class RecordingApp:
    """ASGI middleware: every HTTP exchange, with bodies (truncated), in arrival order."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log: list[Exchange] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ex = Exchange(time.time(), scope["method"], scope["path"],
                      scope.get("query_string", b"").decode("latin-1"),
                      headers={k.decode("latin-1").lower(): v.decode("latin-1")
                               for k, v in scope.get("headers", [])})
        self.log.append(ex)

        async def receive_() -> dict[str, Any]:
            message = await receive()
            if message.get("type") == "http.request" and len(ex.request_body) < BODY_KEEP:
                ex.request_body += message.get("body", b"")[:BODY_KEEP]
            return message

        async def send_(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                ex.status = message["status"]
            elif message["type"] == "http.response.body" and len(ex.response_body) < BODY_KEEP:
                ex.response_body += message.get("body", b"")[:BODY_KEEP]
            await send(message)

        await self.app(scope, receive_, send_)


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.levels: dict[str, int] = {}  # the loggers' own levels, restored at teardown

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, level: int = logging.INFO) -> list[str]:
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        return [fmt.format(r) for r in self.records if r.levelno >= level]


@dataclass
class RecordedServer:
    """``tests.conftest.LiveServer`` plus the request log and the captured server log."""

    live: LiveServer
    recorder: RecordingApp
    capture: LogCapture

    @property
    def url(self) -> str:
        return self.live.url

    @property
    def requests(self) -> list[Exchange]:
        return self.recorder.log

    @property
    def runtime(self):  # type: ignore[no-untyped-def]
        return self.live.runtime

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        return self.live.settings

    @property
    def db(self):  # type: ignore[no-untyped-def]
        return self.live.db

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return self.live.client(**kw)

    def seen(self, path: str, method: str | None = None, since: float = 0) -> list[Exchange]:
        return [e for e in self.requests if e.path == path and e.at >= since
                and (method is None or e.method == method)]

    def errors(self) -> list[str]:
        return self.capture.lines(logging.ERROR)

    def request_report(self, since: float = 0, limit: int = 300) -> str:
        rows = [str(e) for e in self.requests if e.at >= since][-limit:]
        return "\n".join(rows)

    def failures(self, since: float = 0) -> str:
        """Non-2xx responses with their bodies: what to quote in a server-bug report."""
        out = []
        for e in self.requests:
            if e.at >= since and e.status is not None and e.status >= 400:
                out.append(f"{e}\n    request: {e.request_body[:300]!r}\n"
                           f"    response: {e.response_body[:300]!r}")
        return "\n".join(out)


LOGGERS = ("foxden", "server", "appliance", "hypercorn.error", "quart.app")


async def start_recorded_server(tmp_path: Path, nursery: trio.Nursery) -> RecordedServer:
    """``tests.conftest.start_server`` with its app wrapped in a :class:`RecordingApp`."""
    recorders: list[RecordingApp] = []

    def recording_create_app(*args: Any, **kw: Any) -> RecordingApp:
        recorders.append(RecordingApp(create_app(*args, **kw)))
        return recorders[-1]

    capture = LogCapture()
    for name in LOGGERS:
        logger = logging.getLogger(name)
        capture.levels[name] = logger.level
        logger.addHandler(capture)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(shared_conftest, "create_app", recording_create_app)
        live = await shared_conftest.start_server(tmp_path, nursery)
    return RecordedServer(live, recorders[0], capture)


@pytest.fixture
async def foxden(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[RecordedServer]:
    (tmp_path / "foxden").mkdir()
    recorded = await start_recorded_server(tmp_path / "foxden", nursery)
    try:
        yield recorded
    finally:
        recorded.live.cancel.cancel()
        for name in LOGGERS:
            logger = logging.getLogger(name)
            logger.removeHandler(recorded.capture)
            logger.setLevel(recorded.capture.levels.get(name, logging.NOTSET))


# ---------------------------------------------------------------- sentinel and Firefox


@pytest.fixture
def sentinel() -> Any:
    guard = Sentinel()
    guard.start()
    try:
        yield guard
    finally:
        guard.stop()  # only after every Firefox is gone: firefox_factory tears down first
    if guard.attempts():
        pytest.fail(guard.report(), pytrace=False)


FirefoxFactory = Callable[..., Awaitable[FirefoxInstance]]


@pytest.fixture
async def firefox_factory(foxden: RecordedServer, sentinel: Sentinel, tmp_path: Path,
                          request: pytest.FixtureRequest) -> AsyncIterator[FirefoxFactory]:
    try:
        binary = find_firefox()
    except FirefoxNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)
    made: list[FirefoxInstance] = []

    async def make(name: str, *, start: bool = True, **kw: Any) -> FirefoxInstance:
        # Running, or made but not started yet (the caller starts it, e.g. in parallel).
        active = [f.name for f in made if f.running or f.proc is None]
        if len(active) >= MAX_FIREFOXES:
            raise RuntimeError(f"at most {MAX_FIREFOXES} Firefox instances at once: {active}")
        if any(f.name == name for f in made):
            raise ValueError(f"a Firefox named {name!r} exists already")
        ff = FirefoxInstance(name, tmp_path / f"profile-{name}", server_root=foxden.url,
                             sentinel_port=sentinel.port, binary=binary,
                             log_path=tmp_path / f"firefox-{name}.log", **kw)
        made.append(ff)
        if start:
            await ff.start()
        return ff

    def diagnostics() -> list[tuple[str, str]]:
        out = []
        for ff in made:
            out.append((f"firefox {ff.name} log", ff.log_tail(150)))
            for path in ff.sync_logs()[-2:]:
                out.append((f"firefox {ff.name} {path.name}",
                            path.read_text(errors="replace")[-8000:]))
        out.append(("server requests", foxden.request_report()))
        out.append(("server error responses", foxden.failures() or "(none)"))
        out.append(("server log", "\n".join(foxden.capture.lines()[-200:]) or "(empty)"))
        out.append(("sentinel", sentinel.report()))
        out.append(("kept", f"profiles and logs in {tmp_path}"))
        return out

    request.node._e2e_diagnostics = diagnostics
    try:
        yield make
    finally:
        with trio.CancelScope(shield=True):
            for ff in made:
                await ff.close()
        leftovers = {ff.name: ff.leftover_processes() for ff in made}
        # Kept next to the profiles and Firefox logs, pass or fail.
        (tmp_path / "server-requests.txt").write_text(
            "\n".join(f"{time.strftime('%H:%M:%S', time.localtime(e.at))} {e}"
                      for e in foxden.requests) + "\n")
        (tmp_path / "server-log.txt").write_text("\n".join(foxden.capture.lines()) + "\n")
        alive = {k: v for k, v in leftovers.items() if v}
        if alive:
            pytest.fail(f"Firefox processes survived clean-up: {alive}", pytrace=False)
