"""The pairing relay over real sockets: trio-websocket clients against a live Hypercorn."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
)

from server.pairing import relay as relay_mod
from tests.conftest import LiveServer, start_server

PHONE_UA = "Mozilla/5.0 (Android 15; Mobile; rv:153.0) Gecko/153.0 Firefox/153.0"
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0"
TIMEOUT = 10


def record(n: int, size: int = 60) -> str:
    """A stand-in TLS record as FPC frames it: padded base64url."""
    raw = bytes([n % 256]) * size + b"\xfb\xff"
    return base64.urlsafe_b64encode(raw).decode("ascii")


def ws_url(live: LiveServer, path: str) -> str:
    return "ws" + live.url.removeprefix("http") + path


@asynccontextmanager
async def connect(live: LiveServer, path: str,
                  ua: str | None = None) -> AsyncIterator[WebSocketConnection]:
    headers = [(b"User-Agent", ua.encode())] if ua else None
    async with open_websocket_url(ws_url(live, path), extra_headers=headers,
                                  connect_timeout=TIMEOUT, disconnect_timeout=2) as ws:
        yield ws


async def recv(ws: WebSocketConnection) -> Any:
    with trio.fail_after(TIMEOUT):
        return json.loads(await ws.get_message())


async def expect_close(ws: WebSocketConnection, code: int, reason: str | None = None) -> None:
    with trio.fail_after(TIMEOUT), pytest.raises(ConnectionClosed) as info:
        await ws.get_message()
    assert info.value.reason.code == code
    if reason is not None:
        assert info.value.reason.reason == reason


async def expect_silence(ws: WebSocketConnection, seconds: float = 0.3) -> None:
    with trio.move_on_after(seconds) as scope:
        got = await ws.get_message()
        pytest.fail(f"unexpected frame {got!r}")
    assert scope.cancelled_caught


async def check_fresh_channel(live: LiveServer) -> None:
    """The server still serves: a brand-new channel pairs and relays both ways."""
    async with connect(live, "/v1/ws/", DESKTOP_UA) as creator:
        cid = (await recv(creator))["channelid"]
        async with connect(live, f"/v1/ws/{cid}", PHONE_UA) as joiner:
            assert (await recv(joiner))["channelid"] == cid
            await joiner.send_message(record(1))
            assert (await recv(creator))["message"] == record(1)
            await creator.send_message(record(2))
            assert (await recv(joiner))["message"] == record(2)


@pytest.fixture
def tight_server(tmp_path: Path, nursery: trio.Nursery,
                 monkeypatch: pytest.MonkeyPatch) -> Callable[..., Awaitable[LiveServer]]:
    """A live server whose relay uses the given limits."""
    counter = count()

    async def factory(**limits: Any) -> LiveServer:
        monkeypatch.setattr(relay_mod, "DEFAULT_LIMITS", relay_mod.Limits(**limits))
        sub = tmp_path / f"tight{next(counter)}"
        sub.mkdir()
        return await start_server(sub, nursery)

    return factory


async def test_create_greets_with_the_channel_id(server: LiveServer) -> None:
    async with connect(server, "/v1/ws/") as creator:
        with trio.fail_after(TIMEOUT):
            raw = await creator.get_message()
        greeting = json.loads(raw)
        cid = greeting["channelid"]
        assert list(greeting) == ["link", "channelid"]
        assert greeting == {"link": f"/v1/ws/{cid}", "channelid": cid}
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid)
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16
        await expect_silence(creator)


async def test_join_greets_both_and_relays_with_sender(server: LiveServer) -> None:
    async with connect(server, "/v1/ws/", DESKTOP_UA) as creator:
        cid = (await recv(creator))["channelid"]
        async with connect(server, f"/v1/ws/{cid}", PHONE_UA) as joiner:
            assert await recv(joiner) == {"link": f"/v1/ws/{cid}", "channelid": cid}
            await expect_silence(creator)  # a join is not announced

            hello = record(1, 166)
            await joiner.send_message(f"  {hello}\n")  # channelserver trims whitespace
            got = await recv(creator)
            assert list(got) == ["message", "sender"]
            assert got == {"message": hello,
                           "sender": {"ua": PHONE_UA, "remote": "127.0.0.1"}}

            unpadded = record(2, 91).rstrip("=")
            await creator.send_message(unpadded)
            assert await recv(joiner) == {
                "message": unpadded, "sender": {"ua": DESKTOP_UA, "remote": "127.0.0.1"}}
            # Never echoed back to the sender.
            await expect_silence(joiner)
            await expect_silence(creator)


async def test_sender_without_user_agent_has_only_remote(server: LiveServer) -> None:
    async with connect(server, "/v1/ws/") as creator:
        cid = (await recv(creator))["channelid"]
        async with connect(server, f"/v1/ws/{cid}") as joiner:
            await recv(joiner)
            await joiner.send_message(record(1))
            assert (await recv(creator))["sender"] == {"remote": "127.0.0.1"}


async def test_a_whole_pairing_exchange_arrives_in_order(server: LiveServer) -> None:
    # The ten frames of a v1 pairing (pairing.md §14), sized as Firefox sent them.
    script = [("j", 224), ("c", 124), ("c", 8), ("c", 88), ("j", 80),
              ("j", 744), ("c", 252), ("j", 92), ("c", 588), ("c", 32)]
    async with connect(server, "/v1/ws/", DESKTOP_UA) as creator:
        cid = (await recv(creator))["channelid"]
        async with connect(server, f"/v1/ws/{cid}", PHONE_UA) as joiner:
            await recv(joiner)
            sent: dict[str, list[str]] = {"c": [], "j": []}
            for i, (who, chars) in enumerate(script):
                text = record(i, chars * 3 // 4)
                await (creator if who == "c" else joiner).send_message(text)
                sent[who].append(text)
            for text in sent["j"]:
                assert (await recv(creator))["message"] == text
            for text in sent["c"]:
                assert (await recv(joiner))["message"] == text


async def test_both_sides_send_and_receive_at_once(server: LiveServer) -> None:
    n = 30  # per side; 60 in all stays under the default cap of 64
    async with connect(server, "/v1/ws/") as creator:
        cid = (await recv(creator))["channelid"]
        async with connect(server, f"/v1/ws/{cid}") as joiner:
            await recv(joiner)
            got: dict[str, list[str]] = {"c": [], "j": []}

            async def send(ws: WebSocketConnection, base: int) -> None:
                for i in range(n):
                    await ws.send_message(record(base + i))

            async def receive(ws: WebSocketConnection, key: str) -> None:
                for _ in range(n):
                    got[key].append((await recv(ws))["message"])

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send, creator, 0)
                nursery.start_soon(send, joiner, 100)
                nursery.start_soon(receive, creator, "c")
                nursery.start_soon(receive, joiner, "j")
            assert got["c"] == [record(100 + i) for i in range(n)]
            assert got["j"] == [record(i) for i in range(n)]


@pytest.mark.parametrize("cid", ["AAAAAAAAAAAAAAAAAAAAAA",        # well formed, unknown
                                 "short", "A" * 23, "AAAAAAAAAAAAAAAAAAAA=="])
async def test_unknown_or_malformed_channel_closes_1008_without_greeting(
        server: LiveServer, cid: str) -> None:
    async with connect(server, f"/v1/ws/{cid}") as ws:
        await expect_close(ws, 1008)
    await check_fresh_channel(server)


async def test_third_participant_is_refused(server: LiveServer) -> None:
    async with connect(server, "/v1/ws/") as creator:
        cid = (await recv(creator))["channelid"]
        async with connect(server, f"/v1/ws/{cid}") as joiner:
            await recv(joiner)
            async with connect(server, f"/v1/ws/{cid}") as third:
                await expect_close(third, 1008, "channel full")
            # The pair is untouched.
            await joiner.send_message(record(7))
            assert (await recv(creator))["message"] == record(7)
    await check_fresh_channel(server)


async def test_peer_leaving_leaves_the_other_open_and_the_slot_spent(server: LiveServer) -> None:
    async with connect(server, "/v1/ws/") as creator:
        cid = (await recv(creator))["channelid"]
        async with connect(server, f"/v1/ws/{cid}") as joiner:
            await recv(joiner)
            await joiner.send_message(record(1))
            await joiner.send_message(record(2))
        # Frames sent just before leaving are still delivered; the leaving is not announced.
        assert (await recv(creator))["message"] == record(1)
        assert (await recv(creator))["message"] == record(2)
        await expect_silence(creator)
        await creator.send_message(record(3))  # goes nowhere, closes nothing
        await expect_silence(creator)
        async with connect(server, f"/v1/ws/{cid}") as late:
            await expect_close(late, 1008, "channel full")
    # Once the creator has gone too the channel is gone.
    async with connect(server, f"/v1/ws/{cid}") as ws:
        await expect_close(ws, 1008, "unknown channel")
    await check_fresh_channel(server)


async def test_creator_leaving_before_a_join_ends_the_channel(server: LiveServer) -> None:
    async with connect(server, "/v1/ws/") as creator:
        cid = (await recv(creator))["channelid"]
    with trio.fail_after(TIMEOUT):
        # The server notices the close asynchronously; retry briefly.
        while True:
            async with connect(server, f"/v1/ws/{cid}") as ws:
                try:
                    await recv(ws)
                except ConnectionClosed as exc:
                    assert exc.reason.code == 1008
                    assert exc.reason.reason == "unknown channel"
                    break
            await trio.sleep(0.05)


async def test_message_cap_closes_both(tight_server: Callable[..., Awaitable[LiveServer]]) -> None:
    live = await tight_server(max_messages=4)
    async with connect(live, "/v1/ws/") as creator:
        cid = (await recv(creator))["channelid"]
        async with connect(live, f"/v1/ws/{cid}") as joiner:
            await recv(joiner)
            for i in range(4):
                await joiner.send_message(record(i))
            for i in range(4):
                assert (await recv(creator))["message"] == record(i)
            await joiner.send_message(record(9))  # the fifth: over the cap, not relayed
            await expect_close(creator, 1008, "message limit reached")
            await expect_close(joiner, 1008, "message limit reached")
    await check_fresh_channel(live)


async def test_oversize_frame_closes_its_sender_1009(server: LiveServer) -> None:
    async with connect(server, "/v1/ws/") as creator:
        cid = (await recv(creator))["channelid"]
        async with connect(server, f"/v1/ws/{cid}") as joiner:
            await recv(joiner)
            await joiner.send_message("A" * (32 * 1024 + 4))
            await expect_close(joiner, 1009, "frame too large")
            await expect_silence(creator)  # the peer stays, as when any peer leaves
    await check_fresh_channel(server)


@pytest.mark.parametrize("frame, code", [(b"\x16\x03\x03", 1003), ("not base64!", 1007),
                                         ("ab+/", 1007), ("   ", 1007)])
async def test_garbage_frames_close_their_sender(server: LiveServer, frame: str | bytes,
                                                 code: int) -> None:
    async with connect(server, "/v1/ws/") as creator:
        cid = (await recv(creator))["channelid"]
        async with connect(server, f"/v1/ws/{cid}") as joiner:
            await recv(joiner)
            await joiner.send_message(frame)
            await expect_close(joiner, code)
            await expect_silence(creator)
    await check_fresh_channel(server)


async def test_idle_timeout_closes_a_pair(
        tight_server: Callable[..., Awaitable[LiveServer]]) -> None:
    live = await tight_server(idle_timeout=0.5)
    async with connect(live, "/v1/ws/") as creator:
        cid = (await recv(creator))["channelid"]
        await trio.sleep(0.7)  # waiting for a scan is not "idle"
        async with connect(live, f"/v1/ws/{cid}") as joiner:
            await recv(joiner)
            await expect_close(creator, 1008, "idle timeout")
            await expect_close(joiner, 1008, "idle timeout")
    await check_fresh_channel(live)


async def test_lifetime_closes_a_waiting_channel(
        tight_server: Callable[..., Awaitable[LiveServer]]) -> None:
    live = await tight_server(lifetime=0.5)
    async with connect(live, "/v1/ws/") as creator:
        await recv(creator)
        await expect_close(creator, 1008, "channel expired")
    await check_fresh_channel(live)


async def test_creation_is_rate_limited_per_address(server: LiveServer) -> None:
    async with connect(server, "/v1/ws/") as kept:
        cid = (await recv(kept))["channelid"]
        for _ in range(9):
            async with connect(server, "/v1/ws/") as ws:
                await recv(ws)
        with trio.fail_after(TIMEOUT), pytest.raises(ConnectionRejected) as info:
            async with open_websocket_url(ws_url(server, "/v1/ws/")):
                pass
        assert info.value.status_code == 429
        headers = {k.lower(): v for k, v in info.value.headers}
        assert 1 <= int(headers[b"retry-after"]) <= 60
        body = json.loads(info.value.body)
        assert body["code"] == 429 and body["errno"] == 114
        # Joining is not creating: the open channel still pairs.
        async with connect(server, f"/v1/ws/{cid}") as joiner:
            await recv(joiner)
            await joiner.send_message(record(5))
            assert (await recv(kept))["message"] == record(5)


async def test_full_relay_answers_503(
        tight_server: Callable[..., Awaitable[LiveServer]]) -> None:
    live = await tight_server(max_channels=1)
    async with connect(live, "/v1/ws/") as first:
        await recv(first)
        with trio.fail_after(TIMEOUT), pytest.raises(ConnectionRejected) as info:
            async with open_websocket_url(ws_url(live, "/v1/ws/")):
                pass
        assert info.value.status_code == 503
    await check_fresh_channel(live)


async def test_plain_http_to_the_relay_is_an_fxa_error(server: LiveServer) -> None:
    async with server.client() as c:
        r = await c.get("/v1/ws/")
    assert 400 <= r.status_code < 500
    assert "errno" in r.json()
