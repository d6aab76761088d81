"""The pairing channel relay's core: channels, participants, limits, timers (pairing.md §2).

No sockets here.  The routes feed it frames and drain each participant's *outbox*, a bounded
Trio memory channel holding, in order, the frames to send and finally at most one ``Close``.
Time comes from ``trio.current_time`` (injectable), so MockClock drives every timer.

A channel's states
------------------
WAITING   the creator is connected and has had its greeting; one join may come.
PAIRED    creator and joiner are connected; text frames go from each to the other.
ALONE     one of the pair has gone; the other stays connected, nobody may join, and its
          frames reach nobody.
CLOSED    terminal: the channel is out of the registry (its id is "unknown" from then on) and
          every participant still present got a ``Close`` as the last item of its outbox.

Transitions (anything not listed leaves the state as it is)
------------------------------------------------------------
(none)        --create-->            WAITING  the greeting is the creator's first frame
WAITING       --join-->              PAIRED   the greeting is the joiner's first frame
WAITING       --creator leaves-->    CLOSED
PAIRED        --one leaves-->        ALONE    the other is *not* told (channelserver parity)
ALONE         --the other leaves-->  CLOSED
PAIRED, ALONE --join-->              refused: 1008 "channel full"
WAITING       --frame-->             dropped: nobody to receive it (but counted)
PAIRED        --frame from A-->      ``{"message": text, "sender": A's metadata}`` to B only
ALONE         --frame-->             dropped (but counted)
any           --bad frame from P-->  P leaves with 1003 (binary), 1009 (too long) or
                                     1007 (empty, not base64url): as "P leaves" above
any           --frame over the message or byte cap-->  CLOSED, 1008; that frame is dropped
any           --lifetime passes-->   CLOSED, 1008 "channel expired"
PAIRED, ALONE --idle timeout-->      CLOSED, 1008 "idle timeout" (the idle clock restarts
                                     on the join and on every counted frame)

Why a peer's leaving is not passed on: FPC treats a socket closing before a TLS close_notify
as an error, so closing the desktop's socket because the phone hung up after its last frame
would turn a finished pairing into a failed one.

Refusals before a participant exists: a join with a malformed or unknown id gets 1008 and no
greeting; a create over the per-address rate or open-channel cap raises ``CreateRefused``
(429), over the server-wide channel cap also ``CreateRefused`` (503) — the routes answer those
with HTTP before the upgrade.

Why it is bounded: an outbox holds at most greeting + ``max_messages`` relayed frames + one
``Close``, and is sized for exactly that, so relaying never waits on a slow reader.  Every
accepted frame counts against the channel's message cap, so a connection's receive loop runs
at most ``max_messages + 1`` times; the lifetime bounds everything in time.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import trio

log = logging.getLogger("foxden.pairing")

# RFC 6455 §7.4.1 close codes.
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011

# v1 has exactly two parties and no reconnect: a second ClientHello would only break the
# TLS session (pairing.md §2.8).
MAX_PARTICIPANTS = 2

# A guess for Retry-After when a cap (not the rate) refuses: channels end with their sockets.
CAP_RETRY_AFTER = 60

CHANNEL_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


@dataclass(frozen=True, slots=True)
class Limits:
    # Happy path is 10 frames (pairing.md §2.6); channelserver's 10 is right at the edge.
    max_messages: int = 64
    # DIVERGENCE: channelserver's max_data is unlimited; this bounds memory per channel.
    max_channel_bytes: int = 1 << 20
    # A full TLS record is 16 KiB + 256 + 5 bytes, about 22 KiB in base64.
    max_frame_chars: int = 32 * 1024
    # DIVERGENCE: channelserver drops a peer after 60 s without a pong; ASGI never shows us
    # pongs, so we time out on traffic instead, and people confirming on two devices need
    # minutes, not seconds.
    idle_timeout: float = 300.0
    # Desktop's own flow timeout (FF FLOW_TIMEOUT_MS), measured from channel creation.
    lifetime: float = 900.0
    max_channels: int = 32
    max_open_per_address: int = 4
    creates_per_window: int = 10
    create_window: float = 60.0
    max_tracked_addresses: int = 1024


DEFAULT_LIMITS = Limits()


class State(Enum):
    WAITING = "waiting"
    PAIRED = "paired"
    ALONE = "alone"
    CLOSED = "closed"


class Role(Enum):
    CREATOR = "creator"
    JOINER = "joiner"


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


Outgoing = str | Close


class Refused(Exception):
    """A join that gets no greeting: accept, then close with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class CreateRefused(Exception):
    """A create answered with HTTP ``status`` before the upgrade."""

    def __init__(self, status: int, reason: str, retry_after: int) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


