"""The pairing authority's state machine (appliance/pairing/authority.py): every transition
and every rejection, driven with fake events; the phone is our own TLS client
(tlspsk.ClientConnection), so the records are real.  Then the Trio driver with a fake
channel and fake sign-in, timeouts on Trio's MockClock."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.pairing import authority as A
from appliance.pairing import tlspsk
from appliance.pairing.channel import ChannelClosed, ChannelRefused, RelayedFrame
from appliance.pairing.fxaclient import (
    AuthorizationResult,
    FxaClientError,
    IncorrectPassword,
    PhoneAuthorization,
    TooManyAttempts,
    UnknownAccount,
)
from server.crypto import onepw

CH = "AAECAwQFBgcICQoLDA0ODw"
PSK = bytes(range(100, 132))
FENIX = "a2270f727f45f648"
IOS = "1b1a3e44c54fbb58"
OLDSYNC = "https://identity.mozilla.com/apps/oldsync"
SESSION = "https://identity.mozilla.com/tokens/session"
SCOPE = f"profile {OLDSYNC} {SESSION}"
UA = "Mozilla/5.0 (Android 14; Mobile; rv:153.0) Gecko/153.0 Firefox/153.0"
SENDER = {"ua": UA, "remote": "192.168.1.20"}
EMAIL = "alice@example.com"
T = A.Timeouts()


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def phone_jwk() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return b64u(json.dumps(onepw.public_jwk(key.public_key())).encode())


JWK = phone_jwk()


def request_data(**overrides: Any) -> dict[str, Any]:
    data = {"access_type": "offline", "client_id": FENIX, "code_challenge": "c" * 43,
            "code_challenge_method": "S256", "keys_jwk": JWK, "scope": SCOPE,
            "state": "s" * 22}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def msg(name: str, data: Any = None) -> bytes:
    return json.dumps({"message": name, "data": {} if data is None else data}).encode()


def result(state: str = "s" * 22) -> AuthorizationResult:
    return AuthorizationResult("a" * 64, state, "urn:x?code=" + "a" * 64, SCOPE)


class Phone:
    """The supplicant: our TLS client; decrypts what the authority sends."""

    def __init__(self, psk: bytes = PSK, channel_id: str = CH) -> None:
        self.tls = tlspsk.ClientConnection(psk, channel_id)
        self.messages: list[dict[str, Any]] = []
        self.closed = False
        self.alerts: list[tlspsk.TLSPSKError] = []
        self.outbox: list[bytes] = self.tls.data_to_send()

    def take(self, actions: list[A.Action]) -> None:
        for action in actions:
            if isinstance(action, A.SendRecords):
                for rec in action.records:
                    try:
                        events = self.tls.receive_record(rec)
                    except tlspsk.TLSPSKError as exc:
                        self.alerts.append(exc)
                        continue
                    finally:
                        self.outbox += self.tls.data_to_send()
                    for ev in events:
                        if isinstance(ev, tlspsk.Data):
                            self.messages.append(json.loads(ev.data))
                        elif isinstance(ev, tlspsk.Closed):
                            self.closed = True

    def drain(self) -> list[bytes]:
        out, self.outbox = self.outbox, []
        return out

    def send(self, payload: bytes) -> bytes:
        (rec,) = self.tls.send_data(payload)
        return rec

    def names(self) -> list[str]:
        return [m["message"] for m in self.messages]


def feed(auth: A.Authority, phone: Phone, records: list[bytes], now: float = 0.0,
         sender: dict[str, str] | None = None) -> list[A.Action]:
    out: list[A.Action] = []
    for rec in list(records):
        actions = auth.handle(A.FrameReceived(rec, sender if sender is not None else SENDER),
                              now)
        phone.take(actions)
        out += actions
    return out


def of(actions: list[A.Action], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def new(now: float = 0.0, **kw: Any) -> tuple[A.Authority, list[A.Action]]:
    auth = A.Authority(public_url="https://foxden.local/", email=EMAIL, now=now, psk=PSK,
                       device_name="Foxden on box", **kw)
    return auth, auth.handle(A.ChannelOpened(CH), now)


def connected(now: float = 0.0, **kw: Any) -> tuple[A.Authority, Phone]:
    auth, _ = new(now, **kw)
    phone = Phone()
    feed(auth, phone, phone.drain(), now)
    assert auth.state is A.State.TLS_HANDSHAKE
    feed(auth, phone, phone.drain(), now)
    assert auth.state is A.State.WAITING_FOR_REQUEST
    return auth, phone


def requested(now: float = 0.0, data: dict[str, Any] | None = None,
              **kw: Any) -> tuple[A.Authority, Phone, list[A.Action]]:
    auth, phone = connected(now, **kw)
    actions = feed(auth, phone, [phone.send(msg("pair:supp:request", data or request_data()))],
                   now)
    return auth, phone, actions


def confirmed(now: float = 0.0) -> tuple[A.Authority, Phone, list[A.Action]]:
    auth, phone, _ = requested(now)
    actions = auth.handle(A.UserConfirmed(), now)
    return auth, phone, actions


def finished(actions: list[A.Action]) -> A.Outcome:
    (fin,) = of(actions, A.Finished)
    assert of(actions, A.CloseChannel)
    return fin.outcome  # type: ignore[no-any-return]


# --- the happy path and its orderings --------------------------------------------------------

def test_channel_opened_shows_the_pairing_url() -> None:
    auth, actions = new(5.0)
    assert auth.state is A.State.WAITING_FOR_PHONE
    assert of(actions, A.StateChanged) == [
        A.StateChanged(A.State.CREATING, A.State.WAITING_FOR_PHONE)]
    (show,) = of(actions, A.ShowPairingUrl)
    assert show.url == f"https://foxden.local/pair#channel_id={CH}&channel_key={b64u(PSK)}"
    assert len(b64u(PSK)) == 43 and not show.url.endswith("=")
    assert show.channel_id == CH and show.expires_at == 5.0 + T.total
    assert auth.deadline == 5.0 + T.total


def test_a_fresh_psk_per_pairing() -> None:
    one = A.Authority(public_url="https://h", email=EMAIL, now=0)
    two = A.Authority(public_url="https://h", email=EMAIL, now=0)
    urls = [of(a.handle(A.ChannelOpened(CH), 0), A.ShowPairingUrl)[0].url for a in (one, two)]
    assert urls[0] != urls[1]
    key = urls[0].split("channel_key=")[1]
    assert len(base64.urlsafe_b64decode(key + "=")) == 32


def test_handshake_then_request_then_metadata_and_question() -> None:
    auth, _ = new()
    phone = Phone()
    actions = feed(auth, phone, phone.drain())
    assert auth.state is A.State.TLS_HANDSHAKE and auth.deadline == T.handshake
    # ServerHello, ChangeCipherSpec, EncryptedExtensions+Finished, as FPC expects.
    assert [len(a.records) for a in of(actions, A.SendRecords)] == [3]
    actions = feed(auth, phone, phone.drain(), 1.0)
    assert auth.state is A.State.WAITING_FOR_REQUEST and auth.deadline == 1.0 + T.request
    assert not of(actions, A.SendRecords)
    actions = feed(auth, phone, [phone.send(msg("pair:supp:request", request_data()))], 2.0)
    assert auth.state is A.State.AWAITING_CONFIRMATION
    assert auth.deadline == 2.0 + T.confirmation
    assert phone.messages == [{"message": "pair:auth:metadata",
                               "data": {"email": EMAIL, "deviceName": "Foxden on box"}}]
    (ask,) = of(actions, A.AskConfirmation)
    assert ask.phone == A.PhoneInfo(ua=UA, remote="192.168.1.20", client_id=FENIX,
                                    client_name="Firefox for Android",
                                    scopes=("profile", OLDSYNC, SESSION))
    assert ask.phone.device == "Firefox 153 on Android"
    # Metadata goes out before the question (desktop answers before its user decides).
    kinds = [type(a) for a in actions]
    assert kinds.index(A.SendRecords) < kinds.index(A.AskConfirmation)


def test_confirm_authorize_then_phone_approves_is_done() -> None:
    auth, phone, actions = confirmed(3.0)
    assert auth.state is A.State.AUTHORIZING and auth.deadline == 3.0 + T.authorization
    (start,) = of(actions, A.StartAuthorization)
    assert start.request == PhoneAuthorization(FENIX, ("profile", OLDSYNC, SESSION), "s" * 22,
                                               "c" * 43, onepw.parse_keys_jwk(JWK))
    actions = auth.handle(A.AuthorizationSucceeded(result()), 4.0)
    phone.take(actions)
    assert auth.state is A.State.SENT_AUTHORIZE
    assert auth.deadline == 4.0 + T.phone_confirmation
    assert phone.messages[-1] == {"message": "pair:auth:authorize",
                                  "data": result().as_message_data()}
    assert not phone.closed
    actions = feed(auth, phone, [phone.send(msg("pair:supp:authorize"))], 5.0)
    outcome = finished(actions)
    assert outcome == A.Outcome(A.State.DONE, "", "the phone is signing in", auth.phone)
    assert outcome.ok and auth.finished and phone.closed  # close_notify reached the phone
    assert phone.names() == ["pair:auth:metadata", "pair:auth:authorize"]


def test_phone_approves_first_then_authorize_ends_it() -> None:
    auth, phone, _ = requested()
    actions = feed(auth, phone, [phone.send(msg("pair:supp:authorize"))])
    assert of(actions, A.PhoneApproved) and auth.state is A.State.AWAITING_CONFIRMATION
    auth.handle(A.UserConfirmed(), 1)
    actions = auth.handle(A.AuthorizationSucceeded(result()), 2)
    phone.take(actions)
    assert finished(actions).state is A.State.DONE
    assert phone.names() == ["pair:auth:metadata", "pair:auth:authorize"] and phone.closed


def test_phone_approves_while_we_authorize() -> None:
    auth, phone, _ = confirmed()
    actions = feed(auth, phone, [phone.send(msg("pair:supp:authorize"))])
    assert of(actions, A.PhoneApproved) and auth.state is A.State.AUTHORIZING
    actions = auth.handle(A.AuthorizationSucceeded(result()), 1)
    phone.take(actions)
    assert finished(actions).state is A.State.DONE and phone.closed


def test_scope_split_on_plus_and_deduplicated() -> None:
    req = A.parse_request(request_data(scope=f"profile+{OLDSYNC}  profile"))
    assert req.scope == ("profile", OLDSYNC)
    assert A.parse_request(request_data(client_id=IOS, access_type=None,
                                        redirect_uri=A.WEBCHANNEL_REDIRECT)).client_id == IOS


def test_secrets_are_dropped_at_the_end() -> None:
    auth, phone, _ = confirmed()
    auth.handle(A.AuthorizationFailed("wrong_password", "no"), 1)
    assert auth._psk is None and auth._tls is None and auth.request is None


# --- the phone's request: every rejection ----------------------------------------------------

def _padded_jwk() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    raw = json.dumps(onepw.public_jwk(key.public_key())).encode()
    text = base64.urlsafe_b64encode(raw).decode()
    return text if text.endswith("=") else text + "=="  # force a padded form


def _private_jwk() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = onepw.public_jwk(key.public_key())
    jwk["d"] = b64u(key.private_numbers().private_value.to_bytes(32, "big"))
    return b64u(json.dumps(jwk).encode())


def _p384_jwk() -> str:
    return b64u(json.dumps({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}).encode())


def _off_curve_jwk() -> str:
    return b64u(json.dumps({"kty": "EC", "crv": "P-256", "x": b64u(b"\x01" * 32),
                            "y": b64u(b"\x02" * 32)}).encode())


REJECTIONS = [
    ({"client_id": "0123456789abcdef"}, "unknown_client"),
    ({"client_id": A.REFERENCE_BROWSER}, "unknown_client"),
    ({"client_id": "5882386c6d801776"}, "unknown_client"),   # desktop is not a supplicant
    ({"client_id": "A2270F727F45F648"}, "unknown_client"),
    ({"client_id": None}, "unknown_client"),
    ({"client_id": 12}, "unknown_client"),
    ({"redirect_uri": "https://evil.example/cb"}, "bad_redirect"),
    ({"redirect_uri": "urn:ietf:wg:oauth:2.0:oob:pair-auth-webchannel"}, "bad_redirect"),
    ({"scope": f"profile {OLDSYNC} https://identity.mozilla.com/apps/relay"}, "bad_scope"),
    ({"scope": "profile:write"}, "bad_scope"),
    ({"scope": "  "}, "bad_scope"),
    ({"scope": None}, "bad_scope"),
    ({"scope": ["profile"]}, "bad_scope"),
    ({"code_challenge_method": "plain"}, "bad_pkce"),
    ({"code_challenge_method": None}, "bad_pkce"),
    ({"code_challenge": "c" * 42}, "bad_pkce"),
    ({"code_challenge": "c" * 42 + "="}, "bad_pkce"),
    ({"code_challenge": None}, "bad_pkce"),
    ({"state": None}, "bad_state"),
    ({"state": ""}, "bad_state"),
    ({"state": "s" * 513}, "bad_state"),
    ({"state": "has space"}, "bad_state"),
    ({"access_type": "forever"}, "bad_request"),
    ({"keys_jwk": None}, "bad_keys_jwk"),
    ({"keys_jwk": "e30"}, "bad_keys_jwk"),                 # {} is no key
    ({"keys_jwk": _padded_jwk()}, "bad_keys_jwk"),         # desktop: padding "reject"
    ({"keys_jwk": _private_jwk()}, "bad_keys_jwk"),
    ({"keys_jwk": _p384_jwk()}, "bad_keys_jwk"),
    ({"keys_jwk": _off_curve_jwk()}, "bad_keys_jwk"),
    ({"keys_jwk": "!!!"}, "bad_keys_jwk"),
    ({"keys_jwk": "A" * 2000}, "bad_keys_jwk"),
]


@pytest.mark.parametrize(("overrides", "reason"), REJECTIONS)
def test_request_rejected(overrides: dict[str, Any], reason: str) -> None:
    data = request_data()
    data.update(overrides)
    data = {k: v for k, v in data.items() if v is not None}
    auth, phone, actions = requested(data=data)
    outcome = finished(actions)
    assert (outcome.state, outcome.reason) == (A.State.FAILED, reason)
    # Nothing but the close: no metadata, no question.
    assert phone.messages == [] and phone.closed
    assert not of(actions, A.AskConfirmation)


def test_request_data_must_be_an_object() -> None:
    with pytest.raises(A.RequestRejected) as info:
        A.parse_request(["x"])
    assert info.value.reason == "bad_request"


@pytest.mark.parametrize("payload", [
    b"not json", b"\xff\xfe", b"[1, 2]", b'{"message": "pair:supp:request"}',
    b'{"message": 3, "data": {}}', b'{"data": {}}',
])
def test_malformed_messages_fail(payload: bytes) -> None:
    auth, phone = connected()
    outcome = finished(feed(auth, phone, [phone.send(payload)]))
    assert (outcome.state, outcome.reason) == (A.State.FAILED, "bad_message")
    assert phone.closed


@pytest.mark.parametrize("name", ["pair:supp:authorize", "pair:auth:metadata", "hello"])
def test_first_message_must_be_the_request(name: str) -> None:
    auth, phone = connected()
    outcome = finished(feed(auth, phone, [phone.send(msg(name))]))
    assert (outcome.state, outcome.reason) == (A.State.FAILED, "unexpected_message")
    assert phone.messages == [] and phone.closed


@pytest.mark.parametrize("name", ["pair:supp:request", "pair:auth:decline", "whatever"])
@pytest.mark.parametrize("stage", ["awaiting", "authorizing", "sent"])
def test_other_messages_after_the_request_fail(name: str, stage: str) -> None:
    auth, phone, _ = requested()
    if stage != "awaiting":
        auth.handle(A.UserConfirmed(), 0)
    if stage == "sent":
        phone.take(auth.handle(A.AuthorizationSucceeded(result()), 0))
    payload = msg(name, request_data()) if name == "pair:supp:request" else msg(name)
    outcome = finished(feed(auth, phone, [phone.send(payload)]))
    assert (outcome.state, outcome.reason) == (A.State.FAILED, "unexpected_message")


def test_a_repeated_phone_approval_fails() -> None:
    auth, phone, _ = requested()
    feed(auth, phone, [phone.send(msg("pair:supp:authorize"))])
    outcome = finished(feed(auth, phone, [phone.send(msg("pair:supp:authorize"))]))
    assert outcome.reason == "unexpected_message"


# --- TLS failures ------------------------------------------------------------------------------

def test_wrong_channel_key_fails_cleanly_with_an_alert() -> None:
    auth, _ = new()
    phone = Phone(psk=b"\x00" * 32)
    actions = feed(auth, phone, phone.drain())
    outcome = finished(actions)
    assert (outcome.state, outcome.reason) == (A.State.FAILED, "wrong_channel_key")
    # The decrypt_error alert went to the phone (FPC expects one), nothing else.
    (alert,) = phone.alerts
    assert isinstance(alert, tlspsk.PeerAlert)
    assert alert.description == tlspsk.AlertDescription.DECRYPT_ERROR
    assert sum(len(a.records) for a in of(actions, A.SendRecords)) == 1


def test_wrong_channel_id_is_a_wrong_key_too() -> None:
    auth, _ = new()
    phone = Phone(channel_id="B" * 22)
    outcome = finished(feed(auth, phone, phone.drain()))
    assert outcome.reason == "wrong_channel_key"


def test_garbage_record_is_a_tls_error() -> None:
    auth, _ = new()
    phone = Phone()
    outcome = finished(feed(auth, phone, [b"\x16\x03\x03\x00\x01\x00"]))
    assert (outcome.state, outcome.reason) == (A.State.FAILED, "tls_error")


def test_a_decrypt_error_alert_from_the_phone_counts_as_a_wrong_key() -> None:
    auth, _ = new()
    phone = Phone()
    outcome = finished(feed(auth, phone, [bytes([21, 3, 3, 0, 2, 2, 51])]))
    assert outcome.reason == "wrong_channel_key"


def test_tampered_application_record_fails() -> None:
    auth, phone = connected()
    rec = bytearray(phone.send(msg("pair:supp:request", request_data())))
    rec[-1] ^= 1
    actions = feed(auth, phone, [bytes(rec)])
    assert finished(actions).reason == "tls_error"
    assert isinstance(phone.alerts[0], tlspsk.PeerAlert)  # bad_record_mac, no close_notify


# --- declines, closes, lost channels -----------------------------------------------------------

def test_user_declines_at_the_question() -> None:
    auth, phone, _ = requested()
    actions = auth.handle(A.UserDeclined(), 1)
    phone.take(actions)
    outcome = finished(actions)
    assert (outcome.state, outcome.reason) == (A.State.DECLINED, "user_declined")
    assert phone.closed and phone.names() == ["pair:auth:metadata"]
    assert outcome.phone is not None and outcome.phone.remote == "192.168.1.20"


@pytest.mark.parametrize("stage", ["creating", "waiting", "handshake", "request", "authorizing",
                                   "sent"])
def test_user_cancels_anywhere(stage: str) -> None:
    phone = Phone()
    if stage == "creating":
        auth = A.Authority(public_url="https://h", email=EMAIL, now=0)
    elif stage in ("waiting", "handshake"):
        auth, _ = new()
        if stage == "handshake":
            feed(auth, phone, phone.drain())
    elif stage == "request":
        auth, phone = connected()
    else:
        auth, phone, _ = confirmed()
        if stage == "sent":
            phone.take(auth.handle(A.AuthorizationSucceeded(result()), 0))
    actions = auth.handle(A.UserDeclined(), 1)
    phone.take(actions)
    outcome = finished(actions)
    assert (outcome.state, outcome.reason) == (A.State.DECLINED, "user_cancelled")
    # close_notify only once the handshake is complete.
    assert phone.closed is (stage in ("request", "authorizing", "sent"))


@pytest.mark.parametrize("stage", ["request", "awaiting", "authorizing", "sent"])
def test_phone_closes_first_is_a_decline(stage: str) -> None:
    if stage == "request":
        auth, phone = connected()
    else:
        auth, phone, _ = requested()
        if stage != "awaiting":
            auth.handle(A.UserConfirmed(), 0)
        if stage == "sent":
            phone.take(auth.handle(A.AuthorizationSucceeded(result()), 0))
    (close,) = phone.tls.close()
    outcome = finished(feed(auth, phone, [close]))
    assert (outcome.state, outcome.reason) == (A.State.DECLINED, "phone_cancelled")
    assert phone.closed  # we still answer with our close_notify


@pytest.mark.parametrize("stage", ["waiting", "request", "awaiting", "authorizing", "sent"])
def test_channel_lost(stage: str) -> None:
    if stage == "waiting":
        auth, _ = new()
    elif stage == "request":
        auth, _ = connected()
    else:
        auth, phone, _ = requested()
        if stage != "awaiting":
            auth.handle(A.UserConfirmed(), 0)
        if stage == "sent":
            auth.handle(A.AuthorizationSucceeded(result()), 0)
    outcome = finished(auth.handle(A.ChannelLost(1006, "", "gone"), 1))
    assert (outcome.state, outcome.reason, outcome.message) == (A.State.FAILED, "channel_lost",
                                                                 "gone")


@pytest.mark.parametrize("reason", ["idle timeout", "channel expired"])
def test_relay_timeouts_are_timeouts(reason: str) -> None:
    auth, _, _ = requested()
    outcome = finished(auth.handle(A.ChannelLost(1008, reason), 1))
    assert (outcome.state, outcome.reason) == (A.State.TIMED_OUT, "relay_timeout")


def test_relay_full_or_broken_is_a_failure() -> None:
    auth, _ = new()
    assert finished(auth.handle(A.ChannelLost(1008, "channel full"), 1)).reason == "channel_lost"
    creating = A.Authority(public_url="https://h", email=EMAIL, now=0)
    outcome = finished(creating.handle(A.ChannelLost(None, "", "HTTP 429"), 0))
    assert (outcome.state, outcome.reason) == (A.State.FAILED, "relay_unavailable")


# --- authorization results -----------------------------------------------------------------

@pytest.mark.parametrize("reason", ["wrong_password", "unknown_account", "throttled",
                                    "auth_server_error"])
def test_authorization_failure_sends_nothing_secret(reason: str) -> None:
    auth, phone, _ = confirmed()
    actions = auth.handle(A.AuthorizationFailed(reason, "nope"), 1)
    phone.take(actions)
    outcome = finished(actions)
    assert (outcome.state, outcome.reason, outcome.message) == (A.State.FAILED, reason, "nope")
    assert phone.names() == ["pair:auth:metadata"] and phone.closed


def test_authorization_with_another_state_is_not_relayed() -> None:
    auth, phone, _ = confirmed()
    actions = auth.handle(A.AuthorizationSucceeded(result(state="t" * 22)), 1)
    phone.take(actions)
    assert finished(actions).reason == "auth_server_error"
    assert phone.names() == ["pair:auth:metadata"]


# --- timers --------------------------------------------------------------------------------

def _at(stage: str, now: float) -> A.Authority:
    if stage == "waiting_for_phone":
        return new(now)[0]
    if stage == "tls_handshake":
        auth, _ = new(now)
        phone = Phone()
        feed(auth, phone, phone.drain(), now)
        return auth
    if stage == "waiting_for_request":
        return connected(now)[0]
    auth, phone, _ = requested(now)
    if stage in ("authorizing", "sent_authorize"):
        auth.handle(A.UserConfirmed(), now)
    if stage == "sent_authorize":
        auth.handle(A.AuthorizationSucceeded(result()), now)
    return auth


@pytest.mark.parametrize(("stage", "limit"), [
    ("waiting_for_phone", T.total), ("tls_handshake", T.handshake),
    ("waiting_for_request", T.request), ("awaiting_confirmation", T.confirmation),
    ("authorizing", T.authorization), ("sent_authorize", T.phone_confirmation),
])
def test_each_phase_times_out(stage: str, limit: float) -> None:
    auth = _at(stage, 100.0)
    assert auth.state.value == stage and auth.deadline == 100.0 + limit
    assert auth.handle(A.TimerFired(), 100.0 + limit - 0.001) == []  # early: ignored
    actions = auth.handle(A.TimerFired(), 100.0 + limit)
    outcome = finished(actions)
    assert (outcome.state, outcome.reason) == (A.State.TIMED_OUT, "timeout")
    after_handshake = stage not in ("waiting_for_phone", "tls_handshake")
    assert bool(of(actions, A.SendRecords)) is after_handshake  # close_notify


def test_phase_deadlines_never_pass_the_total() -> None:
    auth, _ = new(0.0, timeouts=A.Timeouts(total=100, confirmation=240))
    phone = Phone()
    feed(auth, phone, phone.drain(), 10)
    feed(auth, phone, phone.drain(), 10)
    feed(auth, phone, [phone.send(msg("pair:supp:request", request_data()))], 20)
    assert auth.state is A.State.AWAITING_CONFIRMATION and auth.deadline == 100


def test_timeouts_must_fit_the_relay_lifetime() -> None:
    with pytest.raises(ValueError):
        A.Timeouts(total=900)
    with pytest.raises(ValueError):
        A.Timeouts(handshake=0)
    assert A.Timeouts(total=870).total == 870


# --- terminal states and driver misuse ---------------------------------------------------------

def test_terminal_states_ignore_everything() -> None:
    auth, phone, _ = requested()
    auth.handle(A.UserDeclined(), 0)
    for event in (A.UserConfirmed(), A.UserDeclined(), A.TimerFired(), A.ChannelLost(),
                  A.AuthorizationSucceeded(result()), A.FrameReceived(b"x"),
                  A.ChannelOpened(CH)):
        assert auth.handle(event, 10_000) == []
    assert auth.state is A.State.DECLINED


@pytest.mark.parametrize("event", [A.UserConfirmed(), A.AuthorizationSucceeded(result()),
                                   A.AuthorizationFailed("x", "y"), A.ChannelOpened(CH)])
def test_events_out_of_place_are_usage_errors(event: A.Event) -> None:
    auth, _ = new()
    with pytest.raises(A.UsageError):
        auth.handle(event, 0)
    assert auth.state is A.State.WAITING_FOR_PHONE


def test_frame_before_the_channel_is_a_usage_error() -> None:
    auth = A.Authority(public_url="https://h", email=EMAIL, now=0)
    with pytest.raises(A.UsageError):
        auth.handle(A.FrameReceived(b"x"), 0)


def test_sender_comes_from_the_first_frame_and_may_carry_a_location() -> None:
    auth, _ = new()
    phone = Phone()
    feed(auth, phone, phone.drain(), sender={"ua": UA, "remote": "10.0.0.2", "city": "Köln",
                                            "country": "Germany"})
    feed(auth, phone, phone.drain(), sender={"ua": "other", "remote": "10.0.0.3"})
    feed(auth, phone, [phone.send(msg("pair:supp:request", request_data()))], sender={})
    assert auth.phone is not None
    assert (auth.phone.remote, auth.phone.ua, auth.phone.location) == (
        "10.0.0.2", UA, "Köln, Germany")
    assert auth.phone.as_json()["location"] == "Köln, Germany"


@pytest.mark.parametrize(("ua", "text"), [
    (UA, "Firefox 153 on Android"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) FxiOS/153.0 Mobile",
     "Firefox 153 on iOS"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0",
     "Firefox 153 on Linux"),
    ("curl/8", ""),
])
def test_describe_user_agent(ua: str, text: str) -> None:
    assert A.describe_user_agent(ua) == text


def test_secret_and_result_reprs_hide_values() -> None:
    s = A.Secret("hunter22")
    assert "hunter22" not in repr(s) and s.reveal() == "hunter22"
    s.clear()
    assert s.cleared
    with pytest.raises(ValueError):
        s.reveal()
    assert "a" * 64 not in repr(result())


# --- the Trio driver -----------------------------------------------------------------------

class FakeChannel:
    """Our end of a relay; the test's phone task holds the other."""

    def __init__(self) -> None:
        self.to_phone_send, self.to_phone = trio.open_memory_channel[Any](100)
        self.to_auth_send, self.to_auth = trio.open_memory_channel[Any](100)
        self.closed = False
        self.channel_id = CH

    async def send_record(self, record: bytes) -> None:
        if self.closed:
            raise ChannelClosed(1000, "")
        await self.to_phone_send.send(record)

    async def receive(self, timeout: float) -> RelayedFrame:
        with trio.fail_after(max(timeout, 0)):
            item = await self.to_auth.receive()
        if isinstance(item, Exception):
            raise item
        return RelayedFrame(item, SENDER)

    async def aclose(self) -> None:
        self.closed = True
        await self.to_phone_send.aclose()  # the phone's reads end, as a socket would


