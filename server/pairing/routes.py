"""The relay's websocket routes: ``/v1/ws/`` creates a channel, ``/v1/ws/<id>`` joins one.

Each connection runs three tasks in one nursery: ``_pump_in`` feeds received frames to the
core, ``_pump_out`` sends the participant's outbox (greeting, relayed frames, then the close),
``_watch`` runs the channel's timers.  Whichever ends the connection cancels the other two;
``relay.leave`` runs on every way out, including the peer vanishing (quart-trio cancels the
handler when Hypercorn reports the disconnect).  Relayed frames are never logged.
"""

from __future__ import annotations

import logging

import trio
from quart import Blueprint, Response, websocket

from ..errors import FxaError
from .relay import CLOSE_INTERNAL, Close, CreateRefused, Participant, Refused, Relay

log = logging.getLogger("foxden.pairing")

# Time a closed participant's socket gets to flush its queued frames and the close frame.
CLOSE_GRACE = 5.0
MAX_UA_CHARS = 512


def sender_metadata(user_agent: str | None, remote: str | None) -> dict[str, str]:
    """channelserver's ``sender`` object (pairing.md §2.5): strings only, absent keys omitted."""
    # DIVERGENCE: no city/region/country.  channelserver looks the peer up in GeoIP; an
    # appliance has no GeoIP database and a LAN address has no location anyway (and
    # channelserver omits the keys too when its lookup fails).  Authority pages should say
    # "on your network" and show `remote` when the location keys are absent.
    # DIVERGENCE: `remote` is the socket's peer address, never X-Forwarded-For: nothing
    # proxies a household appliance, and trusting the header would let a client pick its
    # address.  (channelserver counts 10/8, 172.16/12, 192.168/16 as proxies and so would
    # omit `remote` for a LAN peer; the desktop shows it to the user as `ipAddress`.)
    sender: dict[str, str] = {}
    if user_agent:
        sender["ua"] = user_agent[:MAX_UA_CHARS]
    if remote:
        sender["remote"] = remote
    return sender


def make_blueprint(relay: Relay) -> Blueprint:
    bp = Blueprint("pairing", __name__)

    @bp.websocket("/v1/ws/")
    async def create_channel() -> Response | None:
        address = _peer_address()
        try:
            participant = relay.create(address, _sender(address))
        except CreateRefused as exc:
            # Answered before the upgrade: the client sees an HTTP status, no socket.
            return _refusal(exc)
        await _serve(relay, participant)
        return None

    @bp.websocket("/v1/ws/<channel_id>")
    async def join_channel(channel_id: str) -> None:
        try:
            participant = relay.join(channel_id, _sender(_peer_address()))
        except Refused as exc:
            # pairing.md §2.8: close with 1008 and no greeting.
            # DIVERGENCE: channelserver just stops the session (close code unconfirmed).
            await websocket.accept()
            await websocket.close(exc.code, exc.reason)
            return
        await _serve(relay, participant)

    return bp


def _peer_address() -> str:
    client = websocket.scope.get("client")
    return str(client[0]) if client else ""


def _sender(address: str) -> dict[str, str]:
    return sender_metadata(websocket.headers.get("User-Agent"), address)


def _refusal(exc: CreateRefused) -> Response:
    if exc.status == 429:
        err = FxaError(429, 114, "Client has sent too many requests",
                       retryAfter=exc.retry_after)
    else:
        err = FxaError(503, 201, "Service unavailable", retryAfter=exc.retry_after)
    resp = err.response()
    resp.headers["Retry-After"] = str(exc.retry_after)
    return resp


async def _serve(relay: Relay, participant: Participant) -> None:
    # The hard bound on the connection, whatever the client does (a reader that never
    # drains its socket included).
    deadline = participant.channel.created + relay.limits.lifetime + CLOSE_GRACE
    try:
        with trio.move_on_at(deadline):
            await websocket.accept()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump_in, relay, participant)
                nursery.start_soon(_pump_out, participant, nursery.cancel_scope)
                nursery.start_soon(_watch, relay, participant, nursery.cancel_scope)
    except Exception as exc:
        # Quart's error handlers speak HTTP; here the socket gets 1011 and the log the type.
        log.error("pairing relay error: %s", type(exc).__name__, exc_info=exc)
        try:
            await websocket.close(CLOSE_INTERNAL, "internal error")
        except RuntimeError:
            pass  # already closed
    finally:
        relay.leave(participant)


async def _pump_in(relay: Relay, participant: Participant) -> None:
    # Every frame is counted against the channel's message cap or closes the participant.
    for _ in range(relay.limits.max_messages + 1):
        frame = await websocket.receive()
        relay.receive(participant, frame)
        if participant.gone:
            break
    # _pump_out delivers the close and ends the connection.
    await trio.sleep_forever()


async def _pump_out(participant: Participant, done: trio.CancelScope) -> None:
    # The outbox holds at most greeting + max_messages frames + one Close, then ends.
    async for item in participant.outbox:
        if isinstance(item, Close):
            await websocket.close(item.code, item.reason)
            break
        await websocket.send(item)
    done.cancel()


async def _watch(relay: Relay, participant: Participant, done: trio.CancelScope) -> None:
    await relay.watch(participant)
    await trio.sleep(CLOSE_GRACE)
    done.cancel()