def check_frame(frame: object, max_chars: int) -> str | Close:
    """The text to relay (whitespace trimmed, as channelserver does), or why it is refused."""
    if not isinstance(frame, str):
        # DIVERGENCE: channelserver logs and ignores binary; no pairing client sends any.
        return Close(CLOSE_UNSUPPORTED_DATA, "binary frames are not relayed")
    if len(frame) > max_chars:
        return Close(CLOSE_TOO_BIG, "frame too large")
    text = frame.strip()
    # DIVERGENCE: channelserver relays any text; every pairing frame is one base64url TLS
    # record (padded from FPC, so both forms are accepted), and nothing else has a use.
    if not _is_base64url(text):
        return Close(CLOSE_INVALID_PAYLOAD, "frames must be base64url")
    return text


def _is_base64url(text: str) -> bool:
    if not _B64URL.fullmatch(text):
        return False
    if "=" in text:
        return len(text) % 4 == 0
    return len(text) % 4 != 1


def greeting(channel_id: str) -> str:
    return json.dumps({"link": f"/v1/ws/{channel_id}", "channelid": channel_id},
                      separators=(",", ":"))


def envelope(text: str, sender: dict[str, str]) -> str:
    return json.dumps({"message": text, "sender": sender}, separators=(",", ":"))


class Participant:
    """One websocket's end of a channel; ``outbox`` is what the route sends, in order."""

    def __init__(self, channel: Channel, role: Role, sender: dict[str, str],
                 capacity: int) -> None:
        self.channel = channel
        self.role = role
        self.sender = sender
        self._send, self.outbox = trio.open_memory_channel[Outgoing](capacity)
        self.gone = False
        self.close: Close | None = None

    def _push(self, item: Outgoing) -> None:
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            # Cannot happen with the outbox sized as the module docstring says; if it did,
            # ending the outbox makes the route close the socket rather than drop silently.
            log.error("pairing outbox overflow")
            self._finish(None)

    def _finish(self, close: Close | None) -> None:
        if self.gone:
            return
        self.gone = True
        if close is not None:
            self.close = close
            self._push(close)
        self._send.close()


class Channel:
    def __init__(self, channel_id: str, address: str, now: float) -> None:
        self.id = channel_id
        self.address = address
        self.created = now
        self.last_activity = now
        self.state = State.WAITING
        self.participants: list[Participant] = []
        self.messages = 0
        self.bytes = 0
        # Set and replaced on every state change, so timer watchers re-read the deadline.
        self.changed = trio.Event()

    def deadline(self, limits: Limits) -> float:
        end = self.created + limits.lifetime
        if self.state in (State.PAIRED, State.ALONE):
            # Waiting for a scan is bounded by the lifetime only: finding the phone, opening
            # Firefox and its scanner may take the user a while, and a dead QR code fails
            # silently on the desktop.
            end = min(end, self.last_activity + limits.idle_timeout)
        return end

    def _transition(self, state: State) -> None:
        self.state = state
        self.changed.set()
        self.changed = trio.Event()


class _CreationWindow:
    """Per-address creation timestamps in a sliding window; bounded in keys and per key."""

    def __init__(self, cap: int, window: float, max_keys: int) -> None:
        self._cap = cap
        self._window = window
        self._max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def retry_after(self, key: str, now: float) -> int | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self._window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        if len(hits) < self._cap:
            return None
        return max(1, math.ceil(hits[0] + self._window - now))

    def add(self, key: str, now: float) -> None:
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque(maxlen=self._cap)
            while len(self._hits) > self._max_keys:
                self._hits.popitem(last=False)
        hits.append(now)
        self._hits.move_to_end(key)