class FakeGrant:
    def __init__(self, res: AuthorizationResult, redeemed: bool = True) -> None:
        self.result = res
        self.redeemed = redeemed
        self.waited: list[float] = []
        self.released = 0

    async def wait_redeemed(self, timeout: float) -> bool:
        self.waited.append(timeout)
        return self.redeemed

    async def release(self) -> None:
        self.released += 1


class Harness:
    def __init__(self, *, confirm: bool | None = True, error: Exception | None = None,
                 redeemed: bool = True, channel_error: Exception | None = None,
                 hang_open: bool = False) -> None:
        self.channel = FakeChannel()
        self.notices: list[A.Notice] = []
        self.asked: list[A.PhoneInfo] = []
        self.calls: list[tuple[str, str, PhoneAuthorization]] = []
        self.grant: FakeGrant | None = None
        self.confirm_answer = confirm
        self.error = error
        self.redeemed = redeemed
        self.channel_error = channel_error
        self.hang_open = hang_open
        self.password = A.Secret("correct horse")
        self.url: str | None = None
        self.url_shown = trio.Event()

    def notify(self, notice: A.Notice) -> None:
        self.notices.append(notice)
        if notice.kind == "pairing_url":
            self.url = notice.data["url"]
            self.url_shown.set()

    def psk(self) -> bytes:
        assert self.url is not None
        key = self.url.split("channel_key=")[1]
        return base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))

    @asynccontextmanager
    async def open_channel(self) -> AsyncIterator[FakeChannel]:
        if self.hang_open:
            await trio.sleep_forever()
        if self.channel_error is not None:
            raise self.channel_error
        try:
            yield self.channel
        finally:
            await self.channel.aclose()

    async def authorize(self, email: str, password: str,
                        req: PhoneAuthorization) -> FakeGrant:
        self.calls.append((email, password, req))
        if self.error is not None:
            raise self.error
        self.grant = FakeGrant(AuthorizationResult("b" * 64, req.state, "urn:r", SCOPE),
                               self.redeemed)
        return self.grant

    async def confirm(self, phone: A.PhoneInfo) -> bool:
        self.asked.append(phone)
        if self.confirm_answer is None:
            await trio.sleep_forever()
        return bool(self.confirm_answer)

    async def run(self, **kw: Any) -> A.Outcome:
        return await A.run_pairing(
            public_url="https://foxden.local", email=EMAIL, password=self.password,
            open_channel=self.open_channel, authorize=self.authorize, confirm=self.confirm,
            notify=self.notify, **kw)

    def kinds(self) -> list[str]:
        return [n.kind if n.kind != "state" else n.data["state"] for n in self.notices]


