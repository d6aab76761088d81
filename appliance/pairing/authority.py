"""The pairing authority: Foxden shows a QR code, a phone's Firefox scans it and ends up
signed in with the Sync keys (pairing.md §4, §5, §8).  A sans-IO core (:class:`Authority`:
events in, actions out) and a thin Trio driver (:func:`run_pairing`).

States and transitions
----------------------
::

    CREATING --ChannelOpened(id)--> WAITING_FOR_PHONE        we show the pairing URL / QR
    WAITING_FOR_PHONE --ClientHello (PSK binder ok)--> TLS_HANDSHAKE   we send SH, CCS, EE+Fin
    TLS_HANDSHAKE --client Finished--> WAITING_FOR_REQUEST
    WAITING_FOR_REQUEST --pair:supp:request (valid)--> AWAITING_CONFIRMATION
                                         we send pair:auth:metadata at once (as desktop does)
                                         and ask our user, showing the phone's UA / address
    AWAITING_CONFIRMATION --UserConfirmed--> AUTHORIZING      the driver signs in with the
                                         typed password, builds keys_jwe, gets the code
    AUTHORIZING --AuthorizationSucceeded--> SENT_AUTHORIZE    we send pair:auth:authorize
                                         (or straight to DONE if the phone already approved)
    SENT_AUTHORIZE --pair:supp:authorize--> DONE              we send close_notify

    pair:supp:authorize in AWAITING_CONFIRMATION / AUTHORIZING: remembered (the phone's
    user approved first; pairing.md §4.2 allows either order).

Endings (terminal: DONE, DECLINED, FAILED, TIMED_OUT; later events are ignored)
-------------------------------------------------------------------------------
* DECLINED — our user declines or cancels (any state before DONE); the phone sends
  close_notify before DONE (its user cancelled).
* FAILED — TLS error (a wrong channel key shows as ``wrong_channel_key``); a first message
  other than a valid ``pair:supp:request`` (unknown client, bad scope, PKCE, keys_jwk...);
  any message name other than ``pair:supp:authorize`` afterwards, or a repeated one (desktop
  errors out too, pairing.md §4.2); malformed JSON; sign-in/authorization failure (wrong
  password, throttled, server error); the websocket closing without close_notify.
* TIMED_OUT — a phase deadline passes, or the relay closes with "idle timeout" /
  "channel expired".  Deadlines (:class:`Timeouts`): the whole pairing (default 10 min,
  never more than the relay's 15 min lifetime), the handshake and the request (30 s each,
  the phone sends them at once), each user's confirmation (4 min, under the relay's 5 min
  idle rule), authorizing (90 s).
* Every ending after the handshake sends close_notify (or the fatal alert a TLS error
  queued) and closes the channel.  No invented messages (no "decline" message): declining
  is closing, as desktop does.

What the phone may ask (``pair:supp:request``; FXA supplicant ``getOAuthParams``)
--------------------------------------------------------------------------------
``client_id`` ∈ :data:`PAIRING_CLIENTS`; ``redirect_uri`` absent or the WebChannel URN;
``scope`` ⊆ {profile, oldsync, tokens/session}, split on whitespace and ``+`` (old Fenix);
``code_challenge_method`` = S256 with a 43-character challenge; ``state`` 1–512 visible
ASCII characters; ``keys_jwk`` unpadded base64url JSON of a P-256 *public* JWK;
``access_type`` online/offline or absent (forced to offline, as desktop does).

Secrets: the password is never seen by the core; the driver holds it in a :class:`Secret`
only until the one authorization attempt ends.  kB lives inside
``FxaClient.authorize_pairing``; the code passes through the core once (into the TLS
record) and is not kept.  The PSK is dropped when the pairing ends.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from server.crypto import onepw

from . import tlspsk
from .channel import ChannelClosed, ChannelError, RelayedFrame
from .fxaclient import (
    AuthorizationResult,
    FxaClientError,
    IncorrectPassword,
    PhoneAuthorization,
    TooManyAttempts,
    UnknownAccount,
)

log = logging.getLogger("foxden.pairing")

__all__ = [
    "AskConfirmation", "Authority", "AuthorizationFailed", "AuthorizationSucceeded",
    "ChannelLost", "ChannelOpened", "CloseChannel", "Finished", "FrameReceived", "Notice",
    "Outcome", "PAIRING_CLIENTS", "PhoneApproved", "PhoneInfo", "RequestRejected", "Secret",
    "SendRecords", "ShowPairingUrl", "StartAuthorization", "State", "StateChanged",
    "TimerFired", "Timeouts", "UsageError", "UserConfirmed", "UserDeclined", "parse_request",
    "pairing_url", "run_pairing",
]

OLDSYNC = "https://identity.mozilla.com/apps/oldsync"
SESSION_SCOPE = "https://identity.mozilla.com/tokens/session"
ALLOWED_SCOPES = frozenset({"profile", OLDSYNC, SESSION_SCOPE})
WEBCHANNEL_REDIRECT = "urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel"

# pairing.md §9.1 (FxA content-server configuration.js pairing.clients).
# DIVERGENCE: FxA also allows the Reference Browser (3c49430b43dfba77); Foxden's OAuth
# server does not register it (server/oauth/clients.py), so it is refused here, before the
# user is asked, rather than by the server after the user confirmed.
PAIRING_CLIENTS: dict[str, str] = {
    "a2270f727f45f648": "Firefox for Android",
    "1b1a3e44c54fbb58": "Firefox for iOS",
}
REFERENCE_BROWSER = "3c49430b43dfba77"

# The relay closes a channel this long after creating it (server/pairing/relay.py
# Limits.lifetime); a pairing must end before, with a margin for our own close.
RELAY_LIFETIME = 900.0
RELAY_MARGIN = 30.0
# Relay close reasons that mean "too slow", not "broken" (relay.py).
RELAY_TIMEOUT_REASONS = frozenset({"idle timeout", "channel expired"})

_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_STATE = re.compile(r"^[\x21-\x7e]{1,512}$")
_CLIENT_ID = re.compile(r"^[0-9a-f]{16}$")
MAX_KEYS_JWK = 1024


class State(enum.Enum):
    CREATING = "creating"
    WAITING_FOR_PHONE = "waiting_for_phone"
    TLS_HANDSHAKE = "tls_handshake"
    WAITING_FOR_REQUEST = "waiting_for_request"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    AUTHORIZING = "authorizing"
    SENT_AUTHORIZE = "sent_authorize"
    DONE = "done"
    DECLINED = "declined"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


TERMINAL = frozenset({State.DONE, State.DECLINED, State.FAILED, State.TIMED_OUT})


@dataclass(frozen=True, slots=True)
class Timeouts:
    total: float = 600.0
    handshake: float = 30.0
    request: float = 30.0
    confirmation: float = 240.0
    authorization: float = 90.0
    phone_confirmation: float = 240.0

    def __post_init__(self) -> None:
        if not 0 < self.total <= RELAY_LIFETIME - RELAY_MARGIN:
            raise ValueError(f"total must be in (0, {RELAY_LIFETIME - RELAY_MARGIN:.0f}] s")
        if min(self.handshake, self.request, self.confirmation, self.authorization,
               self.phone_confirmation) <= 0:
            raise ValueError("timeouts must be positive")


class Secret:
    """A password held for one pairing; ``clear()`` drops it.  (Python strings cannot be
    zeroed; what we can do is keep exactly one reference and drop it early.)"""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value: str | None = value

    def reveal(self) -> str:
        if self._value is None:
            raise ValueError("the secret was cleared")
        return self._value

    def clear(self) -> None:
        self._value = None

    @property
    def cleared(self) -> bool:
        return self._value is None

    def __repr__(self) -> str:
        return "Secret(<hidden>)"


# --- what the user is shown ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PhoneInfo:
    """The joiner as the relay and its request describe it (no secrets)."""

    ua: str = ""
    remote: str = ""
    location: str = ""
    client_id: str = ""
    client_name: str = ""
    scopes: tuple[str, ...] = ()

    @property
    def device(self) -> str:
        return describe_user_agent(self.ua) or self.client_name or "an unknown device"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device, "ua": self.ua, "remote": self.remote,
                               "client_id": self.client_id, "client": self.client_name,
                               "scopes": list(self.scopes)}
        if self.location:
            out["location"] = self.location
        return out


def describe_user_agent(ua: str) -> str:
    """'Firefox 153 on Android' from a User-Agent; '' when it says nothing useful."""
    m = re.search(r"(?:Firefox|FxiOS)/(\d+)", ua)
    browser = f"Firefox {m.group(1)}" if m else ""
    system = next((name for name, marker in (
        ("Android", "Android"), ("iOS", "iPhone"), ("iOS", "iPad"), ("Windows", "Windows"),
        ("macOS", "Mac OS X"), ("Linux", "Linux")) if marker in ua), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system


def _location(sender: Mapping[str, str]) -> str:
    return ", ".join(v for k in ("city", "region", "country") if (v := sender.get(k, "")))


# --- events (driver → core) -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ChannelOpened:
    channel_id: str


@dataclass(frozen=True, slots=True)
class FrameReceived:
    record: bytes
    sender: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UserConfirmed:
    pass


@dataclass(frozen=True, slots=True)
class UserDeclined:
    pass


@dataclass(frozen=True, slots=True)
class AuthorizationSucceeded:
    result: AuthorizationResult


@dataclass(frozen=True, slots=True)
class AuthorizationFailed:
    reason: str      # wrong_password, unknown_account, throttled, auth_server_error
    message: str


@dataclass(frozen=True, slots=True)
class ChannelLost:
    code: int | None = None
    reason: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TimerFired:
    pass


Event = (ChannelOpened | FrameReceived | UserConfirmed | UserDeclined | AuthorizationSucceeded
         | AuthorizationFailed | ChannelLost | TimerFired)


# --- actions (core → driver) -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ShowPairingUrl:
    url: str          # carries the channel key: show it (QR), never log it
    channel_id: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class SendRecords:
    records: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class AskConfirmation:
    phone: PhoneInfo


@dataclass(frozen=True, slots=True)
class StartAuthorization:
    request: PhoneAuthorization


@dataclass(frozen=True, slots=True)
class PhoneApproved:
    """The phone's user approved (``pair:supp:authorize``) before we authorized."""


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: State
    new: State


