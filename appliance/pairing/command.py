"""`foxden pair --user EMAIL`: sign a phone's Firefox in by QR code, from a terminal.

Shows the QR code (segno) and the pairing URL, shows which phone connected (its browser,
its address) and asks whether to allow it (``--yes`` allows without asking), then reports
how it ended.  ``--json`` prints one JSON object per line instead, the first carrying the
pairing URL; never the password, kB, tokens, the code or keys_jwe.

Exit status: 0 paired (the phone redeemed its code), 1 failed, 3 declined, 4 timed out.
"""

from __future__ import annotations

import getpass
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import trio

from . import authority, channel, fxaclient

EXIT = {authority.State.DONE: 0, authority.State.FAILED: 1, authority.State.DECLINED: 3,
        authority.State.TIMED_OUT: 4}


class PairError(Exception):
    """Bad input before any pairing starts; the message is for the user."""


@dataclass(frozen=True, slots=True)
class PairOptions:
    email: str
    public_url: str
    connect_url: str | None = None
    ca_file: Path | None = None
    yes: bool = False
    as_json: bool = False
    timeout: float = 600.0
    device_name: str = "Foxden"


def resolve_public_url(explicit: str | None, config: Any) -> str:
    """``--url``, else the configuration's ``public_url``, else what `foxden serve` derives
    by default (https://<public_name or host>.local[:port of `listen`])."""
    url = explicit or getattr(config, "public_url", None)
    if not url:
        listen = getattr(config, "listen", "") or ""
        if getattr(config, "tls", "on") == "off":
            url = "http://" + (listen or "127.0.0.1:8000")
        else:
            from ..serve import host_label

            name = getattr(config, "public_name", "") or f"{host_label()}.local"
            port = listen.rsplit(":", 1)[1] if ":" in listen else ""
            url = f"https://{name}" + (f":{port}" if port and port != "443" else "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PairError(f"not a usable public URL: {url!r} (give --url https://host[:port])")
    return url.rstrip("/")


def read_password(from_stdin: bool, email: str) -> str:
    # Never a command-line argument: ps and shell history would show it.
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
    elif sys.stdin.isatty():
        password = getpass.getpass(f"Password for {email}: ")
    else:
        raise PairError("no terminal to ask for the password on: use --password-stdin")
    if not password:
        raise PairError("no password given")
    return password


def run(options: PairOptions, password: str, *, out: TextIO | None = None) -> int:
    secret = authority.Secret(password)
    del password
    return trio.run(_main, options, secret, out or sys.stdout)


async def _main(options: PairOptions, secret: authority.Secret, out: TextIO) -> int:
    # httpx logs every request at INFO: noise on a terminal (never secrets: no URL has any).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    context = None
    if options.public_url.startswith("https:") or (options.connect_url or "").startswith(
            "https:"):
        context = channel.ssl_context(options.ca_file)
    client = fxaclient.FxaClient(options.public_url, connect_url=options.connect_url,
                                 ssl_context=context)
    ui = _TerminalUI(options, out)

    def open_channel() -> Any:
        return channel.open_channel(options.connect_url or options.public_url,
                                    ssl_context=context)

    timeouts = authority.Timeouts(total=options.timeout)
    outcome = await authority.run_pairing(
        public_url=options.public_url, email=options.email, password=secret,
        open_channel=open_channel, authorize=client.authorize_pairing, confirm=ui.confirm,
        notify=ui.notify, timeouts=timeouts, device_name=options.device_name)
    if outcome.ok and outcome.signed_in is False:
        return 1
    return EXIT[outcome.state]


class _TerminalUI:
    def __init__(self, options: PairOptions, out: TextIO) -> None:
        self.options = options
        self.out = out

    def _print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def notify(self, notice: authority.Notice) -> None:
        if self.options.as_json:
            self._print(json.dumps(notice.as_json(), separators=(",", ":")))
            return
        kind, data = notice.kind, notice.data
        if kind == "pairing_url":
            import segno

            qr = segno.make(data["url"])
            qr.terminal(out=self.out, compact=True)
            self._print(f"Scan this code with Firefox on the phone (Sign in → Scan pairing "
                        f"code), within {round(data['expires_in'] / 60)} minutes.")
            self._print(f"Pairing URL: {data['url']}")
        elif kind == "state":
            message = {"tls_handshake": "A phone is connecting…",
                       "authorizing": "Signing in and preparing the Sync keys…",
                       "sent_authorize": "Now confirm on the phone.",
                       "done": "Waiting for the phone to finish signing in…"}.get(data["state"])
            if message:
                self._print(message)
        elif kind == "phone":
            where = f" at {data['remote']}" if data.get("remote") else ""
            where += f" ({data['location']})" if data.get("location") else ""
            app = f", app: {data['client']}" if data["client"] != data["device"] else ""
            self._print(f"Phone: {data['device']}{where}{app}")
        elif kind == "phone_approved":
            self._print("The phone's user has approved.")
        elif kind == "signed_in":
            self._print("The phone is signed in." if data["signed_in"] else
                        "The phone got its code but did not sign in with it in time.")
        elif kind == "finished":
            state = data["state"]
            if state == "done":
                self._print("Paired." if data.get("signed_in", True) else "Pairing incomplete.")
            else:
                print(f"foxden: pairing {state.replace('_', ' ')}: {data['message']}",
                      file=sys.stderr, flush=True)

    async def confirm(self, phone: authority.PhoneInfo) -> bool:
        if self.options.yes:
            return True
        prompt = "" if self.options.as_json else (
            f"Allow {phone.device} to sign in as {self.options.email}? [y/N] ")

        def ask() -> str:
            if prompt:
                print(prompt, end="", file=self.out, flush=True)
            return sys.stdin.readline()

        answer = await trio.to_thread.run_sync(ask, abandon_on_cancel=True)
        return answer.strip().lower() in ("y", "yes")


def device_name() -> str:
    """The authority's name as the phone shows it (desktop sends its Sync device name)."""
    from ..serve import host_label

    return f"Foxden on {host_label()}"