async def phone_task(h: Harness, *, approve: bool = True, approve_first: bool = False,
                     psk: bytes | None = None, then: str = "") -> Phone:
    """A supplicant behind the fake relay: scans the URL, handshake, request, approval."""
    await h.url_shown.wait()
    real = h.psk()
    phone = Phone(psk=psk or real)

    async def send(rec: bytes) -> None:
        await h.channel.to_auth_send.send(rec)

    async def pump_until(pred: Any) -> None:
        while not pred():
            try:
                rec = await h.channel.to_phone.receive()
            except trio.EndOfChannel:
                return
            phone.take([A.SendRecords((rec,))])
            for out in phone.outbox:
                await send(out)
            phone.outbox = []

    for rec in phone.outbox:
        await send(rec)
    phone.outbox = []
    if psk is not None and psk != real:
        await pump_until(lambda: phone.alerts)
        return phone
    await pump_until(lambda: phone.tls.handshake_complete)
    await send(phone.send(msg("pair:supp:request", request_data())))
    await pump_until(lambda: "pair:auth:metadata" in phone.names())
    if approve and approve_first:
        await send(phone.send(msg("pair:supp:authorize")))
    if then == "close":
        await send(phone.tls.close()[0])
    elif then == "drop":
        await h.channel.to_auth_send.send(ChannelClosed(1006, "", "the socket dropped"))
    if then:
        await pump_until(lambda: phone.closed)
        return phone
    await pump_until(lambda: phone.closed or "pair:auth:authorize" in phone.names())
    if approve and not approve_first:
        await send(phone.send(msg("pair:supp:authorize")))
    await pump_until(lambda: phone.closed)
    return phone


