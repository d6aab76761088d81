"""Mozilla's pairing library as the AUTHORITY against Foxden's JavaScript SUPPLICANT.

The authority is npm ``fxa-pairing-channel`` 1.0.2 (``PairingChannel.create``, the code desktop
Firefox ships as FxAccountsPairingChannel.sys.mjs) over the real websocket relay of a live
server; the test plays the rest of desktop's FxAccountsPairing.sys.mjs: it answers
``pair:supp:request`` with ``pair:auth:metadata``, calls ``/v1/account/scoped-key-data`` and
``/v1/oauth/authorization`` with a session and a keys_jwe built to the phone's keys_jwk, and
relays the response as ``pair:auth:authorize``.  The supplicant is the module behind
``/pair/supp`` (server/web/static/pairing/supplicant.js), run in node by
tests/web/pairing/supplicant-peers.mjs.  Afterwards the test is the phone's native code: it
checks the fxaccounts:oauth_login detail the page would send, redeems the code with the
PKCE verifier and decrypts keys_jwe with the ephemeral key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import ec

from server.crypto import onepw
from tests.appliance.pairing.nodepeer import ROOT, node_binary
from tests.appliance.pairing.test_interop_fxa_pairing_channel import fpc_env  # noqa: F401
from tests.conftest import LiveServer
from tests.server.oauth.helpers import FENIX, IOS, OLDSYNC, WEBCHANNEL, SessionHawk, create_account

PEERS = ROOT / "tests/web/pairing/supplicant-peers.mjs"
SCOPE = f"profile {OLDSYNC} https://identity.mozilla.com/tokens/session"
FENIX_UA = "Mozilla/5.0 (Android 14; Mobile; rv:153.0) Gecko/153.0 Firefox/153.0"
IOS_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) FxiOS/153.0 Mobile/15E148 Safari/605.1.15")
STEP = 20.0  # every wait for one line from a peer


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Peer:
    """One node process speaking JSON lines; every read has a deadline."""

    def __init__(self, proc: trio.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.lines: list[dict[str, Any]] = []
        self._buf = b""

    @classmethod
    async def start(cls, name: str, args: list[str], env: dict[str, str]) -> Peer:
        proc = await trio.lowlevel.open_process(
            [node_binary(), "--experimental-websocket", "--no-warnings", str(PEERS), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, **env}, cwd=ROOT)
        return cls(proc, name)

    async def _line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        with trio.move_on_after(timeout):
            while b"\n" not in self._buf:
                chunk = await self.proc.stdout.receive_some(65536)
                if not chunk:
                    break
                self._buf += chunk
        if b"\n" not in self._buf:
            raise AssertionError(f"{self.name}: no line within {timeout} s; so far "
                                 f"{self.lines}; stderr: {await self._stderr()}")
        line, self._buf = self._buf.split(b"\n", 1)
        obj: dict[str, Any] = json.loads(line)
        self.lines.append(obj)
        return obj

    async def _stderr(self) -> str:
        if self.proc.stderr is None:
            return ""
        with trio.move_on_after(1):
            return (await self.proc.stderr.receive_some(65536)).decode(errors="replace")
        return ""

    async def expect(self, event: str, timeout: float = STEP, **match: Any) -> dict[str, Any]:
        with trio.fail_after(timeout):
            while True:
                obj = await self._line(timeout)
                if obj["event"] == event and all(obj.get(k) == v for k, v in match.items()):
                    return obj
                if obj["event"] in ("error", "failed") or obj.get("state") == "failed":
                    if event not in ("error", "failed", "state"):
                        raise AssertionError(f"{self.name}: {obj} while waiting for {event}")

    async def drain(self, seconds: float) -> list[dict[str, Any]]:
        """Every line that arrives within ``seconds`` (none is an answer too)."""
        got: list[dict[str, Any]] = []
        with trio.move_on_after(seconds):
            while True:
                got.append(await self._line(seconds + 1))
        return got

    async def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        await self.proc.stdin.send_all(json.dumps(obj).encode() + b"\n")

    async def stop(self) -> int | None:
        with trio.CancelScope(shield=True):
            if self.proc.stdin is not None:
                try:
                    await self.proc.stdin.aclose()
                except trio.BrokenResourceError:
                    pass
            with trio.move_on_after(5):
                return await self.proc.wait()
            self.proc.kill()
            with trio.move_on_after(5):
                await self.proc.wait()
        return None


class Phone:
    """The phone's native side: its PKCE pair, ephemeral key and the /pair/supp URL."""

    def __init__(self, origin: str, channel_id: str, channel_key: str, client_id: str) -> None:
        self.verifier = b64u(secrets.token_bytes(43))
        challenge = b64u(hashlib.sha256(self.verifier.encode()).digest())
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.keys_jwk = b64u(json.dumps(onepw.public_jwk(self.private.public_key()))
                             .encode())
        self.state = b64u(secrets.token_bytes(16))
        self.client_id = client_id
        query = {"entrypoint": "fxa_app_menu", "client_id": client_id, "scope": SCOPE,
                 "state": self.state, "code_challenge_method": "S256",
                 "code_challenge": challenge, "access_type": "offline",
                 "keys_jwk": self.keys_jwk, "context": "oauth_webchannel_v1"}
        self.url = (f"{origin}/pair/supp?{urlencode(query)}"
                    f"#channel_id={channel_id}&channel_key={channel_key}")
        self.request = {"access_type": "offline", "client_id": client_id,
                        "code_challenge": challenge, "code_challenge_method": "S256",
                        "keys_jwk": self.keys_jwk, "scope": SCOPE, "state": self.state}