@dataclass(frozen=True, slots=True)
class CloseChannel:
    pass


@dataclass(frozen=True, slots=True)
class Outcome:
    state: State
    reason: str = ""
    message: str = ""
    phone: PhoneInfo | None = None
    signed_in: bool | None = None   # DONE only: did the phone redeem its code (driver)

    @property
    def ok(self) -> bool:
        return self.state is State.DONE


@dataclass(frozen=True, slots=True)
class Finished:
    outcome: Outcome


Action = (ShowPairingUrl | SendRecords | AskConfirmation | StartAuthorization | PhoneApproved
          | StateChanged | CloseChannel | Finished)


class UsageError(Exception):
    """The driver fed an event the current state cannot take (a bug, not the peer's doing)."""


class RequestRejected(Exception):
    """The phone's ``pair:supp:request`` is not acceptable; ``reason`` is a short code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# --- validation ------------------------------------------------------------------------------

def _split_scope(value: object) -> tuple[str, ...]:
    if not isinstance(value, str) or len(value) > 1024:
        raise RequestRejected("bad_scope", "scope must be a string")
    out: list[str] = []
    for item in re.split(r"[\s+]+", value.strip()):
        if item and item not in out:
            out.append(item)
    if not out:
        raise RequestRejected("bad_scope", "scope is empty")
    extra = [s for s in out if s not in ALLOWED_SCOPES]
    if extra:
        raise RequestRejected("bad_scope", f"scope not allowed for pairing: {extra[0][:80]!r}")
    return tuple(out)


def parse_request(data: object) -> PhoneAuthorization:
    """Validate ``pair:supp:request``'s data (see the module docstring)."""
    if not isinstance(data, dict):
        raise RequestRejected("bad_request", "request data is not an object")
    client_id = data.get("client_id")
    if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        raise RequestRejected("unknown_client", "client_id is not a client id")
    if client_id not in PAIRING_CLIENTS:
        raise RequestRejected("unknown_client", f"client {client_id} may not pair")
    redirect = data.get("redirect_uri")
    if redirect is not None and redirect != WEBCHANNEL_REDIRECT:
        raise RequestRejected("bad_redirect", "redirect_uri is not the WebChannel URN")
    scope = _split_scope(data.get("scope"))
    if data.get("code_challenge_method") != "S256":
        raise RequestRejected("bad_pkce", "code_challenge_method must be S256")
    challenge = data.get("code_challenge")
    if not isinstance(challenge, str) or not _CHALLENGE.match(challenge):
        raise RequestRejected("bad_pkce", "code_challenge must be 43 base64url characters")
    state = data.get("state")
    if not isinstance(state, str) or not _STATE.match(state):
        raise RequestRejected("bad_state", "state must be 1-512 visible ASCII characters")
    access_type = data.get("access_type")
    if access_type is not None and access_type not in ("online", "offline"):
        raise RequestRejected("bad_request", "access_type must be online or offline")
    raw_jwk = data.get("keys_jwk")
    if not isinstance(raw_jwk, str) or not 0 < len(raw_jwk) <= MAX_KEYS_JWK:
        raise RequestRejected("bad_keys_jwk", "keys_jwk is missing")
    try:
        jwk = onepw.parse_keys_jwk(raw_jwk)  # strict: unpadded base64url, a P-256 point
    except onepw.OnepwError as exc:
        raise RequestRejected("bad_keys_jwk", f"keys_jwk: {exc}") from None
    if "d" in jwk:
        raise RequestRejected("bad_keys_jwk", "keys_jwk must be a public key")
    return PhoneAuthorization(client_id, scope, state, challenge, jwk)


