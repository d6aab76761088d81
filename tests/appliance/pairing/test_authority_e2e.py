"""Foxden as the pairing authority, end to end, against Mozilla's own pairing library.

The phone is tests/appliance/pairing/supplicant.mjs: npm ``fxa-pairing-channel``'s
``PairingChannel.connect`` (what FxA's /pair/supp page runs inside Fenix) over the real
websocket relay of a live server.  It sends ``pair:supp:request`` with a PKCE challenge and
an ephemeral P-256 ``keys_jwk``; the test then does what the phone's native fxa-client does
(pairing.md §5.4): redeems the code at ``/v1/oauth/token`` with the verifier, decrypts
``keys_jwe`` with the ephemeral key, and checks the oldsync key against what a desktop login
of the same account derives, and that the phone's access token gets a storage token.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from appliance import users
from appliance.pairing import authority, channel, fxaclient
from server.accounts import store
from server.crypto import fxatokens, hawk, onepw
from tests.appliance.pairing.nodepeer import node_binary
from tests.appliance.pairing.test_interop_fxa_pairing_channel import fpc_env  # noqa: F401
from tests.conftest import LiveServer

SUPPLICANT = Path(__file__).with_name("supplicant.mjs")
FENIX = "a2270f727f45f648"
DESKTOP = "5882386c6d801776"
OLDSYNC = "https://identity.mozilla.com/apps/oldsync"
WEBCHANNEL = "urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel"
PASSWORD = "correct horse battery"
NODE_TIMEOUT = 90


# --- helpers -----------------------------------------------------------------------------------

async def add_account(server: LiveServer, email: str, *, key_stretch: int = 2) -> str:
    new = await trio.to_thread.run_sync(
        lambda: users.new_password(email, PASSWORD, key_stretch=key_stretch))
    now = int(time.time() * 1000)
    row = await server.db.write(lambda c: store.create(c, email, new.record, now))
    return row.uid  # type: ignore[no-any-return]


def _hawk(creds: fxatokens.TokenCredentials, server: LiveServer, method: str, path: str,
          body: bytes | None) -> str:
    return hawk.sign_header(creds.hawk_key, creds.id, method, path, server.settings.public_host,
                            server.settings.public_port, int(time.time()),
                            base64.b64encode(secrets.token_bytes(8)).decode(),
                            content_type="application/json" if body is not None else "",
                            body=body)


async def desktop_oldsync_key(server: LiveServer, email: str, password: str) -> dict[str, str]:
    """What Firefox desktop derives for this account: onepw v1 login, key bundle, kB, the
    scoped-key-data timestamp (firefox-signin.md §2.4, §3.3, §5) — independent of fxaclient."""
    creds = onepw.client_credentials_v1(email, password)
    async with server.client() as c:
        r = await c.post("/v1/account/login?keys=true",
                         json={"email": email, "authPW": creds.auth_pw.hex()})
        assert r.status_code == 200, r.text
        login = r.json()
        kft = fxatokens.derive(bytes.fromhex(login["keyFetchToken"]), "keyFetchToken")
        r = await c.get("/v1/account/keys",
                        headers={"Authorization": _hawk(kft, server, "GET", "/v1/account/keys",
                                                        None)})
        assert r.status_code == 200, r.text
        _ka, wrapped = onepw.unbundle_keys(kft.extra, bytes.fromhex(r.json()["bundle"]))
        kb = onepw.unwrap_kb(wrapped, creds.unwrap_b_key)
        session = fxatokens.derive(bytes.fromhex(login["sessionToken"]), "sessionToken")
        body = json.dumps({"client_id": DESKTOP, "scope": f"{OLDSYNC} profile"}).encode()
        r = await c.post("/v1/account/scoped-key-data", content=body, headers={
            "Content-Type": "application/json",
            "Authorization": _hawk(session, server, "POST", "/v1/account/scoped-key-data",
                                   body)})
        assert r.status_code == 200, r.text
        ts = r.json()[OLDSYNC]["keyRotationTimestamp"]
        destroy = b"{}"
        await c.post("/v1/session/destroy", content=destroy, headers={
            "Content-Type": "application/json",
            "Authorization": _hawk(session, server, "POST", "/v1/session/destroy", destroy)})
    return onepw.oldsync_jwk(kb, ts)


async def authority_sessions(server: LiveServer, uid: str) -> int:
    rows = await server.db.read(lambda c: c.execute(
        "SELECT COUNT(*) FROM fxa_tokens WHERE uid = ? AND kind = 'sessionToken' "
        "AND user_agent = ?", (uid, fxaclient.USER_AGENT)).fetchone())
    return int(rows[0])


@dataclass
class PhoneRun:
    lines: list[dict[str, Any]]
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        results = [x for x in self.lines if x["event"] == "result"]
        assert results, (self.lines, self.stderr)
        return results[-1]

    def messages(self) -> list[str]:
        return [x["message"] for x in self.lines if x["event"] == "message"]

    def events(self) -> list[str]:
        return [x["event"] for x in self.lines]


def parse_url(url: str) -> tuple[str, str, str]:
    origin, fragment = url.split("/pair#", 1)
    params = dict(p.split("=", 1) for p in fragment.split("&"))
    return origin, params["channel_id"], params["channel_key"]


async def run_phone(env: dict[str, str], url: str, mode: str, *, client_id: str = FENIX,
                    key: str | None = None, origin: str | None = None) -> PhoneRun:
    public, channel_id, channel_key = parse_url(url)
    args = [node_binary(), "--experimental-websocket", "--no-warnings", str(SUPPLICANT),
            origin or public, channel_id, key or channel_key, mode, client_id]
    with trio.fail_after(NODE_TIMEOUT):
        proc = await trio.run_process(args, capture_stdout=True, capture_stderr=True,
                                      check=False, env={**os.environ, **env})
    lines = [json.loads(x) for x in proc.stdout.decode().splitlines() if x.strip()]
    return PhoneRun(lines, proc.stderr.decode())


@dataclass
class AuthorityRun:
    server: LiveServer
    email: str
    password: str = PASSWORD
    confirm: bool = True
    timeouts: authority.Timeouts | None = None
    redeem_timeout: float = 30.0
    notices: list[authority.Notice] = field(default_factory=list)
    url_shown: trio.Event = field(default_factory=trio.Event)
    done: trio.Event = field(default_factory=trio.Event)
    asked: list[authority.PhoneInfo] = field(default_factory=list)
    outcome: authority.Outcome | None = None

    @property
    def url(self) -> str:
        return str(self.notices[0].data["url"])

    def notify(self, notice: authority.Notice) -> None:
        self.notices.append(notice)
        if notice.kind == "pairing_url":
            self.url_shown.set()

    async def _confirm(self, phone: authority.PhoneInfo) -> bool:
        self.asked.append(phone)
        return self.confirm

    async def run(self) -> None:
        client = fxaclient.FxaClient(self.server.url)
        try:
            self.outcome = await authority.run_pairing(
                public_url=self.server.url, email=self.email,
                password=authority.Secret(self.password),
                open_channel=lambda: channel.open_channel(self.server.url),
                authorize=client.authorize_pairing, confirm=self._confirm, notify=self.notify,
                timeouts=self.timeouts, device_name="Foxden on test",
                redeem_timeout=self.redeem_timeout)
        finally:
            self.url_shown.set()
            self.done.set()


async def redeem(server: LiveServer, code: str, verifier: str,
                 client_id: str = FENIX) -> httpx.Response:
    async with server.client() as c:
        return await c.post("/v1/oauth/token", json={
            "grant_type": "authorization_code", "client_id": client_id, "code": code,
            "code_verifier": verifier})


# --- the happy path ----------------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "key_stretch"), [("approve-last", 2), ("approve-first", 1)])
async def test_phone_pairs_and_gets_the_sync_key(fpc_env: dict, server: LiveServer,  # noqa: F811
                                                 nursery: trio.Nursery, mode: str,
                                                 key_stretch: int) -> None:
    email = f"pair-{key_stretch}@example.com"
    uid = await add_account(server, email, key_stretch=key_stretch)
    auth = AuthorityRun(server, email)
    nursery.start_soon(auth.run)
    await auth.url_shown.wait()
    assert auth.url.startswith(f"{server.url}/pair#channel_id=")
    phone = await run_phone(fpc_env, auth.url, mode)
    res = phone.result
    assert res["how"] == "close", phone.lines  # our close_notify: FPC's clean `close`
    assert phone.messages() == ["pair:auth:metadata", "pair:auth:authorize"]
    assert res["metadata"] == {"email": email, "deviceName": "Foxden on test"}
    sender = next(x["sender"] for x in phone.lines if x["event"] == "message")
    assert sender == {"ua": channel.USER_AGENT, "remote": "127.0.0.1"}
    authz = res["authorize"]
    assert set(authz) == {"code", "state", "redirect", "scope"} and authz["state"] == res["state"]
    assert authz["redirect"].startswith(WEBCHANNEL + "?code=")
    # What we showed our user about the phone: the relay's view of the node process.
    (asked,) = auth.asked
    assert asked.remote == "127.0.0.1" and asked.client_name == "Firefox for Android"

    # The phone's native code: redeem with the PKCE verifier, decrypt keys_jwe.
    r = await redeem(server, authz["code"], res["verifier"])
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert {"access_token", "refresh_token", "keys_jwe", "session_token"} <= set(tokens)
    assert OLDSYNC in tokens["scope"].split()
    private = onepw.private_key_from_jwk(res["private_jwk"])
    keys = json.loads(onepw.decrypt_keys_jwe(private, tokens["keys_jwe"]))
    expected = await desktop_oldsync_key(server, email, PASSWORD)
    assert keys == {OLDSYNC: expected}
    assert keys[OLDSYNC]["kid"] == expected["kid"] and keys[OLDSYNC]["k"] == expected["k"]

    # The phone's access token is good for Sync with that key's id.
    async with server.client() as c:
        r = await c.get("/1.0/sync/1.5", headers={
            "Authorization": f"Bearer {tokens['access_token']}",
            "X-KeyID": keys[OLDSYNC]["kid"], "Accept": "application/json"})
    assert r.status_code == 200, r.text
    assert {"id", "key", "api_endpoint", "uid", "duration"} <= set(r.json())

    # The phone's new session is verified (copied from ours while it still existed).
    session = fxatokens.derive(bytes.fromhex(tokens["session_token"]), "sessionToken")
    async with server.client() as c:
        r = await c.get("/v1/session/status", headers={
            "Authorization": _hawk(session, server, "GET", "/v1/session/status", None)})
    assert r.status_code == 200 and r.json()["state"] == "verified", r.text

    with trio.fail_after(30):
        await auth.done.wait()
    assert auth.outcome is not None
    assert (auth.outcome.state, auth.outcome.signed_in) == (authority.State.DONE, True)
    # The authority's temporary session is gone, and nothing secret reached the notices.
    assert await authority_sessions(server, uid) == 0
    dumped = json.dumps([n.as_json() for n in auth.notices])
    assert authz["code"] not in dumped and PASSWORD not in dumped
    assert tokens["keys_jwe"] not in dumped


# --- failure paths -----------------------------------------------------------------------------

async def _pair_failing(server: LiveServer, nursery: trio.Nursery, env: dict, mode: str, *,
                        email: str = "fail@example.com", **kw: Any
                        ) -> tuple[AuthorityRun, PhoneRun | None, str]:
    uid = await add_account(server, email, key_stretch=1)
    phone_kw = {k: kw.pop(k) for k in ("client_id", "key") if k in kw}
    auth = AuthorityRun(server, email, **kw)
    nursery.start_soon(auth.run)
    await auth.url_shown.wait()
    phone = await run_phone(env, auth.url, mode, **phone_kw) if mode else None
    with trio.fail_after(60):
        await auth.done.wait()
    return auth, phone, uid


async def test_wrong_channel_key_ends_cleanly(fpc_env: dict, server: LiveServer,  # noqa: F811
                                              nursery: trio.Nursery) -> None:
    wrong = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    auth, phone, uid = await _pair_failing(server, nursery, fpc_env, "approve-first", key=wrong)
    assert auth.outcome is not None
    assert (auth.outcome.state, auth.outcome.reason) == (authority.State.FAILED,
                                                         "wrong_channel_key")
    assert phone is not None and phone.result["how"] == "error"  # FPC saw our alert
    assert phone.messages() == [] and auth.asked == []
    assert await authority_sessions(server, uid) == 0


async def test_decline_on_this_device(fpc_env: dict, server: LiveServer,  # noqa: F811
                                      nursery: trio.Nursery) -> None:
    auth, phone, uid = await _pair_failing(server, nursery, fpc_env, "approve-first",
                                           confirm=False)
    assert auth.outcome is not None
    assert (auth.outcome.state, auth.outcome.reason) == (authority.State.DECLINED,
                                                         "user_declined")
    assert phone is not None and phone.result["how"] == "close"
    assert phone.messages() == ["pair:auth:metadata"]
    assert await authority_sessions(server, uid) == 0  # never signed in


async def test_phone_cancels(fpc_env: dict, server: LiveServer,  # noqa: F811
                             nursery: trio.Nursery) -> None:
    auth, phone, _ = await _pair_failing(server, nursery, fpc_env, "cancel")
    assert auth.outcome is not None
    assert (auth.outcome.state, auth.outcome.reason) == (authority.State.DECLINED,
                                                         "phone_cancelled")
    assert phone is not None and phone.result["how"] == "close"


async def test_nobody_scans_times_out(server: LiveServer, nursery: trio.Nursery) -> None:
    auth, _, _ = await _pair_failing(server, nursery, {}, "",
                                     timeouts=authority.Timeouts(total=2))
    assert auth.outcome is not None
    assert (auth.outcome.state, auth.outcome.reason) == (authority.State.TIMED_OUT, "timeout")


async def test_phone_never_approves_times_out_and_revokes_the_code(
        fpc_env: dict, server: LiveServer, nursery: trio.Nursery) -> None:  # noqa: F811
    auth, phone, uid = await _pair_failing(
        server, nursery, fpc_env, "silent", timeouts=authority.Timeouts(phone_confirmation=3))
    assert auth.outcome is not None
    assert (auth.outcome.state, auth.outcome.reason) == (authority.State.TIMED_OUT, "timeout")
    assert phone is not None and phone.result["how"] == "close"
    authz = phone.result["authorize"]
    assert authz is not None  # the code had gone out ...
    # ... and died with the authority's session, so a late redemption fails.
    r = await redeem(server, authz["code"], phone.result["verifier"])
    assert r.status_code == 400, r.text
    assert await authority_sessions(server, uid) == 0


async def test_wrong_password_sends_nothing_secret(fpc_env: dict, server: LiveServer,  # noqa: F811
                                                   nursery: trio.Nursery) -> None:
    auth, phone, uid = await _pair_failing(server, nursery, fpc_env, "approve-first",
                                           password="not the password")
    assert auth.outcome is not None
    assert (auth.outcome.state, auth.outcome.reason) == (authority.State.FAILED,
                                                         "wrong_password")
    assert phone is not None and phone.result["how"] == "close"
    assert phone.messages() == ["pair:auth:metadata"]  # no authorize, no code
    assert phone.result["authorize"] is None
    assert await authority_sessions(server, uid) == 0


async def test_unknown_client_is_refused(fpc_env: dict, server: LiveServer,  # noqa: F811
                                         nursery: trio.Nursery) -> None:
    auth, phone, _ = await _pair_failing(server, nursery, fpc_env, "approve-first",
                                         client_id="0123456789abcdef")
    assert auth.outcome is not None
    assert (auth.outcome.state, auth.outcome.reason) == (authority.State.FAILED,
                                                         "unknown_client")
    assert phone is not None and phone.messages() == [] and phone.result["how"] == "close"
    assert auth.asked == []


# --- fxaclient on its own ----------------------------------------------------------------------

@pytest.mark.parametrize("key_stretch", [1, 2])
async def test_fxaclient_login_matches_desktop(server: LiveServer, key_stretch: int) -> None:
    email = f"fxa-{key_stretch}@example.com"
    await add_account(server, email, key_stretch=key_stretch)
    client = fxaclient.FxaClient(server.url)
    assert (await client.key_stretch(email))[0] == key_stretch
    session, kb = await client.login(email, PASSWORD)
    expected = await desktop_oldsync_key(server, email, PASSWORD)
    assert onepw.oldsync_key(kb) == base64.urlsafe_b64decode(expected["k"] + "==")
    assert await client.destroy_session(session)
    # A destroyed session cannot sign anything any more.
    with pytest.raises(fxaclient.FxaServerError) as info:
        await client.refresh_token_ids(session, FENIX)
    assert info.value.errno == 110


async def test_fxaclient_email_case_and_errors(server: LiveServer) -> None:
    await add_account(server, "Case@Example.com", key_stretch=1)
    client = fxaclient.FxaClient(server.url)
    session, _kb = await client.login("case@example.com", PASSWORD)  # errno 120, then retried
    await client.destroy_session(session)
    with pytest.raises(fxaclient.IncorrectPassword):
        await client.login("Case@Example.com", "wrong password!")
    with pytest.raises(fxaclient.UnknownAccount):
        await client.login("nobody@example.com", PASSWORD)
    dead = fxaclient.FxaClient("http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(fxaclient.FxaClientError) as err:
        await dead.key_stretch("x@example.com")
    assert "cannot reach" in str(err.value)


async def test_channel_refusal_and_greeting(server: LiveServer) -> None:
    async with channel.open_channel(server.url) as ch:
        assert channel.CHANNEL_ID.match(ch.channel_id)
        with pytest.raises(trio.TooSlowError):
            await ch.receive(timeout=0.2)  # nobody joined: nothing relayed
    with pytest.raises(channel.ChannelClosed):
        async with channel.open_channel("http://127.0.0.1:9"):
            pass


async def test_channel_refusal_before_the_upgrade_is_reported(nursery: trio.Nursery) -> None:
    # The relay answers a create over its rate with HTTP 429 + Retry-After, no socket.
    async def answer(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        await stream.send_all(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\n"
                              b"Content-Length: 0\r\n\r\n")
        await stream.aclose()

    (listener,) = await nursery.start(functools.partial(trio.serve_tcp, answer, 0,
                                                        host="127.0.0.1"))
    port = listener.socket.getsockname()[1]
    with pytest.raises(channel.ChannelRefused) as info:
        async with channel.open_channel(f"http://127.0.0.1:{port}"):
            pass
    assert (info.value.status, info.value.retry_after) == (429, 30)


# --- `foxden pair` as a process ----------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def foxden_serving(tmp_path: Path, email: str) -> AsyncIterator[tuple[list[str], str,
                                                                          dict[str, str]]]:
    """`foxden user add` then `foxden serve --tls off` on loopback, as real processes."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    dirs = ["--data-dir", str(tmp_path / "data"), "--config-dir", str(tmp_path / "config")]
    foxden = [sys.executable, "-m", "appliance", *dirs]
    env = {**os.environ, "FOXDEN_SYNC_MASTER_SECRET": "s3cret"}
    added = await trio.run_process([*foxden, "user", "add", email, "--password-stdin",
                                    "--key-stretch", "1"],
                                   stdin=(PASSWORD + "\n").encode(), capture_stdout=True,
                                   capture_stderr=True, env=env, check=False)
    assert added.returncode == 0, added.stderr
    serve = await trio.lowlevel.open_process(
        [*foxden, "serve", "--tls", "off", "--listen", f"127.0.0.1:{port}"], env=env,
        stdout=subprocess.DEVNULL)
    try:
        await _wait_ready(url)
        yield foxden, url, env
    finally:
        serve.send_signal(signal.SIGTERM)
        with trio.move_on_after(15):
            await serve.wait()
        if serve.returncode is None:
            serve.kill()


