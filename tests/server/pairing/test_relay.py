"""The relay core, without sockets: every transition, limit and timer (MockClock)."""

from __future__ import annotations

import base64
import json
from itertools import count
from typing import Any

import pytest
import trio
import trio.testing

from server.pairing.relay import (
    CHANNEL_ID,
    Close,
    CreateRefused,
    Limits,
    Participant,
    Refused,
    Relay,
    Role,
    State,
    check_frame,
    envelope,
    greeting,
)
from server.pairing.routes import MAX_UA_CHARS, sender_metadata

END = "<end of outbox>"
DESKTOP = {"ua": "desktop", "remote": "192.168.1.10"}
PHONE = {"ua": "phone", "remote": "192.168.1.20"}


def drain(p: Participant) -> list[Any]:
    out: list[Any] = []
    while True:
        try:
            out.append(p.outbox.receive_nowait())
        except trio.WouldBlock:
            return out
        except trio.EndOfChannel:
            out.append(END)
            return out


def frame(n: int) -> str:
    return base64.urlsafe_b64encode(bytes([n]) * 30).decode()


def counting_bytes() -> Any:
    n = count()
    return lambda size: next(n).to_bytes(size, "big")


async def settle(nursery: trio.Nursery) -> None:
    """Let the watchers react to a clock jump, then end them (a broken one would hang)."""
    await trio.testing.wait_all_tasks_blocked()
    nursery.cancel_scope.cancel()


def paired(relay: Relay) -> tuple[Participant, Participant]:
    creator = relay.create("192.168.1.10", DESKTOP)
    joiner = relay.join(creator.channel.id, PHONE)
    drain(creator)
    drain(joiner)
    return creator, joiner


# --- frames, greeting, envelope ------------------------------------------------------------

@pytest.mark.parametrize("text", ["AAAA", "AAA", "AA", "AA==", "AAA=", "-_-_", "  AAAA\n",
                                  base64.urlsafe_b64encode(b"\xfb\xff" * 10).decode()])
def test_valid_frames(text: str) -> None:
    assert check_frame(text, 100) == text.strip()


@pytest.mark.parametrize("value, code", [
    (b"AAAA", 1003), (bytearray(b"x"), 1003), (None, 1003),
    ("A" * 101, 1009),
    ("", 1007), ("   ", 1007), ("A", 1007), ("AAAAA", 1007), ("A===", 1007), ("AA=", 1007),
    ("=AAA", 1007), ("AA=A", 1007), ("ab+/", 1007), ("hello world", 1007), ("AAAé", 1007),
    ('{"a":1}', 1007),
])
def test_garbage_frames(value: object, code: int) -> None:
    verdict = check_frame(value, 100)
    assert isinstance(verdict, Close) and verdict.code == code


def test_wire_shapes_are_compact_json_in_the_documented_order() -> None:
    cid = "AAAAAAAAAAAAAAAAAAAAAA"
    assert greeting(cid) == '{"link":"/v1/ws/AAAAAAAAAAAAAAAAAAAAAA",' \
                            '"channelid":"AAAAAAAAAAAAAAAAAAAAAA"}'
    assert envelope("AAAA", {"ua": "x", "remote": "1.2.3.4"}) == \
        '{"message":"AAAA","sender":{"ua":"x","remote":"1.2.3.4"}}'


def test_sender_metadata_is_strings_only_and_omits_absent_keys() -> None:
    assert sender_metadata("Firefox", "192.168.1.2") == {"ua": "Firefox", "remote": "192.168.1.2"}
    assert sender_metadata(None, "10.0.0.1") == {"remote": "10.0.0.1"}
    assert sender_metadata("", "") == {}
    assert sender_metadata("x" * 2000, "::1")["ua"] == "x" * MAX_UA_CHARS


# --- create and join ---------------------------------------------------------------------

async def test_create_gives_a_22_char_id_and_greets_first() -> None:
    relay = Relay(random_bytes=counting_bytes())
    creator = relay.create("192.168.1.10", DESKTOP)
    cid = creator.channel.id
    assert CHANNEL_ID.fullmatch(cid)
    assert base64.urlsafe_b64decode(cid + "==") == bytes(16)
    assert creator.role is Role.CREATOR and creator.channel.state is State.WAITING
    assert drain(creator) == [greeting(cid)]
    assert relay.get(cid) is creator.channel