async def run_with_phone(h: Harness, **phone_kw: Any) -> tuple[A.Outcome, Phone]:
    box: dict[str, Any] = {}

    async def go_phone() -> None:
        box["phone"] = await phone_task(h, **phone_kw)

    async with trio.open_nursery() as n:
        n.start_soon(go_phone)
        box["outcome"] = await h.run()
    return box["outcome"], box["phone"]


@pytest.mark.parametrize("approve_first", [False, True])
async def test_driver_happy_path(approve_first: bool) -> None:
    h = Harness()
    outcome, phone = await run_with_phone(h, approve_first=approve_first)
    assert outcome.state is A.State.DONE and outcome.signed_in is True
    assert phone.names() == ["pair:auth:metadata", "pair:auth:authorize"]
    assert phone.messages[1]["data"]["code"] == "b" * 64 and phone.closed
    (email, password, req) = h.calls[0]
    assert (email, password, req.client_id, req.state) == (EMAIL, "correct horse", FENIX,
                                                           "s" * 22)
    assert h.asked[0].remote == "192.168.1.20"
    assert h.grant is not None and h.grant.released == 1 and h.grant.waited == [300.0]
    assert h.password.cleared and h.channel.closed
    assert h.notices[0].kind == "pairing_url" and "channel_key=" in h.notices[0].data["url"]
    assert h.notices[-1].as_json() == {"event": "finished", "state": "done", "reason": "",
                                       "message": "the phone is signing in", "signed_in": True}
    expected = ["pairing_url", "waiting_for_phone", "tls_handshake", "waiting_for_request",
                "awaiting_confirmation", "phone", "authorizing"]
    expected += (["done"] if approve_first else ["sent_authorize", "done"])
    assert [k for k in h.kinds() if k not in ("phone_approved", "signed_in", "finished")] \
        == expected
    # No notice carries the code or the password.
    dumped = json.dumps([n.as_json() for n in h.notices])
    assert "b" * 64 not in dumped and "correct horse" not in dumped