async def start_pair(foxden: list[str], env: dict[str, str], args: list[str],
                     stdin: str) -> tuple[trio.Process, _Lines]:
    pair = await trio.lowlevel.open_process([*foxden, "pair", *args], stdin=-1, stdout=-1,
                                            stderr=-1, env=env)
    assert pair.stdin is not None and pair.stdout is not None
    await pair.stdin.send_all(stdin.encode())
    await pair.stdin.aclose()
    return pair, _Lines(pair.stdout)


async def test_foxden_pair_cli_json(fpc_env: dict, tmp_path: Path) -> None:  # noqa: F811
    email = "cli@example.com"
    async with foxden_serving(tmp_path, email) as (foxden, url, env):
        pair, reader = await start_pair(
            foxden, env, ["--user", email, "--password-stdin", "--yes", "--json", "--url", url],
            PASSWORD + "\n")
        lines: list[dict[str, Any]] = []
        with trio.fail_after(60):
            first = json.loads(await reader.next() or "{}")
            lines.append(first)
            assert first["event"] == "pairing_url" and first["url"].startswith(url + "/pair#")
            phone = await run_phone(fpc_env, first["url"], "approve-last")
            res = phone.result
            assert res["how"] == "close", phone.lines
            r = await redeem_at(url, res["authorize"]["code"], res["verifier"])
            assert r.status_code == 200, r.text
            while (line := await reader.next()) is not None:
                lines.append(json.loads(line))
            code = await pair.wait()
        stderr = await _read_all(pair.stderr)
        assert code == 0, (lines, stderr)
        events = [x["event"] for x in lines]
        assert events[0] == "pairing_url" and events[-1] == "finished"
        assert {"state", "phone", "signed_in"} <= set(events)
        assert lines[-1] == {"event": "finished", "state": "done", "reason": "",
                             "message": "the phone is signing in", "signed_in": True}
        phone_line = next(x for x in lines if x["event"] == "phone")
        assert phone_line["remote"] == "127.0.0.1" and phone_line["client_id"] == FENIX
        raw = json.dumps(lines) + stderr
        assert PASSWORD not in raw and res["authorize"]["code"] not in raw

        # Without --yes the answer is read from standard input: "n" declines (exit 3).
        pair, reader = await start_pair(
            foxden, env, ["--user", email, "--password-stdin", "--json", "--url", url],
            PASSWORD + "\nn\n")
        with trio.fail_after(60):
            first = json.loads(await reader.next() or "{}")
            phone = await run_phone(fpc_env, first["url"], "approve-first")
            rest = [json.loads(x) async for x in reader]
            code = await pair.wait()
        assert code == 3 and rest[-1]["state"] == "declined", rest
        assert phone.messages() == ["pair:auth:metadata"]

        # Usage errors end before any channel exists (exit 2).
        for args, stdin in ((["--user", email, "--password-stdin", "--url", url], ""),
                            (["--user", email, "--password-stdin", "--url", url,
                              "--timeout", "900"], PASSWORD + "\n"),
                            (["--user", email, "--password-stdin", "--url", "nope"], "x\n")):
            pair, reader = await start_pair(foxden, env, args, stdin)
            with trio.fail_after(30):
                assert await reader.next() is None
                assert await pair.wait() == 2
            assert "foxden:" in await _read_all(pair.stderr)


async def redeem_at(url: str, code: str, verifier: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        return await c.post("/v1/oauth/token", json={
            "grant_type": "authorization_code", "client_id": FENIX, "code": code,
            "code_verifier": verifier})


async def _wait_ready(url: str) -> None:
    with trio.fail_after(30):
        while True:
            try:
                async with httpx.AsyncClient(timeout=1) as c:
                    if (await c.get(f"{url}/__lbheartbeat__")).status_code == 200:
                        return
            except httpx.TransportError:
                pass
            await trio.sleep(0.2)


class _Lines:
    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buf = b""

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        line = await self.next()
        if line is None:
            raise StopAsyncIteration
        return line

    async def next(self) -> str | None:
        while b"\n" not in self.buf:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


async def _read_all(stream: trio.abc.ReceiveStream | None) -> str:
    if stream is None:
        return ""
    out = b""
    with trio.move_on_after(5):
        while chunk := await stream.receive_some(65536):
            out += chunk
    return out.decode()