async def desktop_authorize(server: LiveServer, account: Any, request: dict[str, Any]
                            ) -> dict[str, Any]:
    """What FxAccountsPairing.sys.mjs does on pair_authorize (pairing.md §5.1)."""
    auth = SessionHawk(account, server)
    async with server.client(auth=auth) as c:
        r = await c.post("/v1/account/scoped-key-data",
                         json={"client_id": request["client_id"], "scope": request["scope"]})
        assert r.status_code == 200, r.text
        assert set(r.json()) == {OLDSYNC}
        jwk = onepw.oldsync_jwk(account.kb, r.json()[OLDSYNC]["keyRotationTimestamp"])
        peer = json.loads(base64.urlsafe_b64decode(request["keys_jwk"] + "=="))
        keys_jwe = onepw.build_keys_jwe(peer, onepw.scoped_keys_plaintext({OLDSYNC: jwk}))
        body = {k: request[k] for k in ("client_id", "state", "scope", "code_challenge",
                                        "code_challenge_method")}
        body |= {"response_type": "code", "access_type": "offline", "keys_jwe": keys_jwe}
        r = await c.post("/v1/oauth/authorization", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def start_pair(server: LiveServer, env: dict[str, str], *, client_id: str = FENIX,
                     user_agent: str = FENIX_UA, key: str | None = None
                     ) -> tuple[Peer, Peer, Phone]:
    authority = await Peer.start("authority", ["authority", server.url.replace("http", "ws")],
                                 env)
    channel = await authority.expect("channel")
    phone = Phone(server.url, channel["channelId"], key or channel["channelKey"], client_id)
    supplicant = await Peer.start("supplicant", ["supplicant", phone.url, user_agent], env)
    return authority, supplicant, phone


METADATA = {"email": "ann@example.test", "avatar": "http://127.0.0.1/v1/avatar/a.svg",
            "displayName": "Ann", "deviceName": "devA\u2019s Firefox on box"}


@pytest.mark.parametrize(("client_id", "user_agent", "phone_first"), [
    (FENIX, FENIX_UA, True), (IOS, IOS_UA, False)])
async def test_mozilla_authority_pairs_our_supplicant(
        fpc_env: dict, server: LiveServer, client_id: str, user_agent: str,  # noqa: F811
        phone_first: bool) -> None:
    account = await create_account(server, "ann@example.test")
    authority, supplicant, phone = await start_pair(server, fpc_env, client_id=client_id,
                                                    user_agent=user_agent)
    try:
        # 1. Our page's request carries exactly the phone's OAuth parameters (§4.2).
        request = await authority.expect("message")
        assert request["data"] == {"message": "pair:supp:request", "data": phone.request}
        # The relay's view of the phone (node's own websocket UA here).
        assert request["sender"]["remote"] == "127.0.0.1" and request["sender"]["ua"]
        await authority.send({"cmd": "send", "obj": {"message": "pair:auth:metadata",
                                                     "data": METADATA}})
        confirm = await supplicant.expect("state", state="confirm")
        assert confirm["metadata"] == METADATA
        assert confirm["sender"]["remote"] == "127.0.0.1"

        async def phone_confirms() -> None:
            await supplicant.send({"cmd": "confirm"})
            got = await authority.expect("message")
            assert got["data"] == {"message": "pair:supp:authorize", "data": {}}

        if phone_first:
            await phone_confirms()
        # 2. The computer's user confirms: desktop's authorization, relayed verbatim.
        authz = await desktop_authorize(server, account, request["data"]["data"])
        assert authz["state"] == phone.state
        await authority.send({"cmd": "send", "obj": {"message": "pair:auth:authorize",
                                                     "data": authz}})
        if not phone_first:
            # The code arrived first; the page still waits for its own user.
            assert not [x for x in await supplicant.drain(0.5) if x["event"] == "deliver"]
            await phone_confirms()

        # 3. What /pair/supp hands to the phone's browser (§4.3).
        delivered = await supplicant.expect("deliver")
        assert delivered["data"] == {"action": "pairing", "code": authz["code"],
                                     "state": phone.state, "redirect": WEBCHANNEL}
        detail = delivered["detail"]
        if client_id == IOS:
            assert isinstance(detail, dict)  # Firefox for iOS wants an object
        else:
            assert isinstance(detail, str)  # Fenix's extension JSON.parses a string
            detail = json.loads(detail)
        assert detail["id"] == "account_updates"
        assert detail["message"]["command"] == "fxaccounts:oauth_login"
        assert detail["message"]["data"] == delivered["data"]
        assert detail["message"]["messageId"].isdigit()
        await supplicant.expect("state", state="done")

        # 4. Desktop closes the channel after pair_complete: the page closes its socket.
        await authority.send({"cmd": "close"})
        await supplicant.expect("socket-closed")
        assert await supplicant.stop() == 0

        # 5. The phone's native code: redeem, decrypt keys_jwe (§5.4).
        async with server.client() as c:
            r = await c.post("/v1/oauth/token", json={
                "grant_type": "authorization_code", "client_id": client_id,
                "code": authz["code"], "code_verifier": phone.verifier})
        assert r.status_code == 200, r.text
        tokens = r.json()
        assert {"access_token", "refresh_token", "keys_jwe"} <= set(tokens)
        keys = json.loads(onepw.decrypt_keys_jwe(phone.private, tokens["keys_jwe"]))
        assert keys == {OLDSYNC: onepw.oldsync_jwk(account.kb, account.keys_changed_at)}
        assert not [x for x in authority.lines if x["event"] in ("error", "failed")]
    finally:
        await supplicant.stop()
        await authority.stop()


async def test_declined_on_the_authority(fpc_env: dict, server: LiveServer) -> None:  # noqa: F811
    authority, supplicant, _ = await start_pair(server, fpc_env)
    try:
        await authority.expect("message")
        await authority.send({"cmd": "send", "obj": {"message": "pair:auth:metadata",
                                                     "data": METADATA}})
        await supplicant.expect("state", state="confirm")
        await authority.send({"cmd": "close"})  # desktop's pair_decline closes the channel
        failed = await supplicant.expect("state", state="failed")
        assert failed["error"]["kind"] == "declined"
        await supplicant.expect("socket-closed")
        assert not [x for x in supplicant.lines if x["event"] == "deliver"]
    finally:
        await supplicant.stop()
        await authority.stop()


async def test_wrong_channel_key(fpc_env: dict, server: LiveServer) -> None:  # noqa: F811
    wrong = b64u(secrets.token_bytes(32))
    authority, supplicant, _ = await start_pair(server, fpc_env, key=wrong)
    try:
        failed = await supplicant.expect("state", state="failed")
        assert failed["error"]["kind"] == "wrong-key"
        err = await authority.expect("error")  # FPC rejected the binder
        assert "error" in err
    finally:
        await supplicant.stop()
        await authority.stop()


async def test_phone_cancels(fpc_env: dict, server: LiveServer) -> None:  # noqa: F811
    authority, supplicant, _ = await start_pair(server, fpc_env)
    try:
        await authority.expect("message")
        await authority.send({"cmd": "send", "obj": {"message": "pair:auth:metadata",
                                                     "data": METADATA}})
        await supplicant.expect("state", state="confirm")
        await supplicant.send({"cmd": "cancel"})
        failed = await supplicant.expect("state", state="failed")
        assert failed["error"]["kind"] == "cancelled"
        # Our close_notify surfaces in Mozilla's library as its clean "close" event.
        await authority.expect("close")
    finally:
        await supplicant.stop()
        await authority.stop()


def test_driver_is_not_a_node_test() -> None:
    # `node --test tests/web/pairing/` must not pick the driver up (it waits on stdin).
    assert not Path(PEERS).name.endswith((".test.mjs", "-test.mjs"))