async def test_driver_not_redeemed_reports_it() -> None:
    h = Harness(redeemed=False)
    outcome, _ = await run_with_phone(h)
    assert outcome.state is A.State.DONE and outcome.signed_in is False
    assert h.grant is not None and h.grant.released == 1


async def test_driver_decline() -> None:
    h = Harness(confirm=False)
    outcome, phone = await run_with_phone(h, approve=False)
    assert (outcome.state, outcome.reason) == (A.State.DECLINED, "user_declined")
    assert h.calls == [] and h.password.cleared and phone.closed


@pytest.mark.parametrize(("error", "reason"), [
    (IncorrectPassword(400, 103, "incorrect password"), "wrong_password"),
    (UnknownAccount(400, 102, "unknown account"), "unknown_account"),
    (TooManyAttempts(429, 114, "too many", 30), "throttled"),
    (FxaClientError("cannot reach the auth server"), "auth_server_error"),
])
async def test_driver_authorization_errors(error: Exception, reason: str) -> None:
    h = Harness(error=error)
    outcome, phone = await run_with_phone(h, approve=False)
    assert (outcome.state, outcome.reason) == (A.State.FAILED, reason)
    assert phone.names() == ["pair:auth:metadata"] and phone.closed
    assert h.password.cleared
    assert "correct horse" not in outcome.message