async def test_id_collision_draws_again() -> None:
    relay = Relay(random_bytes=lambda n: bytes(n) if n else b"")
    relay.create("a", {})
    with pytest.raises(RuntimeError):
        relay.create("b", {})


async def test_join_pairs_and_greets_only_the_joiner() -> None:
    relay = Relay()
    creator = relay.create("192.168.1.10", DESKTOP)
    drain(creator)
    joiner = relay.join(creator.channel.id, PHONE)
    assert creator.channel.state is State.PAIRED and joiner.role is Role.JOINER
    assert drain(joiner) == [greeting(creator.channel.id)]
    assert drain(creator) == []


@pytest.mark.parametrize("cid, reason", [
    ("AAAAAAAAAAAAAAAAAAAAAA", "unknown channel"), ("short", "invalid channel id"),
    ("A" * 23, "invalid channel id"), ("AAAAAAAAAAAAAAAAAAAA==", "invalid channel id"),
    ("AAAAAAAAAAAAAAAAAAAAA+", "invalid channel id"), ("", "invalid channel id"),
])
async def test_unknown_or_malformed_ids_are_refused(cid: str, reason: str) -> None:
    relay = Relay()
    with pytest.raises(Refused) as info:
        relay.join(cid, PHONE)
    assert (info.value.code, info.value.reason) == (1008, reason)


async def test_third_participant_is_refused_and_the_pair_untouched() -> None:
    relay = Relay()
    creator, joiner = paired(relay)
    with pytest.raises(Refused) as info:
        relay.join(creator.channel.id, {"remote": "192.168.1.99"})
    assert (info.value.code, info.value.reason) == (1008, "channel full")
    relay.receive(joiner, frame(1))
    assert drain(creator) == [envelope(frame(1), PHONE)]


# --- relaying ----------------------------------------------------------------------------

async def test_frames_go_to_the_other_side_only_in_order_with_the_senders_metadata() -> None:
    relay = Relay()
    creator, joiner = paired(relay)
    for i in range(3):
        relay.receive(joiner, frame(i))
    relay.receive(creator, f" {frame(9)}\r\n")
    assert drain(creator) == [envelope(frame(i), PHONE) for i in range(3)]
    assert drain(joiner) == [envelope(frame(9), DESKTOP)]
    got = json.loads(envelope(frame(9), DESKTOP))
    assert got == {"message": frame(9), "sender": DESKTOP}


async def test_frames_while_waiting_reach_nobody_but_count() -> None:
    relay = Relay(Limits(max_messages=2))
    creator = relay.create("a", DESKTOP)
    drain(creator)
    relay.receive(creator, frame(1))
    assert drain(creator) == [] and creator.channel.messages == 1
    joiner = relay.join(creator.channel.id, PHONE)
    assert drain(joiner) == [greeting(creator.channel.id)]  # nothing buffered for the joiner


# --- leaving -----------------------------------------------------------------------------

async def test_creator_leaving_while_waiting_ends_the_channel() -> None:
    relay = Relay()
    creator = relay.create("a", DESKTOP)
    cid = creator.channel.id
    relay.leave(creator)
    assert creator.channel.state is State.CLOSED and len(relay) == 0
    assert drain(creator) == [greeting(cid), END]
    with pytest.raises(Refused, match="unknown channel"):
        relay.join(cid, PHONE)


@pytest.mark.parametrize("leaver", ["creator", "joiner"])
async def test_one_leaving_leaves_the_other_alone_then_closed(leaver: str) -> None:
    relay = Relay()
    creator, joiner = paired(relay)
    ch = creator.channel
    gone, stays = (creator, joiner) if leaver == "creator" else (joiner, creator)
    relay.leave(gone)
    relay.leave(gone)  # idempotent
    assert ch.state is State.ALONE and relay.get(ch.id) is ch
    assert drain(stays) == []  # not told (channelserver parity)
    assert drain(gone) == [END]
    relay.receive(gone, frame(1))  # a late frame from a gone participant is ignored
    relay.receive(stays, frame(2))  # reaches nobody, counted
    assert drain(stays) == [] and ch.messages == 1
    with pytest.raises(Refused, match="channel full"):
        relay.join(ch.id, PHONE)
    relay.leave(stays)
    assert ch.state is State.CLOSED and len(relay) == 0
    assert relay._open_by_address == {}  # nothing outlives the channel