def pairing_url(public_url: str, channel_id: str, psk: bytes) -> str:
    """``<public-url>/pair#channel_id=…&channel_key=<b64url-nopad PSK>`` (pairing.md §4.1)."""
    return (f"{public_url.rstrip('/')}/pair#channel_id={channel_id}"
            f"&channel_key={onepw.b64u_encode(psk)}")


def _message(name: str, data: Mapping[str, Any]) -> bytes:
    return json.dumps({"message": name, "data": dict(data)}, separators=(",", ":")).encode()


# --- the core --------------------------------------------------------------------------------

class Authority:
    """The sans-IO state machine; ``handle(event, now)`` returns the actions to carry out."""

    def __init__(self, *, public_url: str, email: str, now: float,
                 device_name: str = "Foxden", timeouts: Timeouts | None = None,
                 psk: bytes | None = None) -> None:
        self.public_url = public_url.rstrip("/")
        self.email = email
        self.device_name = device_name
        self.timeouts = timeouts or Timeouts()
        self.state = State.CREATING
        self.started = now
        self.total_deadline = now + self.timeouts.total
        self.deadline = self.total_deadline
        self.phone: PhoneInfo | None = None
        self.request: PhoneAuthorization | None = None
        self.phone_approved = False
        self.outcome: Outcome | None = None
        self._psk: bytes | None = psk if psk is not None else secrets.token_bytes(32)
        self._tls: tlspsk.ServerConnection | None = None
        self._sender: Mapping[str, str] = {}

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    # -- dispatch

    def handle(self, event: Event, now: float) -> list[Action]:
        if self.finished:
            return []  # races (a late confirmation, a frame after our close) change nothing
        out: list[Action] = []
        if isinstance(event, TimerFired):
            if now >= self.deadline:
                self._end(out, State.TIMED_OUT, "timeout", f"timed out in {self.state.value}")
            return out
        if isinstance(event, ChannelLost):
            if event.code == 1008 and event.reason in RELAY_TIMEOUT_REASONS:
                self._end(out, State.TIMED_OUT, "relay_timeout", f"relay: {event.reason}")
            elif self.state is State.CREATING:
                self._end(out, State.FAILED, "relay_unavailable",
                          event.detail or "could not open a channel on the relay")
            else:
                self._end(out, State.FAILED, "channel_lost", event.detail or (
                    f"the channel closed ({event.code} {event.reason})".strip()))
            return out
        if isinstance(event, UserDeclined):
            why = "user_cancelled" if self.state is not State.AWAITING_CONFIRMATION \
                else "user_declined"
            self._end(out, State.DECLINED, why, "declined on this device")
            return out
        if isinstance(event, ChannelOpened):
            self._require(State.CREATING, event)
            self._opened(out, event, now)
        elif isinstance(event, FrameReceived):
            if self.state is State.CREATING:
                raise UsageError("a frame before the channel was opened")
            self._frame(out, event, now)
        elif isinstance(event, UserConfirmed):
            self._require(State.AWAITING_CONFIRMATION, event)
            assert self.request is not None
            self._goto(out, State.AUTHORIZING, now + self.timeouts.authorization)
            out.append(StartAuthorization(self.request))
        elif isinstance(event, AuthorizationSucceeded):
            self._require(State.AUTHORIZING, event)
            self._authorized(out, event.result, now)
        elif isinstance(event, AuthorizationFailed):
            self._require(State.AUTHORIZING, event)
            self._end(out, State.FAILED, event.reason, event.message)
        else:  # pragma: no cover - the Event union is closed
            raise UsageError(f"unknown event {event!r}")
        return out

    def _require(self, state: State, event: Event) -> None:
        if self.state is not state:
            raise UsageError(f"{type(event).__name__} in {self.state.value}")

    def _goto(self, out: list[Action], new: State, deadline: float | None = None) -> None:
        out.append(StateChanged(self.state, new))
        self.state = new
        self.deadline = (self.total_deadline if deadline is None
                         else min(deadline, self.total_deadline))

    # -- transitions

    def _opened(self, out: list[Action], event: ChannelOpened, now: float) -> None:
        assert self._psk is not None
        try:
            self._tls = tlspsk.ServerConnection(self._psk, event.channel_id)
        except tlspsk.TLSPSKError as exc:
            self._end(out, State.FAILED, "relay_unavailable", f"unusable channel id: {exc}")
            return
        # The URL first: a UI (and `foxden pair --json`'s first line) leads with it.
        out.append(ShowPairingUrl(pairing_url(self.public_url, event.channel_id, self._psk),
                                  event.channel_id, self.total_deadline))
        self._goto(out, State.WAITING_FOR_PHONE)

    def _frame(self, out: list[Action], event: FrameReceived, now: float) -> None:
        assert self._tls is not None
        if self.state is State.WAITING_FOR_PHONE:
            # The relay builds `sender` once per connection: the first frame's is the phone's.
            self._sender = dict(event.sender)
        try:
            events = self._tls.receive_record(event.record)
        except tlspsk.TLSPSKError as exc:
            wrong_key = isinstance(exc, tlspsk.DecryptError | tlspsk.UnknownPskIdentity) or (
                isinstance(exc, tlspsk.PeerAlert)
                and exc.description == tlspsk.AlertDescription.DECRYPT_ERROR)
            if wrong_key:
                self._end(out, State.FAILED, "wrong_channel_key",
                          "the phone's channel key does not match this QR code")
            else:
                self._end(out, State.FAILED, "tls_error", f"TLS: {exc}")
            return
        finally:
            # Always drain (tlspsk's rule); after an error _end has already drained the
            # alert FPC expects, and dropped the connection.
            if self._tls is not None and (pending := self._tls.data_to_send()):
                out.append(SendRecords(tuple(pending)))
        if self.state is State.WAITING_FOR_PHONE:
            self._goto(out, State.TLS_HANDSHAKE, now + self.timeouts.handshake)
        for ev in events:
            if self.finished:
                break
            if isinstance(ev, tlspsk.HandshakeComplete):
                self._goto(out, State.WAITING_FOR_REQUEST, now + self.timeouts.request)
            elif isinstance(ev, tlspsk.Closed):
                self._end(out, State.DECLINED, "phone_cancelled", "the phone closed the channel")
            elif isinstance(ev, tlspsk.Data):
                self._message(out, ev.data, now)

    def _message(self, out: list[Action], payload: bytes, now: float) -> None:
        try:
            msg = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self._end(out, State.FAILED, "bad_message", "the phone sent a message that is not JSON")
            return
        name = msg.get("message") if isinstance(msg, dict) else None
        data = msg.get("data") if isinstance(msg, dict) else None
        if not isinstance(name, str) or not isinstance(data, dict):
            self._end(out, State.FAILED, "bad_message", "the phone sent a malformed message")
            return
        if self.state is State.WAITING_FOR_REQUEST and name == "pair:supp:request":
            self._request(out, data, now)
        elif name == "pair:supp:authorize" and not self.phone_approved and self.state in (
                State.AWAITING_CONFIRMATION, State.AUTHORIZING, State.SENT_AUTHORIZE):
            self.phone_approved = True
            if self.state is State.SENT_AUTHORIZE:
                self._end(out, State.DONE, "", "the phone is signing in")
            else:
                out.append(PhoneApproved())
        else:
            self._end(out, State.FAILED, "unexpected_message",
                      f"unexpected message {name[:40]!r} in {self.state.value}")

    def _request(self, out: list[Action], data: dict[str, Any], now: float) -> None:
        try:
            request = parse_request(data)
        except RequestRejected as exc:
            self._end(out, State.FAILED, exc.reason, f"refused the phone's request: {exc}")
            return
        self.request = request
        self.phone = PhoneInfo(
            ua=self._sender.get("ua", ""), remote=self._sender.get("remote", ""),
            location=_location(self._sender), client_id=request.client_id,
            client_name=PAIRING_CLIENTS[request.client_id], scopes=request.scope)
        # Desktop answers with its metadata at once, before its user decides (§4.2).
        # DIVERGENCE: desktop also sends displayName and avatar from its profile; we sign in
        # only once our user has confirmed, so there is no profile yet: email + deviceName.
        if not self._send(out, "pair:auth:metadata",
                          {"email": self.email, "deviceName": self.device_name}):
            return
        self._goto(out, State.AWAITING_CONFIRMATION, now + self.timeouts.confirmation)
        out.append(AskConfirmation(self.phone))

    def _authorized(self, out: list[Action], result: AuthorizationResult, now: float) -> None:
        assert self.request is not None
        if result.state != self.request.state:
            self._end(out, State.FAILED, "auth_server_error",
                      "the authorization answer has another state")
            return
        if not self._send(out, "pair:auth:authorize", result.as_message_data()):
            return
        if self.phone_approved:
            self._end(out, State.DONE, "", "the phone is signing in")
        else:
            self._goto(out, State.SENT_AUTHORIZE, now + self.timeouts.phone_confirmation)

    def _send(self, out: list[Action], name: str, data: Mapping[str, Any]) -> bool:
        assert self._tls is not None
        try:
            out.append(SendRecords(tuple(self._tls.send_data(_message(name, data)))))
        except tlspsk.TLSPSKError as exc:
            self._end(out, State.FAILED, "tls_error", f"TLS: {exc}")
            return False
        return True

    def _end(self, out: list[Action], state: State, reason: str, message: str) -> None:
        records: list[bytes] = []
        if self._tls is not None:
            records = self._tls.data_to_send()
            if self._tls.handshake_complete and not self._tls.we_closed:
                records += self._tls.close()
        if records:
            out.append(SendRecords(tuple(records)))
        self._goto(out, state)
        self.deadline = float("inf")
        self.outcome = Outcome(state, reason, message, self.phone)
        self._tls = None
        self._psk = None
        self.request = None
        out.append(CloseChannel())
        out.append(Finished(self.outcome))