async def test_driver_wrong_psk() -> None:
    h = Harness()
    outcome, phone = await run_with_phone(h, psk=b"\x01" * 32)
    assert (outcome.state, outcome.reason) == (A.State.FAILED, "wrong_channel_key")
    assert h.asked == [] and h.calls == []


async def test_driver_phone_closes() -> None:
    h = Harness(confirm=None)
    outcome, _ = await run_with_phone(h, then="close")
    assert (outcome.state, outcome.reason) == (A.State.DECLINED, "phone_cancelled")


async def test_driver_channel_drops() -> None:
    h = Harness(confirm=None)
    box: dict[str, Any] = {}

    async def go_phone() -> None:
        box["phone"] = await phone_task(h, then="drop")

    with trio.move_on_after(5):
        async with trio.open_nursery() as n:
            n.start_soon(go_phone)
            box["outcome"] = await h.run()
            n.cancel_scope.cancel()  # the phone never sees a close: the socket "dropped"
    outcome = box["outcome"]
    assert (outcome.state, outcome.reason) == (A.State.FAILED, "channel_lost")


async def test_driver_relay_refuses() -> None:
    h = Harness(channel_error=ChannelRefused(429, 30))
    outcome = await h.run()
    assert (outcome.state, outcome.reason) == (A.State.FAILED, "relay_unavailable")
    assert "429" in outcome.message and h.password.cleared


