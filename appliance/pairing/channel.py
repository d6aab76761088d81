"""The authority's websocket to the pairing relay (pairing.md §2), over trio-websocket.

Wire rules (mirrored from server/pairing/relay.py and channelserver):

* ``<ws(s) origin>/v1/ws/`` creates a channel; the path is absolute, as FPC builds it with
  ``new URL('/v1/ws/', base)``: whatever path the configured origin has is dropped.
* The relay's first frame is the greeting ``{"link": "/v1/ws/<id>", "channelid": "<id>"}``
  (22-character base64url id); nothing comes before it.
* Every later frame from the relay is ``{"message": <base64url TLS record>, "sender": {...}}``;
  every frame we send is exactly one TLS record, base64url *with* padding as FPC sends it
  (its decoders accept both; we accept both too).
* Refusals of a create are HTTP statuses before the upgrade (429 / 503 + Retry-After).
  A peer leaving is never signalled: only a TLS close_notify, or the relay's own close
  (1008 "idle timeout" / "channel expired" / "channel full", 1009, 1003, 1007, 1011).

Every wait is bounded: connecting by ``connect_timeout``, the greeting by
``greeting_timeout``, each receive by the caller's timeout. Frames are never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import trio
import trio_websocket

__all__ = [
    "Channel", "ChannelClosed", "ChannelError", "ChannelRefused", "Greeting", "MAX_FRAME_CHARS",
    "RelayProtocolError", "RelayedFrame", "SENDER_KEYS", "decode_frame", "encode_record",
    "open_channel", "parse_greeting", "ssl_context", "ws_url",
]

# The relay's own cap (server/pairing/relay.py Limits.max_frame_chars); an envelope adds
# the sender metadata (≤ 512-char UA), so accept a little more from it.
MAX_FRAME_CHARS = 32 * 1024
MAX_ENVELOPE_CHARS = MAX_FRAME_CHARS + 4096
# The only sender keys the FxA supplicant schema allows (pairing.md §2.5); strings only.
SENDER_KEYS = ("ua", "remote", "city", "region", "country")
MAX_SENDER_VALUE = 512

CHANNEL_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")

CONNECT_TIMEOUT = 15.0
GREETING_TIMEOUT = 15.0
DISCONNECT_TIMEOUT = 5.0
USER_AGENT = "Foxden pairing authority"


class ChannelError(Exception):
    """The channel could not be opened or is no longer usable."""


class ChannelRefused(ChannelError):
    """The relay refused to create a channel (HTTP status before the upgrade)."""

    def __init__(self, status: int, retry_after: int | None) -> None:
        super().__init__(f"the relay refused the channel (HTTP {status})")
        self.status = status
        self.retry_after = retry_after


class ChannelClosed(ChannelError):
    """The websocket closed (or never opened); ``code``/``reason`` as the relay sent them."""

    def __init__(self, code: int | None, reason: str | None, detail: str = "") -> None:
        super().__init__(detail or f"the relay closed the channel ({code} {reason or ''})".strip())
        self.code = code
        self.reason = reason or ""


class RelayProtocolError(ChannelError):
    """The relay sent something that is not a greeting / envelope as pairing.md §2 says."""


@dataclass(frozen=True, slots=True)
class Greeting:
    channel_id: str
    link: str


@dataclass(frozen=True, slots=True)
class RelayedFrame:
    """One TLS record from the other participant, with the relay's metadata about it."""

    record: bytes
    sender: Mapping[str, str] = field(default_factory=dict)


# --- sans-IO framing -------------------------------------------------------------------------

def ws_url(origin: str) -> str:
    """``https://host[:port][/any]`` → ``wss://host[:port]/v1/ws/`` (absolute path, as FPC)."""
    parts = urlsplit(origin)
    scheme = {"https": "wss", "http": "ws", "wss": "wss", "ws": "ws"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"not an http(s) origin: {origin!r}")
    return f"{scheme}://{parts.netloc}/v1/ws/"


def encode_record(record: bytes) -> str:
    """One TLS record as a relay text frame: base64url with padding (FPC's encoder)."""
    text = base64.urlsafe_b64encode(record).decode("ascii")
    if len(text) > MAX_FRAME_CHARS:
        raise ValueError("record too large for one relay frame")
    return text


def _b64url_decode(text: str) -> bytes:
    if not _B64URL.match(text) or not text.rstrip("="):
        raise RelayProtocolError("frame payload is not base64url")
    body = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise RelayProtocolError("frame payload is not base64url") from exc


def _json_object(text: str | bytes) -> dict[str, object]:
    if isinstance(text, bytes):
        raise RelayProtocolError("binary frame from the relay")
    if len(text) > MAX_ENVELOPE_CHARS:
        raise RelayProtocolError("oversized frame from the relay")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise RelayProtocolError("frame is not JSON") from exc
    if not isinstance(value, dict):
        raise RelayProtocolError("frame is not a JSON object")
    return value