async def test_a_bad_frame_makes_its_sender_leave_with_a_code() -> None:
    relay = Relay()
    creator, joiner = paired(relay)
    relay.receive(joiner, b"\x16\x03\x03")
    assert drain(joiner) == [Close(1003, "binary frames are not relayed"), END]
    assert creator.channel.state is State.ALONE and drain(creator) == []

    lone = relay.create("b", DESKTOP)
    relay.receive(lone, "A" * (32 * 1024 + 1))
    assert drain(lone)[-2:] == [Close(1009, "frame too large"), END]
    assert lone.channel.state is State.CLOSED


# --- caps ----------------------------------------------------------------------------------

async def test_message_cap_relays_exactly_the_cap_then_closes_both() -> None:
    relay = Relay()
    creator, joiner = paired(relay)
    cap = relay.limits.max_messages
    assert cap >= 32
    for i in range(cap):
        relay.receive(joiner if i % 2 else creator, frame(i % 256))
    assert creator.channel.state is State.PAIRED
    relay.receive(joiner, frame(200))  # one too many: dropped, and the channel ends
    closing = Close(1008, "message limit reached")
    to_creator, to_joiner = drain(creator), drain(joiner)
    assert len(to_creator) == cap // 2 + 2 and len(to_joiner) == cap // 2 + 2
    assert to_creator[-2:] == [closing, END] and to_joiner[-2:] == [closing, END]
    assert envelope(frame(200), PHONE) not in to_creator
    assert len(relay) == 0


async def test_outboxes_never_block_even_if_nobody_reads() -> None:
    relay = Relay()
    creator = relay.create("a", DESKTOP)
    joiner = relay.join(creator.channel.id, PHONE)
    for i in range(relay.limits.max_messages + 1):
        relay.receive(creator, frame(i % 256))
    out = drain(joiner)
    assert out[0] == greeting(creator.channel.id)
    assert out[-2:] == [Close(1008, "message limit reached"), END]
    assert len(out) == relay.limits.max_messages + 3


async def test_byte_cap_closes_the_channel() -> None:
    relay = Relay(Limits(max_channel_bytes=100))
    creator, joiner = paired(relay)
    relay.receive(joiner, "A" * 100)
    assert drain(creator) == [envelope("A" * 100, PHONE)]
    relay.receive(joiner, "AAAA")
    assert drain(creator) == [Close(1008, "data limit reached"), END]


async def test_creation_rate_limit_per_address(mock_clock: trio.testing.MockClock) -> None:
    relay = Relay()
    for _ in range(10):
        relay.leave(relay.create("192.168.1.10", DESKTOP))
        mock_clock.jump(1)
    with pytest.raises(CreateRefused) as info:
        relay.create("192.168.1.10", DESKTOP)
    assert info.value.status == 429 and info.value.retry_after == 50
    relay.create("192.168.1.11", DESKTOP)  # another address is not affected
    mock_clock.jump(50)
    relay.create("192.168.1.10", DESKTOP)  # the oldest creation has left the window
    with pytest.raises(CreateRefused):
        relay.create("192.168.1.10", DESKTOP)


async def test_refused_creations_do_not_count() -> None:
    relay = Relay(Limits(creates_per_window=2, max_channels=1))
    first = relay.create("a", {})
    with pytest.raises(CreateRefused) as info:
        relay.create("a", {})
    assert info.value.status == 503
    relay.leave(first)
    relay.create("a", {})  # the refused attempt did not use the second slot


async def test_open_channels_per_address_and_in_all_are_capped() -> None:
    relay = Relay(Limits(max_open_per_address=2, max_channels=3))
    a1, _ = relay.create("a", {}), relay.create("a", {})
    with pytest.raises(CreateRefused) as info:
        relay.create("a", {})
    assert info.value.status == 429
    relay.create("b", {})
    with pytest.raises(CreateRefused) as info:
        relay.create("c", {})
    assert info.value.status == 503
    relay.leave(a1)
    relay.create("a", {})


async def test_rate_table_is_bounded() -> None:
    relay = Relay(Limits(max_tracked_addresses=3, max_channels=100))
    for i in range(10):
        relay.create(f"10.0.0.{i}", {})
    assert len(relay._creations) == 3