# --- the Trio driver -------------------------------------------------------------------------

class ChannelLike(Protocol):
    @property
    def channel_id(self) -> str: ...

    async def send_record(self, record: bytes) -> None: ...

    async def receive(self, timeout: float) -> RelayedFrame: ...

    async def aclose(self) -> None: ...


class GrantLike(Protocol):
    result: AuthorizationResult

    async def wait_redeemed(self, timeout: float) -> bool: ...

    async def release(self) -> None: ...


ChannelOpener = Callable[[], AbstractAsyncContextManager[ChannelLike]]
Authorizer = Callable[[str, str, PhoneAuthorization], Awaitable[GrantLike]]
Confirmer = Callable[[PhoneInfo], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Notice:
    """What the UI is told, one per step.  No secrets, except that ``pairing_url``'s URL
    carries the channel key: it is meant to be shown (as the QR code), never logged."""

    kind: str   # pairing_url, state, phone, phone_approved, signed_in, finished
    data: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"event": self.kind, **self.data}


REDEEM_TIMEOUT = 300.0  # the server's code lifetime (server/oauth/grants.py CODE_TTL_MS)
SEND_TIMEOUT = 10.0     # one frame to the relay; longer means the socket is stuck
HARD_GRACE = 15.0       # past the core's last deadline, the driver stops whatever happens