class Relay:
    """The registry of live channels.  Nothing outlives a channel; nothing touches a disk."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS, *,
                 clock: Callable[[], float] = trio.current_time,
                 random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> None:
        self.limits = limits
        self._clock = clock
        self._random_bytes = random_bytes
        self._channels: dict[str, Channel] = {}
        self._open_by_address: dict[str, int] = {}
        self._creations = _CreationWindow(limits.creates_per_window, limits.create_window,
                                          limits.max_tracked_addresses)

    # Greeting + every relayed frame + the Close (see the module docstring).
    @property
    def _outbox_capacity(self) -> int:
        return self.limits.max_messages + 2

    def __len__(self) -> int:
        return len(self._channels)

    def get(self, channel_id: str) -> Channel | None:
        return self._channels.get(channel_id)

    def create(self, address: str, sender: dict[str, str]) -> Participant:
        now = self._clock()
        for ch in list(self._channels.values()):
            self.check_timers(ch)
        lim = self.limits
        # DIVERGENCE: channelserver has no creation limits; a LAN box must not be filled up
        # by one noisy or hostile client.
        retry = self._creations.retry_after(address, now)
        if retry is not None:
            raise CreateRefused(429, "too many channels created", retry)
        if self._open_by_address.get(address, 0) >= lim.max_open_per_address:
            raise CreateRefused(429, "too many open channels", CAP_RETRY_AFTER)
        if len(self._channels) >= lim.max_channels:
            raise CreateRefused(503, "relay is full", CAP_RETRY_AFTER)
        channel_id = self._new_id()
        ch = Channel(channel_id, address, now)
        creator = Participant(ch, Role.CREATOR, sender, self._outbox_capacity)
        creator._push(greeting(channel_id))
        ch.participants.append(creator)
        self._channels[channel_id] = ch
        self._open_by_address[address] = self._open_by_address.get(address, 0) + 1
        self._creations.add(address, now)
        log.info("pairing channel opened (%d open)", len(self._channels))
        return creator

    def _new_id(self) -> str:
        # 16 random bytes, base64url unpadded: 22 characters (CS channelid.rs).  A collision
        # among a few dozen 128-bit ids does not happen; the loop is only a guard.
        for _ in range(4):
            raw = self._random_bytes(16)
            channel_id = _b64url_nopad(raw)
            if channel_id not in self._channels:
                return channel_id
        raise RuntimeError("no fresh channel id")

    def join(self, channel_id: str, sender: dict[str, str]) -> Participant:
        # DIVERGENCE: channelserver creates a channel for an id it cannot decode.
        if not CHANNEL_ID.fullmatch(channel_id):
            raise Refused(CLOSE_POLICY, "invalid channel id")
        ch = self._channels.get(channel_id)
        if ch is not None:
            self.check_timers(ch)
        if ch is None or ch.state is State.CLOSED:
            raise Refused(CLOSE_POLICY, "unknown channel")
        if ch.state is not State.WAITING:
            # DIVERGENCE: channelserver lets a new joiner fill a freed slot; v1 cannot use one.
            raise Refused(CLOSE_POLICY, "channel full")
        joiner = Participant(ch, Role.JOINER, sender, self._outbox_capacity)
        joiner._push(greeting(channel_id))
        ch.participants.append(joiner)
        ch.last_activity = self._clock()
        ch._transition(State.PAIRED)
        return joiner

    def receive(self, participant: Participant, frame: object) -> None:
        """One frame from ``participant``'s socket: relay it, drop it, or close someone."""
        if participant.gone:
            return
        ch = participant.channel
        self.check_timers(ch)
        if participant.gone:
            return
        verdict = check_frame(frame, self.limits.max_frame_chars)
        if isinstance(verdict, Close):
            log.info("pairing participant closed: %s", verdict.reason)
            self._remove(participant, verdict)
            return
        ch.messages += 1
        ch.bytes += len(verdict)
        if ch.messages > self.limits.max_messages:
            self._shutdown(ch, Close(CLOSE_POLICY, "message limit reached"))
            return
        if ch.bytes > self.limits.max_channel_bytes:
            self._shutdown(ch, Close(CLOSE_POLICY, "data limit reached"))
            return
        ch.last_activity = self._clock()
        if ch.state is State.PAIRED:
            text = envelope(verdict, participant.sender)
            for other in ch.participants:
                if other is not participant:
                    other._push(text)

    def leave(self, participant: Participant) -> None:
        """The participant's socket is gone (idempotent)."""
        if not participant.gone:
            self._remove(participant, None)

    def check_timers(self, ch: Channel) -> None:
        if ch.state is State.CLOSED:
            return
        now = self._clock()
        if now >= ch.created + self.limits.lifetime:
            self._shutdown(ch, Close(CLOSE_POLICY, "channel expired"))
        elif now >= ch.deadline(self.limits):
            self._shutdown(ch, Close(CLOSE_POLICY, "idle timeout"))

    async def watch(self, participant: Participant) -> None:
        """Return once ``participant`` is gone, closing its channel when a timer runs out."""
        ch = participant.channel
        # Each wake-up is a state change (at most 3), a timer closing the channel, or a
        # deadline that activity pushed back (at most one per counted frame).
        for _ in range(self.limits.max_messages + 8):
            if participant.gone:
                return
            changed = ch.changed
            with trio.move_on_at(ch.deadline(self.limits)):
                await changed.wait()
            self.check_timers(ch)
        self._shutdown(ch, Close(CLOSE_POLICY, "channel expired"))

    def _remove(self, participant: Participant, close: Close | None) -> None:
        ch = participant.channel
        participant._finish(close)
        if participant in ch.participants:
            ch.participants.remove(participant)
        if ch.state is State.PAIRED and ch.participants:
            ch._transition(State.ALONE)
        elif ch.state is not State.CLOSED:
            self._shutdown(ch, None)

    def _shutdown(self, ch: Channel, close: Close | None) -> None:
        if ch.state is State.CLOSED:
            return
        for p in ch.participants:
            p._finish(close)
        ch.participants.clear()
        if self._channels.get(ch.id) is ch:
            del self._channels[ch.id]
            left = self._open_by_address.get(ch.address, 1) - 1
            if left > 0:
                self._open_by_address[ch.address] = left
            else:
                self._open_by_address.pop(ch.address, None)
        ch._transition(State.CLOSED)
        log.info("pairing channel closed: %s (%d open)",
                 close.reason if close else "participants left", len(self._channels))


def _b64url_nopad(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