# --- timers (MockClock) ---------------------------------------------------------------------

async def test_idle_timeout_closes_a_pair(autojump_clock: trio.testing.MockClock) -> None:
    relay = Relay()
    creator, joiner = paired(relay)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(relay.watch, creator)
        nursery.start_soon(relay.watch, joiner)
    assert trio.current_time() - start == pytest.approx(relay.limits.idle_timeout)
    idle = Close(1008, "idle timeout")
    assert drain(creator) == [idle, END] and drain(joiner) == [idle, END]


async def test_activity_pushes_the_idle_deadline_back(
        mock_clock: trio.testing.MockClock) -> None:
    relay = Relay(Limits(idle_timeout=300))
    creator, joiner = paired(relay)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(relay.watch, creator)
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(200)
        relay.receive(joiner, frame(1))
        mock_clock.jump(250)
        await trio.testing.wait_all_tasks_blocked()
        assert creator.channel.state is State.PAIRED
        mock_clock.jump(51)
        await settle(nursery)
    assert drain(creator)[-2:] == [Close(1008, "idle timeout"), END]


async def test_waiting_for_a_scan_is_bounded_by_the_lifetime_only(
        mock_clock: trio.testing.MockClock) -> None:
    relay = Relay(Limits(idle_timeout=60, lifetime=900))
    creator = relay.create("a", DESKTOP)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(relay.watch, creator)
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(899)
        await trio.testing.wait_all_tasks_blocked()
        assert creator.channel.state is State.WAITING
        mock_clock.jump(1)
        await settle(nursery)
    assert drain(creator)[-2:] == [Close(1008, "channel expired"), END]


async def test_lifetime_ends_even_a_busy_pair(mock_clock: trio.testing.MockClock) -> None:
    relay = Relay(Limits(idle_timeout=300, lifetime=900, max_messages=100))
    creator, joiner = paired(relay)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(relay.watch, joiner)
        for i in range(9):
            mock_clock.jump(100)
            await trio.testing.wait_all_tasks_blocked()
            relay.receive(creator, frame(i))
        mock_clock.jump(100)
        await settle(nursery)
    assert drain(joiner)[-2:] == [Close(1008, "channel expired"), END]
    assert drain(creator)[-2:] == [Close(1008, "channel expired"), END]


async def test_a_watcher_notices_the_join_and_the_leave(
        mock_clock: trio.testing.MockClock) -> None:
    # Only the creator's watcher runs: it slept on the (later) waiting deadline and must
    # switch to the idle one when the join comes, and keep it once the joiner is gone.
    relay = Relay(Limits(idle_timeout=60, lifetime=900))
    creator = relay.create("a", DESKTOP)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(relay.watch, creator)
        await trio.testing.wait_all_tasks_blocked()
        joiner = relay.join(creator.channel.id, PHONE)
        relay.leave(joiner)
        await trio.testing.wait_all_tasks_blocked()
        assert creator.channel.state is State.ALONE
        mock_clock.jump(60)
        await settle(nursery)
    assert drain(creator)[-2:] == [Close(1008, "idle timeout"), END]


async def test_watch_returns_when_its_participant_goes() -> None:
    relay = Relay()
    creator, joiner = paired(relay)
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(relay.watch, joiner)
            await trio.testing.wait_all_tasks_blocked()
            relay.leave(joiner)
    assert creator.channel.state is State.ALONE


async def test_expired_channels_cannot_be_joined_or_used_before_a_watcher_runs(
        mock_clock: trio.testing.MockClock) -> None:
    relay = Relay(Limits(idle_timeout=60, lifetime=100))
    creator = relay.create("a", DESKTOP)
    mock_clock.jump(100)
    with pytest.raises(Refused, match="unknown channel"):
        relay.join(creator.channel.id, PHONE)
    creator2, joiner2 = paired(relay)
    mock_clock.jump(60)
    relay.receive(joiner2, frame(1))  # too late: closes instead of relaying
    assert drain(creator2) == [Close(1008, "idle timeout"), END]


async def test_create_sweeps_expired_channels(mock_clock: trio.testing.MockClock) -> None:
    relay = Relay(Limits(max_channels=1, lifetime=100))
    relay.create("a", {})
    mock_clock.jump(100)
    relay.create("b", {})  # the expired one no longer takes the only slot
    assert len(relay) == 1