async def test_driver_times_out_waiting_for_the_phone(autojump_clock: trio.testing.MockClock
                                                      ) -> None:
    h = Harness()
    start = trio.current_time()
    outcome = await h.run(timeouts=A.Timeouts(total=120))
    assert (outcome.state, outcome.reason) == (A.State.TIMED_OUT, "timeout")
    assert trio.current_time() - start == pytest.approx(120)
    assert h.password.cleared and h.channel.closed


async def test_driver_times_out_at_the_question(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness(confirm=None)  # our user never answers
    start = trio.current_time()
    outcome, phone = await run_with_phone(h, approve=False)
    assert (outcome.state, outcome.reason) == (A.State.TIMED_OUT, "timeout")
    assert trio.current_time() - start == pytest.approx(T.confirmation)
    assert phone.closed and h.calls == []


async def test_driver_times_out_waiting_for_the_phone_approval(
        autojump_clock: trio.testing.MockClock) -> None:
    h = Harness()
    outcome, phone = await run_with_phone(h, approve=False)
    assert (outcome.state, outcome.reason) == (A.State.TIMED_OUT, "timeout")
    # The code went out, the phone never approved: the session (and so the code) goes now.
    assert h.grant is not None and h.grant.released == 1 and h.grant.waited == []
    assert phone.closed


async def test_driver_cancel_while_connecting(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness(hang_open=True)
    cancel = trio.Event()
    async with trio.open_nursery() as n:
        n.start_soon(lambda: _set_later(cancel, 3))
        outcome = await h.run(cancel=cancel)
    assert (outcome.state, outcome.reason) == (A.State.DECLINED, "user_cancelled")


async def test_driver_cancel_while_waiting(autojump_clock: trio.testing.MockClock) -> None:
    h = Harness()
    cancel = trio.Event()
    async with trio.open_nursery() as n:
        n.start_soon(lambda: _set_later(cancel, 30))
        outcome = await h.run(cancel=cancel)
    assert (outcome.state, outcome.reason) == (A.State.DECLINED, "user_cancelled")
    assert trio.current_time() < 60


async def _set_later(event: trio.Event, delay: float) -> None:
    await trio.sleep(delay)
    event.set()


async def test_driver_releases_the_grant_when_cancelled_from_outside() -> None:
    # The code went out, then whoever runs the pairing cancels it (Ctrl-C, the tray quits).
    h = Harness()
    with trio.move_on_after(1) as scope:
        async with trio.open_nursery() as n:
            n.start_soon(functools.partial(phone_task, h, approve=False))
            await h.run()
    assert scope.cancelled_caught
    assert h.grant is not None and h.grant.released == 1 and h.grant.waited == []
    assert h.password.cleared