async def run_pairing(
    *, public_url: str, email: str, password: Secret, open_channel: ChannelOpener,
    authorize: Authorizer, confirm: Confirmer, notify: Callable[[Notice], None],
    timeouts: Timeouts | None = None, device_name: str = "Foxden",
    redeem_timeout: float = REDEEM_TIMEOUT, cancel: trio.Event | None = None,
) -> Outcome:
    """One pairing, start to end; returns how it ended.

    ``confirm(phone)`` asks our user (True = allow); ``notify`` gets every :class:`Notice`;
    setting ``cancel`` declines at any point.  ``password`` is cleared after the one
    authorization attempt (and in any case before this returns); the temporary session is
    destroyed before this returns — after the phone redeemed its code, or at once when the
    pairing did not end in DONE (which also revokes the unused code).
    """
    core = Authority(public_url=public_url, email=email, now=trio.current_time(),
                     device_name=device_name, timeouts=timeouts)
    run = _Run(core, password, authorize, confirm, notify)
    try:
        with trio.move_on_at(core.total_deadline + HARD_GRACE):
            await run.main(open_channel, cancel)
        if not core.finished:  # the hard bound: the channel would not even close in time
            core.handle(TimerFired(), max(trio.current_time(), core.deadline))
        outcome = core.outcome
        assert outcome is not None
        if outcome.ok and run.grant is not None:
            signed_in = await run.grant.wait_redeemed(redeem_timeout)
            outcome = Outcome(outcome.state, outcome.reason, outcome.message, outcome.phone,
                              signed_in)
            notify(Notice("signed_in", {"signed_in": signed_in}))
        notify(Notice("finished", _outcome_json(outcome)))
        return outcome
    finally:
        password.clear()
        if run.grant is not None:
            await run.grant.release()
            run.grant = None


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    out: dict[str, Any] = {"state": outcome.state.value, "reason": outcome.reason,
                           "message": outcome.message}
    if outcome.signed_in is not None:
        out["signed_in"] = outcome.signed_in
    return out


