"""A real Firefox ESR for end-to-end tests, driven through Marionette.

Follows shared/docs/firefox-testing.md: Foxden launches Firefox itself (never
``Marionette(bin=...)``, whose launcher writes a dummy ``identity.fxaccounts.auth.uri``),
in its own process group, with a fresh profile holding the full ``user.js`` of §3.2, the
environment of §2.1, ``marionette.port = 0`` (the port is read from
``MarionetteActivePort``) and the sentinel proxy of §4 for everything that is not loopback.

marionette-driver is blocking, while the server under test runs in the test's own Trio
loop; every Marionette call therefore runs in a worker thread (``trio.to_thread``) under a
deadline, so a stuck Firefox can never stall the server it is talking to. A call that
times out marks the connection broken; the instance can then only be closed.

Clean-up (§9): ``Marionette:Quit``, wait for the PID, SIGTERM then SIGKILL the process
group, then SIGKILL any recorded descendant or ``crashhelper`` (argv[1] == our PID) that
is still alive. Processes are recorded by (pid, create time), so a reused PID is never hit.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psutil
import trio

with warnings.catch_warnings():
    # mozinfo (distro.linux_distribution) and mozrunner (telnetlib) warn on import.
    warnings.simplefilter("ignore", DeprecationWarning)
    from marionette_driver import errors as marionette_errors
    from marionette_driver.by import By
    from marionette_driver.marionette import Marionette

T = TypeVar("T")

FIREFOX_BIN_ENV = "FIREFOX_BIN"
DEFAULT_FIREFOX_BIN = "firefox-esr"
INSTALL_HINT = (
    "run `.ci/install-firefox` as root (or `sudo apt-get install -y --no-install-recommends "
    "firefox-esr`), or point FIREFOX_BIN at a Firefox ESR executable"
)

# Deadlines (seconds). Every wait in this module has one.
START_TIMEOUT = 60.0
CALL_TIMEOUT = 30.0
QUIT_WAIT = 20.0
TERM_GRACE = 5.0
SOCKET_TIMEOUT = 150.0  # marionette-driver's own socket timeout: the last line of defence
# What a process we started may run (checked before any kill, against PID reuse).
FIREFOX_EXECUTABLES = {"firefox-esr", "firefox", "firefox-bin", "crashhelper", "glxtest",
                       "vaapitest", "pingsender"}


class FirefoxNotInstalled(RuntimeError):
    """No Firefox binary: the e2e tests fail with this message (they never skip)."""


class FirefoxError(RuntimeError):
    """Firefox did not start, crashed, or did not answer in time."""


def find_firefox() -> str:
    """The Firefox executable: ``$FIREFOX_BIN`` or ``firefox-esr`` on ``PATH``."""
    name = os.environ.get(FIREFOX_BIN_ENV) or DEFAULT_FIREFOX_BIN
    path = shutil.which(name)
    if path is None:
        raise FirefoxNotInstalled(
            f"Firefox not found: {name!r} is not an executable on PATH; {INSTALL_HINT}"
        )
    return path


def firefox_version(binary: str) -> str:
    out = subprocess.run(  # noqa: S603 - our own binary, fixed arguments
        [binary, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    return (out.stdout or out.stderr).strip()


def user_js_prefs(server_root: str, sentinel_port: int) -> list[tuple[str, Any]]:
    """The 114 prefs of firefox-testing.md §3.2, for this server and this sentinel."""
    if server_root.endswith("/") or server_root.count("/") != 2:
        raise ValueError(f"autoconfig wants an origin with no path, got {server_root!r}")
    return [
        # --- account server (the server under test, on loopback) ---
        ("identity.fxaccounts.autoconfig.uri", server_root),
        ("identity.fxaccounts.allowHttp", True),
        ("remote.prefs.recommended", False),  # Marionette must not set, then clear, FxA prefs
        # --- first-run / UI noise ---
        ("browser.shell.checkDefaultBrowser", False),
        ("browser.startup.page", 0),
        ("browser.startup.homepage", "about:blank"),
        ("browser.startup.homepage_override.mstone", "ignore"),
        ("startup.homepage_welcome_url", "about:blank"),
        ("startup.homepage_welcome_url.additional", ""),
        ("browser.aboutwelcome.enabled", False),
        ("termsofuse.bypassNotification", True),
        ("browser.preonboarding.enabled", False),
        ("browser.newtabpage.enabled", False),
        ("browser.newtabpage.activity-stream.feeds.section.topstories", False),
        ("browser.newtabpage.activity-stream.feeds.system.topstories", False),
        ("browser.newtabpage.activity-stream.feeds.topsites", False),
        ("browser.newtabpage.activity-stream.feeds.telemetry", False),
        ("browser.newtabpage.activity-stream.telemetry", False),
        ("browser.newtabpage.activity-stream.feeds.discoverystreamfeed", False),
        ("browser.newtabpage.activity-stream.showSponsored", False),
        ("browser.newtabpage.activity-stream.showSponsoredTopSites", False),
        ("browser.newtabpage.activity-stream.testing.shouldInitializeFeeds", False),
        ("browser.topsites.contile.enabled", False),
        ("browser.uitour.enabled", False),
        ("browser.discovery.enabled", False),
        ("extensions.pocket.enabled", False),
        ("browser.tabs.warnOnClose", False),
        ("browser.warnOnQuit", False),
        ("browser.sessionstore.resume_from_crash", False),
        ("toolkit.startup.max_resumed_crashes", -1),
        # --- telemetry / studies ---
        ("toolkit.telemetry.enabled", False),
        ("toolkit.telemetry.unified", False),
        ("toolkit.telemetry.archive.enabled", False),
        ("toolkit.telemetry.server", "data:,"),
        ("toolkit.telemetry.newProfilePing.enabled", False),
        ("toolkit.telemetry.shutdownPingSender.enabled", False),
        ("toolkit.telemetry.updatePing.enabled", False),
        ("toolkit.telemetry.bhrPing.enabled", False),
        ("toolkit.telemetry.firstShutdownPing.enabled", False),
        ("toolkit.telemetry.reportingpolicy.firstRun", False),
        ("toolkit.coverage.endpoint.base", ""),
        ("telemetry.fog.test.localhost_port", -1),
        ("datareporting.healthreport.uploadEnabled", False),
        ("datareporting.policy.dataSubmissionEnabled", False),
        ("datareporting.policy.dataSubmissionPolicyBypassNotification", True),
        ("datareporting.usage.uploadEnabled", False),
        ("app.normandy.enabled", False),
        ("app.normandy.api_url", ""),
        ("app.shield.optoutstudies.enabled", False),
        # --- updates ---
        ("app.update.disabledForTesting", True),
        ("app.update.auto", False),
        ("app.update.checkInstallTime", False),
        ("extensions.update.enabled", False),
        ("extensions.update.autoUpdateDefault", False),
        ("extensions.getAddons.cache.enabled", False),
        ("extensions.systemAddon.update.enabled", False),
        ("extensions.systemAddon.update.url", ""),
        ("extensions.blocklist.enabled", False),
        ("media.gmp-manager.url", ""),
        ("media.gmp-gmpopenh264.enabled", False),
        ("media.gmp-widevinecdm.enabled", False),
        ("browser.search.update", False),
        ("browser.region.network.url", ""),
        ("browser.region.update.enabled", False),
        ("geo.provider.network.url", ""),
        # --- remote settings / certificates (honoured only with MOZ_REMOTE_SETTINGS_DEVTOOLS=1) ---
        ("services.settings.server", "data:,#remote-settings-dummy/v1"),
        ("security.remote_settings.crlite_filters.enabled", False),
        ("security.remote_settings.intermediates.enabled", False),
        ("security.OCSP.enabled", 0),
        ("security.certerrors.mitm.priming.enabled", False),
        # --- captive portal / connectivity / DoH / speculative connections ---
        ("network.captive-portal-service.enabled", False),
        ("network.connectivity-service.enabled", False),
        ("captivedetect.canonicalURL", ""),
        ("network.manage-offline-status", False),  # never flip to offline: Sync won't run offline
        ("network.trr.mode", 5),
        ("network.dns.disablePrefetch", True),
        ("network.prefetch-next", False),
        ("network.http.speculative-parallel-limit", 0),
        ("browser.urlbar.speculativeConnect.enabled", False),
        ("browser.places.speculativeConnect.enabled", False),
        ("browser.urlbar.suggest.searches", False),
        ("browser.urlbar.merino.endpointURL", ""),
        # --- safe browsing / tracking-protection lists ---
        ("browser.safebrowsing.malware.enabled", False),
        ("browser.safebrowsing.phishing.enabled", False),
        ("browser.safebrowsing.blockedURIs.enabled", False),
        ("browser.safebrowsing.downloads.enabled", False),
        ("browser.safebrowsing.downloads.remote.enabled", False),
        ("browser.safebrowsing.provider.google4.updateURL", ""),
        ("browser.safebrowsing.provider.google4.gethashURL", ""),
        ("browser.safebrowsing.provider.google.updateURL", ""),
        ("browser.safebrowsing.provider.google.gethashURL", ""),
        ("browser.safebrowsing.provider.mozilla.updateURL", ""),
        ("browser.safebrowsing.provider.mozilla.gethashURL", ""),
        # --- push (FxA device registration then has no push endpoint: fine for tests) ---
        ("dom.push.connection.enabled", False),
        # --- ML / translations / backup ---
        ("browser.ml.enable", False),
        ("browser.translations.enable", False),
        ("browser.backup.enabled", False),
        # --- automation friendliness ---
        ("dom.max_script_run_time", 0),
        ("dom.max_chrome_script_run_time", 0),
        ("browser.dom.window.dump.enabled", True),
        ("signon.rememberSignons", False),
        # --- debug logging (FxA + Sync to stdout; Sync logs also in <profile>/weave/logs) ---
        ("identity.fxaccounts.loglevel", "Debug"),
        ("services.sync.log.appender.dump", "Debug"),
        ("services.sync.log.appender.file.logOnSuccess", True),
        # --- sentinel proxy: every non-loopback request goes to the sentinel, which refuses it ---
        ("network.proxy.type", 1),
        ("network.proxy.http", "127.0.0.1"),
        ("network.proxy.http_port", sentinel_port),
        ("network.proxy.ssl", "127.0.0.1"),
        ("network.proxy.ssl_port", sentinel_port),
        ("network.proxy.socks", ""),
        ("network.proxy.no_proxies_on", ""),
        ("network.proxy.allow_hijacking_localhost", False),
        ("network.proxy.failover_direct", False),
        # --- Marionette ---
        ("marionette.port", 0),
    ]


# Beyond the doc's list (found with a real Firefox ESR 153.8, see the report): after about
# 20 s of user idle, BrowserGlue's best-effort idle task GMPInstallManager.simpleCheckAndInstall
# runs; with media.gmp-manager.url = "" it falls back to the built-in GMP sources and asks
# Google's component updater about Widevine (CONNECT update.googleapis.com:443), because
# media.gmp-widevinecdm.allow-chromium-update defaults to true. updateEnabled = false stops the
# whole check ("Updates are disabled via media.gmp-manager.updateEnabled").
EXTRA_PREFS: list[tuple[str, Any]] = [
    ("media.gmp-manager.updateEnabled", False),
    ("media.gmp-widevinecdm.allow-chromium-update", False),
]


def render_user_js(prefs: Iterable[tuple[str, Any]]) -> str:
    return "".join(
        f"user_pref({json.dumps(name)}, {json.dumps(value)});\n" for name, value in prefs
    )


def firefox_env(user: str) -> dict[str, str]:
    """The inherited environment plus the five variables of §2.1."""
    env = dict(os.environ)
    env.update({
        "MOZ_HEADLESS": "1",
        "MOZ_REMOTE_SETTINGS_DEVTOOLS": "1",  # else services.settings.server is ignored
        "MOZ_CRASHREPORTER_DISABLE": "1",
        "MOZ_CRASHREPORTER_SHUTDOWN": "1",
        "USER": user,  # the FxA device name is "<USER>’s Firefox on <host>"
    })
    return env


def async_script(body: str) -> str:
    """Wrap an async function body; Marionette awaits the returned Promise."""
    return f"return (async () => {{\n{body}\n}})();"


class FirefoxInstance:
    """One headless Firefox on one profile directory.

    ``await start()``; then ``content()`` / ``chrome()`` run async JS snippets and
    ``call()`` runs any marionette-driver call in a worker thread; ``close()`` always
    leaves no process behind. ``restart()`` quits and starts again on the same profile.
    """

    def __init__(self, name: str, profile_dir: Path, *, server_root: str, sentinel_port: int,
                 binary: str | None = None, log_path: Path | None = None,
                 user: str | None = None,
                 extra_prefs: Sequence[tuple[str, Any]] = ()) -> None:
        self.name = name
        self.profile_dir = Path(profile_dir)
        self.server_root = server_root
        self.sentinel_port = sentinel_port
        self.binary = binary or find_firefox()
        self.install_dir = Path(os.path.realpath(self.binary)).parent
        self.log_path = log_path or self.profile_dir.with_name(f"{self.profile_dir.name}.log")
        self.user = user or name
        self.extra_prefs = list(extra_prefs)
        self.proc: subprocess.Popen[bytes] | None = None
        self.marionette: Marionette | None = None
        self.broken: str | None = None
        self.starts: list[dict[str, float]] = []  # per start: seconds to port file / session
        self._lock = trio.Lock()
        self._known: dict[int, float] = {}  # pid -> create_time of everything we saw

    # ---------- profile and process ----------

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def argv(self) -> list[str]:
        return [self.binary, "--marionette", "-remote-allow-system-access", "--no-remote",
                "--new-instance", "--headless", "--profile", str(self.profile_dir),
                "about:blank"]

    def write_profile(self) -> None:
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        prefs = user_js_prefs(self.server_root, self.sentinel_port) + EXTRA_PREFS \
            + self.extra_prefs
        (self.profile_dir / "user.js").write_text(render_user_js(prefs), encoding="utf-8")

    async def start(self, timeout: float = START_TIMEOUT) -> None:
        if self.running:
            raise FirefoxError(f"{self.name}: already running (pid {self.pid})")
        self.write_profile()
        port_file = self.profile_dir / "MarionetteActivePort"
        port_file.unlink(missing_ok=True)
        self.broken = None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} start {self.argv()}\n".encode())
            log.flush()
            t0 = time.monotonic()
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, our binary
                self.argv(), env=firefox_env(self.user), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                cwd=self.profile_dir,
            )
        self._remember([self.proc.pid])
        timing: dict[str, float] = {}
        try:
            with trio.fail_after(timeout):
                port = await self._wait_for_port(port_file)
                timing["port_file"] = time.monotonic() - t0
                await self._connect(port, deadline=t0 + timeout)
                timing["session"] = time.monotonic() - t0
        except trio.TooSlowError:
            await self.close()
            raise FirefoxError(
                f"{self.name}: Marionette not ready within {timeout:.0f} s\n{self.log_tail()}"
            ) from None
        except BaseException:
            await self.close()
            raise
        self.starts.append(timing)
        self._snapshot_processes()

    async def _wait_for_port(self, port_file: Path) -> int:
        while True:
            assert self.proc is not None
            code = self.proc.poll()
            if code is not None:
                raise FirefoxError(
                    f"{self.name}: Firefox exited with status {code} before Marionette was "
                    f"listening\n{self.log_tail()}"
                )
            with contextlib.suppress(FileNotFoundError, ValueError):
                text = port_file.read_text().strip()
                if text:
                    return int(text)
            await trio.sleep(0.05)

    async def _connect(self, port: int, *, deadline: float) -> None:
        def connect() -> Marionette:
            remaining = max(1.0, deadline - time.monotonic())
            client = Marionette(host="127.0.0.1", port=port, socket_timeout=SOCKET_TIMEOUT,
                                startup_timeout=int(remaining) + 1)
            client.start_session(timeout=remaining)
            client.timeout.page_load = 30
            client.timeout.script = CALL_TIMEOUT
            client.timeout.implicit = 0
            return client

        self.marionette = await trio.to_thread.run_sync(connect, abandon_on_cancel=True)

    # ---------- talking to Firefox ----------

    async def call(self, fn: Callable[[Marionette], T], *, timeout: float = CALL_TIMEOUT) -> T:
        """Run ``fn(marionette)`` in a worker thread, one call at a time, under a deadline."""
        if self.broken:
            raise FirefoxError(f"{self.name}: connection unusable: {self.broken}")
        if self.marionette is None or not self.running:
            raise FirefoxError(f"{self.name}: not running\n{self.log_tail()}")
        client = self.marionette
        async with self._lock:
            try:
                with trio.fail_after(timeout):
                    return await trio.to_thread.run_sync(
                        functools.partial(fn, client), abandon_on_cancel=True
                    )
            except trio.TooSlowError:
                self.broken = f"a Marionette call took longer than {timeout:.0f} s"
                raise FirefoxError(f"{self.name}: {self.broken}\n{self.log_tail()}") from None
            except (marionette_errors.MarionetteException, OSError) as exc:
                if not self.running:
                    self.broken = f"Firefox exited ({exc.__class__.__name__})"
                    raise FirefoxError(
                        f"{self.name}: Firefox died during a call: {exc}\n{self.log_tail()}"
                    ) from exc
                raise

    async def script(self, body: str, *args: Any, context: str = "content",
                     timeout: float = CALL_TIMEOUT) -> Any:
        """Run an async JS function body in ``context``; ``arguments[i]`` are ``args``."""
        wrapped = async_script(body)

        def run(m: Marionette) -> Any:
            with m.using_context(context):
                return m.execute_script(wrapped, script_args=list(args),
                                        script_timeout=int(timeout * 1000))

        return await self.call(run, timeout=timeout + 10)

    async def content(self, body: str, *args: Any, timeout: float = CALL_TIMEOUT) -> Any:
        return await self.script(body, *args, context="content", timeout=timeout)

    async def chrome(self, body: str, *args: Any, timeout: float = CALL_TIMEOUT) -> Any:
        return await self.script(body, *args, context="chrome", timeout=timeout)

    async def navigate(self, url: str, *, timeout: float = CALL_TIMEOUT) -> None:
        def go(m: Marionette) -> None:
            with m.using_context("content"):
                m.navigate(url)

        await self.call(go, timeout=timeout)

    async def url(self) -> str:
        def get(m: Marionette) -> str:
            with m.using_context("content"):
                return m.get_url()

        return await self.call(get)

    async def wait_until(self, probe: Callable[[], Any], what: str, *,
                         timeout: float = 20.0, interval: float = 0.2) -> Any:
        """Await ``probe()`` (an async callable) until it returns something truthy."""
        last: Any = None
        with trio.move_on_after(timeout):
            while True:
                last = await probe()
                if last:
                    return last
                await trio.sleep(interval)
        raise FirefoxError(f"{self.name}: timed out after {timeout:.0f} s waiting for {what}; "
                           f"last value {last!r}")

    async def wait_for_url(self, prefix: str, *, timeout: float = 20.0) -> str:
        async def probe() -> str | None:
            href = await self.url()
            return href if href.startswith(prefix) else None

        return await self.wait_until(probe, f"a page under {prefix}", timeout=timeout)

    async def element(self, element_id: str, *, timeout: float = 15.0,
                      displayed: bool = True) -> Any:
        """Poll (content context) until the element with this id exists (and is shown)."""
        def find(m: Marionette) -> Any:
            with m.using_context("content"):
                try:
                    el = m.find_element(By.ID, element_id)
                except marionette_errors.NoSuchElementException:
                    return None
                return el if not displayed or el.is_displayed() else None

        async def probe() -> Any:
            return await self.call(find)

        return await self.wait_until(probe, f"#{element_id}", timeout=timeout)

    async def type_into(self, element_id: str, text: str, *, timeout: float = 15.0) -> None:
        el = await self.element(element_id, timeout=timeout)

        def typing(m: Marionette) -> None:
            with m.using_context("content"):
                el.clear()
                el.send_keys(text)

        await self.call(typing)

    async def click(self, element_id: str, *, timeout: float = 15.0) -> None:
        el = await self.element(element_id, timeout=timeout)

        def clicking(m: Marionette) -> None:
            with m.using_context("content"):
                el.click()

        await self.call(clicking)

    async def open_signin_from_preferences(self, *, timeout: float = 20.0) -> str:
        """§5.1: about:preferences#sync, click the real *Sign in* button, await our page."""
        await self.navigate("about:preferences#sync")
        try:
            await self.click("noFxaSignIn", timeout=10.0)
        except marionette_errors.MarionetteException:
            # The doc's fallback: a JS click from content context.
            await self.content('document.getElementById("noFxaSignIn").click(); return true;')
        return await self.wait_for_url(self.server_root + "/", timeout=timeout)

    async def switch_to_tab(self, prefix: str, *, timeout: float = 20.0) -> str:
        """Switch to the (possibly new) tab whose page starts with ``prefix``; its URL."""
        def scan(m: Marionette) -> str | None:
            with m.using_context("content"):
                current = m.current_window_handle
                if m.get_url().startswith(prefix):
                    return m.get_url()
                for handle in m.window_handles:
                    if handle == current:
                        continue
                    m.switch_to_window(handle)
                    if m.get_url().startswith(prefix):
                        return m.get_url()
                m.switch_to_window(current)
                return None

        async def probe() -> str | None:
            return await self.call(scan)

        return await self.wait_until(probe, f"a tab under {prefix}", timeout=timeout,
                                     interval=0.3)

    async def screenshot(self, path: Path) -> None:
        def shot(m: Marionette) -> None:
            with m.using_context("content"), open(path, "wb") as fh:
                m.save_screenshot(fh)

        await self.call(shot)

    # ---------- diagnostics ----------

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return f"[{self.name}: no log at {self.log_path}]"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"----- last {lines} lines of {self.log_path} -----\n{tail}"

    def sync_logs(self) -> list[Path]:
        return sorted((self.profile_dir / "weave" / "logs").glob("*.txt"))

    # ---------- processes and shutdown ----------

    def _remember(self, pids: Iterable[int]) -> None:
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                self._known.setdefault(pid, psutil.Process(pid).create_time())

    def _snapshot_processes(self) -> None:
        """Record the descendants and the crashhelper of our Firefox (§9)."""
        if not self.running or self.proc is None:
            return
        root = self.proc.pid
        try:
            self._remember(p.pid for p in psutil.Process(root).children(recursive=True))
        except psutil.Error:
            pass
        for p in psutil.process_iter(["name", "cmdline"]):
            with contextlib.suppress(psutil.Error):
                cmd = p.info["cmdline"] or []
                if (p.info["name"] == "crashhelper" or
                        (cmd and os.path.basename(cmd[0]) == "crashhelper")) \
                        and len(cmd) > 1 and cmd[1] == str(root):
                    self._remember([p.pid])

    def _ours(self, pid: int) -> psutil.Process | None:
        """The process, if it is still the one we recorded and runs from our install."""
        try:
            p = psutil.Process(pid)
            if abs(p.create_time() - self._known[pid]) > 0.01:
                return None
            exe = p.exe()
            if exe and Path(os.path.realpath(exe)).parent != self.install_dir \
                    and os.path.basename(exe) not in FIREFOX_EXECUTABLES:
                return None
            if p.status() == psutil.STATUS_ZOMBIE:
                return None
            return p
        except (psutil.Error, KeyError):
            return None

    def leftover_processes(self) -> list[int]:
        return [pid for pid in self._known if self._ours(pid) is not None]

    def _group_alive(self, pgid: int) -> bool:
        for p in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                    return True
        return False

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: Firefox leads its own group
        # While a member is alive the group id cannot be reused, so this hits only ours.
        if self.proc.poll() is None or self._group_alive(pgid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)

    async def _wait_exit(self, seconds: float) -> bool:
        with trio.move_on_after(seconds):
            while self.proc is not None and self.proc.poll() is None:
                await trio.sleep(0.05)
            return True
        return False

    async def quit(self, *, wait: float = QUIT_WAIT) -> float | None:
        """In-app quit, then escalate. Returns seconds from quit request to exit (or None)."""
        t0 = time.monotonic()
        self._snapshot_processes()
        client, self.marionette = self.marionette, None
        asked = False
        if client is not None:
            if not self.broken and self.running:
                with contextlib.suppress(Exception):
                    with trio.fail_after(10):
                        await trio.to_thread.run_sync(client._request_in_app_shutdown,
                                                      abandon_on_cancel=True)
                    asked = True
            with contextlib.suppress(Exception):
                client.delete_session(send_request=False)
        # Only an acknowledged Marionette:Quit earns the long wait; otherwise escalate soon.
        exited = await self._wait_exit(wait if asked else 1.0)
        took = time.monotonic() - t0 if exited else None
        if not exited:
            self._signal_group(signal.SIGTERM)
            if not await self._wait_exit(TERM_GRACE):
                self._signal_group(signal.SIGKILL)
                await self._wait_exit(TERM_GRACE)
        # Content processes and the crashhelper (re-parented to PID 1): a moment, then KILL.
        with trio.move_on_after(3):
            while self.leftover_processes():
                await trio.sleep(0.1)
        self._signal_group(signal.SIGKILL)
        for pid in self.leftover_processes():
            p = self._ours(pid)
            if p is not None:
                with contextlib.suppress(psutil.Error):
                    p.kill()
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=TERM_GRACE)
        return took

    async def restart(self, timeout: float = START_TIMEOUT) -> None:
        await self.quit()
        await self.start(timeout=timeout)

    async def close(self) -> None:
        """Always safe, idempotent, shielded from cancellation, bounded in time."""
        with trio.CancelScope(shield=True), trio.move_on_after(QUIT_WAIT + 3 * TERM_GRACE + 10):
            await self.quit()
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