def parse_greeting(text: str | bytes) -> Greeting:
    data = _json_object(text)
    channel_id, link = data.get("channelid"), data.get("link")
    if not isinstance(channel_id, str) or not CHANNEL_ID.match(channel_id):
        raise RelayProtocolError("greeting without a valid channelid")
    return Greeting(channel_id, link if isinstance(link, str) else f"/v1/ws/{channel_id}")


def _clean_sender(value: object) -> dict[str, str]:
    # Keep only the five known string keys, bounded: they are shown to the user.
    if not isinstance(value, dict):
        return {}
    return {k: v[:MAX_SENDER_VALUE] for k in SENDER_KEYS
            if isinstance(v := value.get(k), str) and v}


def decode_frame(text: str | bytes) -> RelayedFrame:
    data = _json_object(text)
    message = data.get("message")
    if not isinstance(message, str):
        raise RelayProtocolError("envelope without a message")
    return RelayedFrame(_b64url_decode(message.strip()), _clean_sender(data.get("sender")))


def ssl_context(ca_file: Path | str | None = None) -> ssl.SSLContext:
    """Verification against the appliance's own CA when given, else the system store."""
    # create_default_context(cafile=...) trusts only that file: a Foxden CA must not widen
    # what this client trusts, and a public certificate goes through the system store.
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


# --- the websocket ---------------------------------------------------------------------------

class Channel:
    """A created channel: our end of the websocket, after the greeting."""

    def __init__(self, ws: trio_websocket.WebSocketConnection, greeting: Greeting) -> None:
        self._ws = ws
        self.greeting = greeting

    @property
    def channel_id(self) -> str:
        return self.greeting.channel_id

    async def send_record(self, record: bytes) -> None:
        try:
            await self._ws.send_message(encode_record(record))
        except trio_websocket.ConnectionClosed as exc:
            raise _closed(exc) from None

    async def receive(self, timeout: float) -> RelayedFrame:
        """The next relayed record; ``trio.TooSlowError`` after ``timeout`` seconds."""
        with trio.fail_after(max(timeout, 0.0)):
            try:
                text = await self._ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                raise _closed(exc) from None
        return decode_frame(text)

    async def aclose(self) -> None:
        with trio.move_on_after(DISCONNECT_TIMEOUT):
            await self._ws.aclose()


def _closed(exc: trio_websocket.ConnectionClosed) -> ChannelClosed:
    reason = exc.reason
    return ChannelClosed(reason.code if reason else None, reason.reason if reason else None)


def _retry_after(headers: tuple[tuple[bytes, bytes], ...]) -> int | None:
    for name, value in headers:
        if name.lower() == b"retry-after" and value.strip().isdigit():
            return int(value)
    return None


@asynccontextmanager
async def open_channel(
    origin: str, *, ssl_context: ssl.SSLContext | None = None,
    connect_timeout: float = CONNECT_TIMEOUT, greeting_timeout: float = GREETING_TIMEOUT,
    user_agent: str = USER_AGENT,
) -> AsyncIterator[Channel]:
    """Create a channel on the relay at ``origin`` and wait for its greeting."""
    url = ws_url(origin)
    context = ssl_context if url.startswith("wss:") else None
    if url.startswith("wss:") and context is None:
        context = ssl.create_default_context()
    entered = False  # errors from the caller's body are not connection errors
    try:
        async with trio_websocket.open_websocket_url(
            url, context, extra_headers=[(b"User-Agent", user_agent.encode("ascii", "replace"))],
            message_queue_size=4, max_message_size=MAX_ENVELOPE_CHARS,
            connect_timeout=connect_timeout, disconnect_timeout=DISCONNECT_TIMEOUT,
        ) as ws:
            try:
                with trio.fail_after(greeting_timeout):
                    first = await ws.get_message()
            except trio.TooSlowError:
                raise ChannelClosed(None, None, "the relay sent no greeting") from None
            except trio_websocket.ConnectionClosed as exc:
                raise _closed(exc) from None
            channel = Channel(ws, parse_greeting(first))
            entered = True
            try:
                yield channel
            finally:
                await channel.aclose()
    except trio_websocket.ConnectionRejected as exc:
        if entered:
            raise
        raise ChannelRefused(exc.status_code, _retry_after(exc.headers)) from None
    except trio_websocket.ConnectionTimeout:
        if entered:
            raise
        raise ChannelClosed(None, None, "could not reach the relay in time") from None
    except (trio_websocket.HandshakeError, OSError, ssl.SSLError) as exc:
        if entered:
            raise
        raise ChannelClosed(None, None, f"could not connect to the relay: {exc}") from None