class _Run:
    """The driver's per-pairing state: the inbox all tasks feed, the channel, the grant."""

    def __init__(self, core: Authority, password: Secret, authorize: Authorizer,
                 confirm: Confirmer, notify: Callable[[Notice], None]) -> None:
        self.core = core
        self.password = password
        self.authorize = authorize
        self.confirm = confirm
        self.notify = notify
        self.grant: GrantLike | None = None
        self.channel: ChannelLike | None = None
        self.lost = False
        self.pending: deque[Event] = deque()
        # Bounded: the relay relays at most 64 frames a channel, plus a few local events.
        self.inbox_send, self.inbox = trio.open_memory_channel[Event](128)
        self.tasks: trio.Nursery | None = None

    async def main(self, open_channel: ChannelOpener, cancel: trio.Event | None) -> None:
        async with trio.open_nursery() as watchers:
            connecting = trio.CancelScope()
            if cancel is not None:
                watchers.start_soon(self._watch_cancel, cancel, connecting)
            with connecting:
                try:
                    async with open_channel() as channel, trio.open_nursery() as tasks:
                        self.channel, self.tasks = channel, tasks
                        await self._process(ChannelOpened(channel.channel_id))
                        tasks.start_soon(self._reader, channel)
                        await self._loop()
                        tasks.cancel_scope.cancel()
                except ChannelError as exc:
                    code, reason = (exc.code, exc.reason) if isinstance(exc, ChannelClosed) \
                        else (None, "")
                    await self._process(ChannelLost(code, reason, str(exc)))
            if connecting.cancelled_caught:
                await self._process(UserDeclined())
            watchers.cancel_scope.cancel()

    async def _watch_cancel(self, cancel: trio.Event, connecting: trio.CancelScope) -> None:
        await cancel.wait()
        if self.core.state is State.CREATING:
            connecting.cancel()
        else:
            await self.inbox_send.send(UserDeclined())

    async def _loop(self) -> None:
        while not self.core.finished:
            if self.pending:
                event = self.pending.popleft()
            else:
                with trio.move_on_at(self.core.deadline) as scope:
                    event = await self.inbox.receive()
                if scope.cancelled_caught:
                    event = TimerFired()
            await self._process(event)

    async def _process(self, event: Event) -> None:
        if isinstance(event, ChannelLost):
            self.lost = True  # nothing more can be sent, not even close_notify
        for action in self.core.handle(event, trio.current_time()):
            await self._execute(action)

    async def _execute(self, action: Action) -> None:
        if isinstance(action, SendRecords):
            await self._send(action.records)
        elif isinstance(action, ShowPairingUrl):
            self.notify(Notice("pairing_url", {
                "url": action.url, "channel_id": action.channel_id,
                "expires_in": max(0, round(action.expires_at - trio.current_time()))}))
        elif isinstance(action, StateChanged):
            self.notify(Notice("state", {"state": action.new.value}))
        elif isinstance(action, AskConfirmation):
            self.notify(Notice("phone", action.phone.as_json()))
            assert self.tasks is not None
            self.tasks.start_soon(self._confirm, action.phone)
        elif isinstance(action, PhoneApproved):
            self.notify(Notice("phone_approved", {}))
        elif isinstance(action, StartAuthorization):
            assert self.tasks is not None
            self.tasks.start_soon(self._authorize, action.request)
        # CloseChannel and Finished: the loop ends; leaving open_channel closes the socket.

    async def _send(self, records: tuple[bytes, ...]) -> None:
        if self.channel is None or self.lost:
            return
        for record in records:
            try:
                with trio.fail_after(SEND_TIMEOUT):
                    await self.channel.send_record(record)
            except (ChannelError, trio.TooSlowError) as exc:
                self.lost = True
                code, reason = (exc.code, exc.reason) if isinstance(exc, ChannelClosed) \
                    else (None, "")
                self.pending.append(ChannelLost(code, reason, f"sending failed: {exc}"))
                return

    async def _reader(self, channel: ChannelLike) -> None:
        while True:
            left = self.core.total_deadline + HARD_GRACE - trio.current_time()
            try:
                frame = await channel.receive(timeout=left)
            except trio.TooSlowError:
                return  # the core's own deadline has fired by now
            except ChannelClosed as exc:
                await self.inbox_send.send(ChannelLost(exc.code, exc.reason, str(exc)))
                return
            except ChannelError as exc:
                await self.inbox_send.send(ChannelLost(None, "", str(exc)))
                return
            await self.inbox_send.send(FrameReceived(frame.record, frame.sender))

    async def _confirm(self, phone: PhoneInfo) -> None:
        try:
            allowed = await self.confirm(phone)
        except Exception as exc:  # a broken UI declines rather than hangs
            log.warning("pairing confirmation failed: %s", type(exc).__name__)
            allowed = False
        await self.inbox_send.send(UserConfirmed() if allowed else UserDeclined())

    async def _authorize(self, request: PhoneAuthorization) -> None:
        event: Event
        try:
            grant = await self.authorize(self.core.email, self.password.reveal(), request)
        except IncorrectPassword:
            event = AuthorizationFailed("wrong_password",
                                        f"the password for {self.core.email} is not right")
        except UnknownAccount:
            event = AuthorizationFailed("unknown_account", f"no account {self.core.email}")
        except TooManyAttempts as exc:
            wait = f"; try again in {exc.retry_after} s" if exc.retry_after else ""
            event = AuthorizationFailed("throttled", "too many sign-in attempts" + wait)
        except FxaClientError as exc:
            event = AuthorizationFailed("auth_server_error", str(exc))
        else:
            self.grant = grant
            event = AuthorizationSucceeded(grant.result)
        finally:
            self.password.clear()  # one attempt per pairing: drop it now
        await self.inbox_send.send(event)
