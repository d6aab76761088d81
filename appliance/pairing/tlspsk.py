"""Sans-IO TLS 1.3 external-PSK channel of Firefox QR pairing (the fxa-pairing-channel subset).

Wire rules: docs pairing.md §3, checked against mozilla/fxa-pairing-channel (FPC) ``src/``.
Only ``TLS_AES_128_GCM_SHA256``, ``psk_ke`` (no (EC)DHE), one PSK = the 32-byte channel key,
PSK identity = UTF-8 of the channel id. No sockets here: the caller moves records, one per
relay frame (FPC neither splits nor joins records, and never fragments handshake messages).

Roles (FPC ``src/index.js``): the party that *creates* the channel (the authority) is the
TLS **server** (:class:`ServerConnection`); the party that *joins* (the phone's supplicant
page) is the TLS **client** (:class:`ClientConnection`).

API, h11 style::

    conn = ServerConnection(psk, channel_id)          # or ClientConnection(...)
    events = conn.receive_record(record)              # -> [HandshakeComplete | Data | Closed]
    records = conn.data_to_send()                     # records produced by the last calls
    records = conn.send_data(b'{"message": ...}')     # one application_data record (+ pending)
    records = conn.close()                            # close_notify (+ pending)

A client queues its ClientHello at construction; fetch it with ``data_to_send()``. Always
drain ``data_to_send()`` after ``receive_record`` — also when it raised: a fatal alert for
the peer is queued there, as FPC sends one.

States (``conn.state``) and allowed transitions::

    client: CLIENT_WAIT_SH --ServerHello--> CLIENT_WAIT_EE --EncryptedExtensions-->
            CLIENT_WAIT_FINISHED --server Finished (we answer with ours)--> CONNECTED
    server: SERVER_START --ClientHello (binder ok; we send SH, CCS, EE+Finished)-->
            SERVER_WAIT_FINISHED --client Finished--> CONNECTED
    any state --TLSAlertError raised, or peer's fatal alert (PeerAlert)--> ERROR (terminal)

One ChangeCipherSpec ``01`` is tolerated (and ignored) in CLIENT_WAIT_EE and
SERVER_WAIT_FINISHED only. A client in CONNECTED accepts and ignores NewSessionTicket.
Application data flows only in CONNECTED; ``HandshakeComplete`` marks the entry.

Closing is per direction, as in FPC: ``close()`` sends close_notify and ends our sending
(``we_closed``); the peer's close_notify yields ``Closed`` and ends our receiving
(``peer_closed``); each side may still use the other direction. The channel has ended
(``conn.ended``) when both directions are closed or the state is ERROR. Calls on an ended
direction raise :class:`ConnectionClosedError` and change nothing.

Errors, all under :class:`TLSPSKError`:

* :class:`TLSAlertError` subclasses — the peer's bytes broke the protocol; the state becomes
  ERROR and an alert with ``.description`` is queued for the peer. A wrong PSK shows as
  :class:`DecryptError` on the side that checks a MAC (server: binder; client: server
  Finished) or :class:`BadRecordMac` when a record does not decrypt (also tampered, replayed,
  reordered records); a wrong channel id as :class:`UnknownPskIdentity`.
* :class:`PeerAlert` — the peer sent a fatal alert (e.g. ``DECRYPT_ERROR`` = it found our PSK
  wrong); state ERROR, nothing is sent back (DIVERGENCE: FPC echoes the alert; the peer has
  already given up, RFC 8446 §6.2 says close without replying).
* :class:`LocalProtocolError` — our own misuse (data before the handshake completes, more than
  2^14 bytes in one record); nothing changes.
* :class:`ConnectionClosedError` — see above.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

__all__ = [
    "AlertDescription", "BadRecordMac", "ClientConnection", "Closed", "Connection",
    "ConnectionClosedError", "Data", "DecodeError", "DecryptError", "Event", "HandshakeComplete",
    "HandshakeFailure", "IllegalParameter", "InternalError", "KeySchedule", "LocalProtocolError",
    "MAX_PLAINTEXT", "MissingExtension", "PeerAlert", "ProtocolVersion", "RecordOverflow",
    "ServerConnection", "State", "TLSAlertError", "TLSPSKError", "UnexpectedMessage",
    "UnknownPskIdentity", "UnsupportedExtension", "hkdf_expand_label",
]

# Record content types and handshake message types (RFC 8446 §5.1, §4).
CT_CHANGE_CIPHER_SPEC, CT_ALERT, CT_HANDSHAKE, CT_APPLICATION_DATA = 20, 21, 22, 23
HT_CLIENT_HELLO, HT_SERVER_HELLO, HT_NEW_SESSION_TICKET = 1, 2, 4
HT_ENCRYPTED_EXTENSIONS, HT_FINISHED = 8, 20
EXT_PRE_SHARED_KEY, EXT_SUPPORTED_VERSIONS, EXT_PSK_KEY_EXCHANGE_MODES = 41, 43, 45
VERSION_TLS_1_0, VERSION_TLS_1_2, VERSION_TLS_1_3 = 0x0301, 0x0303, 0x0304
TLS_AES_128_GCM_SHA256 = 0x1301
PSK_MODE_KE = 0

HASH_LEN, KEY_LEN, IV_LEN, TAG_LEN = 32, 16, 12, 16
MAX_PLAINTEXT = 2**14  # FPC refuses to send more and does not fragment
MAX_CIPHERTEXT = 2**14 + 256
MAX_SEQUENCE = 2**24  # FPC's cap per key, far below the AES-GCM limits
ZEROS = bytes(HASH_LEN)
CCS_RECORD = bytes([CT_CHANGE_CIPHER_SPEC, 3, 3, 0, 1, 1])


class AlertDescription(enum.IntEnum):
    CLOSE_NOTIFY = 0
    UNEXPECTED_MESSAGE = 10
    BAD_RECORD_MAC = 20
    RECORD_OVERFLOW = 22
    HANDSHAKE_FAILURE = 40
    ILLEGAL_PARAMETER = 47
    DECODE_ERROR = 50
    DECRYPT_ERROR = 51
    PROTOCOL_VERSION = 70
    INTERNAL_ERROR = 80
    MISSING_EXTENSION = 109
    UNSUPPORTED_EXTENSION = 110
    UNKNOWN_PSK_IDENTITY = 115


def _describe(code: int) -> str:
    try:
        return f"{AlertDescription(code).name} ({code})"
    except ValueError:
        return f"UNKNOWN ({code})"


# --- errors -------------------------------------------------------------------------------


class TLSPSKError(Exception):
    """Base of every error this module raises."""


class LocalProtocolError(TLSPSKError):
    """The caller misused the connection; its state is unchanged."""


class ConnectionClosedError(TLSPSKError):
    """The direction used has ended (close_notify sent/received) or the connection failed."""


class PeerAlert(TLSPSKError):
    """The peer sent a fatal alert; the connection is in ERROR."""

    def __init__(self, description: int) -> None:
        super().__init__(f"peer sent fatal alert {_describe(description)}")
        self.description = description


class TLSAlertError(TLSPSKError):
    """The peer broke the protocol; the connection is in ERROR, an alert is queued for it."""

    description: AlertDescription = AlertDescription.INTERNAL_ERROR

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{self.description.name}: {detail}" if detail else self.description.name)


class UnexpectedMessage(TLSAlertError):
    """A message or record that is not allowed in the current state (out of order)."""

    description = AlertDescription.UNEXPECTED_MESSAGE


class BadRecordMac(TLSAlertError):
    """A record failed AEAD decryption: tampered, replayed, reordered, or wrong keys/PSK."""

    description = AlertDescription.BAD_RECORD_MAC


class RecordOverflow(TLSAlertError):
    description = AlertDescription.RECORD_OVERFLOW


class HandshakeFailure(TLSAlertError):
    description = AlertDescription.HANDSHAKE_FAILURE


class IllegalParameter(TLSAlertError):
    description = AlertDescription.ILLEGAL_PARAMETER


class DecodeError(TLSAlertError):
    """A malformed, truncated or oversized record or message."""

    description = AlertDescription.DECODE_ERROR


class DecryptError(TLSAlertError):
    """A PSK binder or Finished MAC did not verify: the peers do not share the PSK."""

    description = AlertDescription.DECRYPT_ERROR


class ProtocolVersion(TLSAlertError):
    description = AlertDescription.PROTOCOL_VERSION


class InternalError(TLSAlertError):
    description = AlertDescription.INTERNAL_ERROR


class MissingExtension(TLSAlertError):
    description = AlertDescription.MISSING_EXTENSION


class UnsupportedExtension(TLSAlertError):
    description = AlertDescription.UNSUPPORTED_EXTENSION


class UnknownPskIdentity(TLSAlertError):
    """The ClientHello does not offer our PSK identity (another channel id)."""

    description = AlertDescription.UNKNOWN_PSK_IDENTITY


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The handshake finished: application data may flow both ways."""


@dataclass(frozen=True, slots=True)
class Data:
    """One decrypted application_data record (in pairing: one UTF-8 JSON message)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer sent close_notify: it will send nothing more. We may still send."""


Event = HandshakeComplete | Data | Closed


class State(enum.Enum):
    CLIENT_WAIT_SH = "CLIENT_WAIT_SH"
    CLIENT_WAIT_EE = "CLIENT_WAIT_EE"
    CLIENT_WAIT_FINISHED = "CLIENT_WAIT_FINISHED"
    SERVER_START = "SERVER_START"
    SERVER_WAIT_FINISHED = "SERVER_WAIT_FINISHED"
    CONNECTED = "CONNECTED"
    ERROR = "ERROR"


# --- crypto ---------------------------------------------------------------------------------


def _sha256(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize()


def _hmac(key: bytes, msg: bytes) -> bytes:
    h = HMAC(key, hashes.SHA256())
    h.update(msg)
    return h.finalize()


def _hmac_verify(key: bytes, msg: bytes, mac: bytes) -> None:
    h = HMAC(key, hashes.SHA256())
    h.update(msg)
    try:
        h.verify(mac)  # constant time
    except InvalidSignature:
        raise DecryptError("MAC does not verify (wrong PSK?)") from None


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return _hmac(salt, ikm)  # RFC 5869 §2.2


def hkdf_expand_label(secret: bytes, label: str, context: bytes, length: int) -> bytes:
    """RFC 8446 §7.1: HKDF-Expand(secret, u16 length ‖ <"tls13 " + label> ‖ <context>)."""
    full = b"tls13 " + label.encode("ascii")
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


class KeySchedule:
    """RFC 8446 §7.1 with a PSK and no (EC)DHE, staged like FPC ``keyschedule.js``.

    ``add_psk`` → ``ext_binder_key``; ``add_ecdhe`` → handshake traffic secrets (transcript so
    far = CH‖SH); ``finalize`` → application traffic secrets (transcript = CH‖…‖server Finished).
    """

    def __init__(self) -> None:
        self.transcript = bytearray()
        self._stage = 0
        self._secret = b""
        self.ext_binder_key: bytes | None = None
        self.client_handshake_traffic_secret: bytes | None = None
        self.server_handshake_traffic_secret: bytes | None = None
        self.client_application_traffic_secret: bytes | None = None
        self.server_application_traffic_secret: bytes | None = None

    def _next_stage(self, expected: int) -> None:
        if self._stage != expected:
            raise InternalError("key schedule used out of order")
        self._stage += 1

    def derive_secret(self, label: str, messages: bytes | None = None) -> bytes:
        data = bytes(self.transcript) if messages is None else messages
        return hkdf_expand_label(self._secret, label, _sha256(data), HASH_LEN)

    def add_psk(self, psk: bytes) -> None:
        self._next_stage(0)
        self._secret = hkdf_extract(ZEROS, psk)
        self.ext_binder_key = self.derive_secret("ext binder", b"")
        self._secret = self.derive_secret("derived", b"")

    def add_ecdhe(self) -> None:
        self._next_stage(1)  # psk_ke: the (EC)DHE input is 32 zero bytes
        self.ext_binder_key = None
        self._secret = hkdf_extract(self._secret, ZEROS)
        self.client_handshake_traffic_secret = self.derive_secret("c hs traffic")
        self.server_handshake_traffic_secret = self.derive_secret("s hs traffic")
        self._secret = self.derive_secret("derived", b"")

    def finalize(self) -> None:
        self._next_stage(2)
        self.client_handshake_traffic_secret = self.server_handshake_traffic_secret = None
        self._secret = hkdf_extract(self._secret, ZEROS)
        self.client_application_traffic_secret = self.derive_secret("c ap traffic")
        self.server_application_traffic_secret = self.derive_secret("s ap traffic")
        self._secret = b""

    @staticmethod
    def finished_mac(base_key: bytes, transcript: bytes) -> bytes:
        finished_key = hkdf_expand_label(base_key, "finished", b"", HASH_LEN)
        return _hmac(finished_key, _sha256(transcript))

    @staticmethod
    def verify_finished_mac(base_key: bytes, transcript: bytes, mac: bytes) -> None:
        finished_key = hkdf_expand_label(base_key, "finished", b"", HASH_LEN)
        _hmac_verify(finished_key, _sha256(transcript), mac)


class _CipherState:
    """One direction's AEAD key, IV and sequence number (RFC 8446 §5.3)."""

    def __init__(self, traffic_secret: bytes) -> None:
        self._aead = AESGCM(hkdf_expand_label(traffic_secret, "key", b"", KEY_LEN))
        self._iv = int.from_bytes(hkdf_expand_label(traffic_secret, "iv", b"", IV_LEN), "big")
        self.seq = 0

    def _nonce(self) -> bytes:
        if self.seq >= MAX_SEQUENCE:
            raise InternalError("sequence number exhausted")
        nonce = (self._iv ^ self.seq).to_bytes(IV_LEN, "big")
        self.seq += 1
        return nonce

    def encrypt(self, inner: bytes, aad: bytes) -> bytes:
        return self._aead.encrypt(self._nonce(), inner, aad)

    def decrypt(self, ciphertext: bytes, aad: bytes) -> bytes:
        nonce = self._nonce()
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise BadRecordMac("record does not decrypt") from None


# --- message parsing ------------------------------------------------------------------------


class _Reader:
    """Bounds-checked reader; every overrun is a DecodeError."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def read(self, n: int) -> bytes:
        if n > self.remaining():
            raise DecodeError("truncated")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.read(n), "big")

    def vector(self, len_bytes: int) -> bytes:
        return self.read(self.uint(len_bytes))

    def sub(self, len_bytes: int) -> _Reader:
        return _Reader(self.vector(len_bytes))

    def end(self) -> None:
        if self.remaining():
            raise DecodeError("trailing bytes")


def _uint16_list(r: _Reader) -> list[int]:
    items = []
    while r.remaining():
        items.append(r.uint(2))
    return items


@dataclass(slots=True)
class _OfferedPsks:
    identities: list[bytes]
    binders: list[bytes]


def _parse_extension(msg_type: int, ext_type: int, body: bytes) -> object:
    r = _Reader(body)
    value: object = None  # unknown extensions are skipped but still counted (FPC)
    if ext_type == EXT_PRE_SHARED_KEY and msg_type == HT_CLIENT_HELLO:
        ids_r, identities, binders = r.sub(2), [], []
        while ids_r.remaining():
            identities.append(ids_r.vector(2))
            ids_r.read(4)  # obfuscated_ticket_age, unused for external PSKs
        binders_r = r.sub(2)
        while binders_r.remaining():
            binder = binders_r.vector(1)
            if len(binder) < HASH_LEN:
                raise IllegalParameter("PSK binder too short")
            binders.append(binder)
        if len(identities) != len(binders):
            raise IllegalParameter("PSK identities and binders differ in number")
        value = _OfferedPsks(identities, binders)
    elif ext_type == EXT_PRE_SHARED_KEY and msg_type == HT_SERVER_HELLO:
        value = r.uint(2)  # selected_identity
    elif ext_type == EXT_SUPPORTED_VERSIONS and msg_type == HT_CLIENT_HELLO:
        value = _uint16_list(r.sub(1))
    elif ext_type == EXT_SUPPORTED_VERSIONS and msg_type == HT_SERVER_HELLO:
        value = r.uint(2)
    elif ext_type == EXT_PSK_KEY_EXCHANGE_MODES and msg_type == HT_CLIENT_HELLO:
        value = list(r.vector(1))
    elif ext_type in (EXT_PRE_SHARED_KEY, EXT_SUPPORTED_VERSIONS, EXT_PSK_KEY_EXCHANGE_MODES):
        raise IllegalParameter(f"extension {ext_type} not allowed in message {msg_type}")
    else:
        r.read(r.remaining())
    r.end()
    return value


def _parse_extensions(msg_type: int, r: _Reader) -> dict[int, object]:
    exts: dict[int, object] = {}  # insertion order = wire order
    er = r.sub(2)
    while er.remaining():
        ext_type = er.uint(2)
        body = er.vector(2)
        if ext_type in exts:
            raise DecodeError(f"duplicate extension {ext_type}")
        exts[ext_type] = _parse_extension(msg_type, ext_type, body)
    return exts


@dataclass(slots=True)
class _ClientHello:
    session_id: bytes
    extensions: dict[int, object]


@dataclass(slots=True)
class _ServerHello:
    session_id: bytes
    extensions: dict[int, object]


@dataclass(slots=True)
class _EncryptedExtensions:
    extensions: dict[int, object]


@dataclass(slots=True)
class _Finished:
    verify_data: bytes


@dataclass(slots=True)
class _NewSessionTicket:
    pass


_Message = _ClientHello | _ServerHello | _EncryptedExtensions | _Finished | _NewSessionTicket


def _parse_client_hello(r: _Reader) -> _ClientHello:
    if r.uint(2) < VERSION_TLS_1_0:
        raise ProtocolVersion("ClientHello predates TLS 1.0")
    r.read(32)  # random
    session_id = r.vector(1)
    if TLS_AES_128_GCM_SHA256 not in _uint16_list(r.sub(2)):
        raise HandshakeFailure("TLS_AES_128_GCM_SHA256 not offered")
    if r.vector(1) != b"\x00":
        raise IllegalParameter("compression methods must be exactly [null]")
    exts = _parse_extensions(HT_CLIENT_HELLO, r)
    versions = exts.get(EXT_SUPPORTED_VERSIONS)
    if not isinstance(versions, list):
        raise MissingExtension("supported_versions")
    if VERSION_TLS_1_3 not in versions:
        raise ProtocolVersion("TLS 1.3 not offered")
    if EXT_PRE_SHARED_KEY in exts and list(exts)[-1] != EXT_PRE_SHARED_KEY:
        raise IllegalParameter("pre_shared_key must be the last extension")
    return _ClientHello(session_id, exts)


def _parse_server_hello(r: _Reader) -> _ServerHello:
    if r.uint(2) != VERSION_TLS_1_2:
        raise IllegalParameter("ServerHello legacy_version")
    r.read(32)  # random
    session_id = r.vector(1)
    if r.uint(2) != TLS_AES_128_GCM_SHA256:
        raise IllegalParameter("cipher suite")
    if r.uint(1) != 0:
        raise IllegalParameter("compression method")
    exts = _parse_extensions(HT_SERVER_HELLO, r)
    if EXT_SUPPORTED_VERSIONS not in exts:
        raise MissingExtension("supported_versions")
    if exts[EXT_SUPPORTED_VERSIONS] != VERSION_TLS_1_3:
        raise IllegalParameter("server did not select TLS 1.3")
    return _ServerHello(session_id, exts)


def _parse_new_session_ticket(r: _Reader) -> _NewSessionTicket:
    r.read(8)  # ticket_lifetime, ticket_age_add
    r.vector(1)  # ticket_nonce
    if not r.vector(2):
        raise DecodeError("empty session ticket")
    _parse_extensions(HT_NEW_SESSION_TICKET, r)
    return _NewSessionTicket()


def _parse_handshake(msg_type: int, body: bytes) -> _Message:
    r = _Reader(body)
    msg: _Message
    if msg_type == HT_CLIENT_HELLO:
        msg = _parse_client_hello(r)
    elif msg_type == HT_SERVER_HELLO:
        msg = _parse_server_hello(r)
    elif msg_type == HT_ENCRYPTED_EXTENSIONS:
        msg = _EncryptedExtensions(_parse_extensions(HT_ENCRYPTED_EXTENSIONS, r))
    elif msg_type == HT_FINISHED:
        msg = _Finished(r.read(HASH_LEN))
    elif msg_type == HT_NEW_SESSION_TICKET:
        msg = _parse_new_session_ticket(r)
    else:
        raise UnexpectedMessage(f"handshake message type {msg_type}")
    r.end()
    return msg


def _handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def _ext(ext_type: int, body: bytes) -> bytes:
    return ext_type.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def _vec(len_bytes: int, body: bytes) -> bytes:
    return len(body).to_bytes(len_bytes, "big") + body


# --- connections ----------------------------------------------------------------------------


class Connection:
    """Common record layer and close/error handling; use ClientConnection/ServerConnection."""

    def __init__(
        self,
        psk: bytes,
        psk_id: bytes | str,
        *,
        random: Callable[[int], bytes] = os.urandom,
        state: State,
    ) -> None:
        if not isinstance(psk, bytes | bytearray) or not psk:
            raise LocalProtocolError("psk must be non-empty bytes")
        self.psk = bytes(psk)
        self.psk_id = psk_id.encode("utf-8") if isinstance(psk_id, str) else bytes(psk_id)
        if not 0 < len(self.psk_id) < 2**16:
            raise LocalProtocolError("psk_id must be 1..65535 bytes")
        self._random = random
        self._state = state
        self._ks = KeySchedule()
        self._send_cipher: _CipherState | None = None
        self._recv_cipher: _CipherState | None = None
        self._outbox: list[bytes] = []
        self._seen_ccs = False
        self._hs_reader: _Reader | None = None
        self.we_closed = False
        self.peer_closed = False
        self.error: TLSPSKError | None = None

    # -- public surface

    @property
    def state(self) -> State:
        return self._state

    @property
    def handshake_complete(self) -> bool:
        return self._state is State.CONNECTED

    @property
    def ended(self) -> bool:
        return self._state is State.ERROR or (self.we_closed and self.peer_closed)

    def data_to_send(self) -> list[bytes]:
        """Drain the records queued so far, in the order they must go on the wire."""
        out, self._outbox = self._outbox, []
        return out

    def receive_record(self, record: bytes) -> list[Event]:
        """Process exactly one TLS record as received from the peer."""
        if self._state is State.ERROR:
            raise ConnectionClosedError("connection failed") from self.error
        if self.peer_closed:
            raise ConnectionClosedError("peer already sent close_notify")
        try:
            return self._receive(bytes(memoryview(record)))
        except TLSAlertError as exc:
            self._fail(exc)
            raise
        except PeerAlert as exc:
            self._state, self.error = State.ERROR, exc
            raise

    def send_data(self, data: bytes) -> list[bytes]:
        """Encrypt ``data`` as one application_data record; returns all pending records."""
        self._check_can_send()
        if self._state is not State.CONNECTED:
            raise LocalProtocolError(f"cannot send application data in {self._state.name}")
        if len(data) > MAX_PLAINTEXT:
            # FPC refuses too; its PairingChannel JSON-parses each record, so no fragmenting.
            raise LocalProtocolError(f"at most {MAX_PLAINTEXT} bytes per record")
        self._guarded(self._send, CT_APPLICATION_DATA, bytes(data))
        return self.data_to_send()

    def close(self) -> list[bytes]:
        """Send close_notify (idempotent); returns all pending records."""
        if not self.we_closed and self._state is not State.ERROR:
            self._guarded(self._send, CT_ALERT, bytes([1, AlertDescription.CLOSE_NOTIFY]))
            self.we_closed = True
        return self.data_to_send()

    # -- record layer

    def _check_can_send(self) -> None:
        if self._state is State.ERROR:
            raise ConnectionClosedError("connection failed") from self.error
        if self.we_closed:
            raise ConnectionClosedError("close_notify already sent")

    def _guarded(self, fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except TLSAlertError as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: TLSAlertError) -> None:
        if self._state is State.ERROR:
            return
        if not self.we_closed:
            try:
                self._send(CT_ALERT, bytes([2, exc.description]))
            except TLSPSKError:
                pass  # e.g. sequence numbers exhausted: the peer just sees the channel drop
        self._state, self.error = State.ERROR, exc

    def _send(self, content_type: int, payload: bytes) -> None:
        if self._send_cipher is None:
            header = bytes([content_type, 3, 3]) + len(payload).to_bytes(2, "big")
            self._outbox.append(header + payload)
            return
        # TLSInnerPlaintext without padding (FPC sends none).
        inner = payload + bytes([content_type])
        header = bytes([CT_APPLICATION_DATA, 3, 3]) + (len(inner) + TAG_LEN).to_bytes(2, "big")
        self._outbox.append(header + self._send_cipher.encrypt(inner, header))

    def _require_record_end(self) -> None:
        # A message that changes keys must end its record (FPC _setRecvKey). Checked before
        # anything is queued, so a failing call sends nothing but its alert.
        if self._hs_reader is not None and self._hs_reader.remaining():
            raise UnexpectedMessage("data after a key change in the same record")

    def _set_recv_key(self, secret: bytes | None) -> None:
        assert secret is not None
        self._recv_cipher = _CipherState(secret)

    def _set_send_key(self, secret: bytes | None) -> None:
        assert secret is not None
        self._send_cipher = _CipherState(secret)

    def _receive(self, record: bytes) -> list[Event]:
        r = _Reader(record)
        content_type = r.uint(1)
        version = r.uint(2)
        if version != VERSION_TLS_1_2 and (
            self._recv_cipher is not None or version != VERSION_TLS_1_0
        ):
            raise DecodeError(f"record version {version:#06x}")
        length = r.uint(2)
        if self._recv_cipher is None or content_type == CT_CHANGE_CIPHER_SPEC:
            if length > MAX_PLAINTEXT:
                raise RecordOverflow("plaintext record too long")
            payload = r.read(length)
        else:
            if length > MAX_CIPHERTEXT:
                raise RecordOverflow("encrypted record too long")
            if content_type != CT_APPLICATION_DATA:
                raise DecodeError("encrypted record with outer type other than 23")
            ciphertext = r.read(length)
            inner = self._recv_cipher.decrypt(ciphertext, record[:5]).rstrip(b"\x00")
            if not inner:
                raise UnexpectedMessage("record without content type")
            content_type, payload = inner[-1], inner[:-1]
            if content_type == CT_CHANGE_CIPHER_SPEC:
                raise DecodeError("encrypted change_cipher_spec")
        r.end()  # exactly one record per frame
        if content_type == CT_CHANGE_CIPHER_SPEC:
            self._receive_ccs(payload)
            return []
        if content_type == CT_ALERT:
            return self._receive_alert(payload)
        if content_type == CT_APPLICATION_DATA:
            if self._state is not State.CONNECTED:
                raise UnexpectedMessage(f"application data in {self._state.name}")
            return [Data(payload)]
        if content_type == CT_HANDSHAKE:
            return self._receive_handshake(payload)
        raise UnexpectedMessage(f"record type {content_type}")

    def _receive_ccs(self, payload: bytes) -> None:
        # Middlebox-compatibility CCS: once, only mid-handshake, exactly 0x01 (RFC 8446 §5).
        if self._state not in (State.CLIENT_WAIT_EE, State.SERVER_WAIT_FINISHED):
            raise UnexpectedMessage(f"change_cipher_spec in {self._state.name}")
        if self._seen_ccs or payload != b"\x01":
            raise UnexpectedMessage("second or malformed change_cipher_spec")
        self._seen_ccs = True

    def _receive_alert(self, payload: bytes) -> list[Event]:
        if len(payload) != 2:
            raise DecodeError("alert must be 2 bytes")
        level, description = payload
        if description == AlertDescription.CLOSE_NOTIFY:
            if level != 1:
                raise IllegalParameter("close_notify must be a warning")
            self.peer_closed = True
            return [Closed()]
        raise PeerAlert(description)  # any other alert is fatal in TLS 1.3

    def _receive_handshake(self, payload: bytes) -> list[Event]:
        if not payload:
            raise UnexpectedMessage("empty handshake record")
        events: list[Event] = []
        self._hs_reader = r = _Reader(payload)
        try:
            while r.remaining():
                msg_type = r.uint(1)
                body = r.vector(3)  # no fragmentation across records, as FPC
                self._ks.transcript += _handshake(msg_type, body)
                events += self._handle(_parse_handshake(msg_type, body))
        finally:
            self._hs_reader = None
        return events

    def _handle(self, msg: _Message) -> list[Event]:
        raise NotImplementedError


class ClientConnection(Connection):
    """The joiner (the phone's supplicant page): sends ClientHello at once."""

    def __init__(
        self, psk: bytes, psk_id: bytes | str, *, random: Callable[[int], bytes] = os.urandom
    ) -> None:
        super().__init__(psk, psk_id, random=random, state=State.CLIENT_WAIT_SH)
        self._ks.add_psk(self.psk)
        client_random = random(32)  # FPC draws the random first, then the session id
        self._session_id = random(32)  # non-empty: FPC's choice, makes the server send CCS
        if len(client_random) != 32 or len(self._session_id) != 32:
            raise LocalProtocolError("random(32) must return 32 bytes")
        exts = (
            _ext(EXT_SUPPORTED_VERSIONS, _vec(1, VERSION_TLS_1_3.to_bytes(2, "big")))
            + _ext(EXT_PSK_KEY_EXCHANGE_MODES, _vec(1, bytes([PSK_MODE_KE])))
            + _ext(
                EXT_PRE_SHARED_KEY,
                _vec(2, _vec(2, self.psk_id) + bytes(4)) + _vec(2, _vec(1, ZEROS)),
            )
        )
        body = (
            VERSION_TLS_1_2.to_bytes(2, "big") + client_random + _vec(1, self._session_id)
            + _vec(2, TLS_AES_128_GCM_SHA256.to_bytes(2, "big")) + _vec(1, b"\x00")
            + _vec(2, exts)
        )
        hello = _handshake(HT_CLIENT_HELLO, body)
        # The binder covers the ClientHello up to the binders list (u16 + u8 + 32 bytes).
        assert self._ks.ext_binder_key is not None
        binder = KeySchedule.finished_mac(self._ks.ext_binder_key, hello[: -(HASH_LEN + 3)])
        hello = hello[:-HASH_LEN] + binder
        self._ks.transcript += hello
        self._send(CT_HANDSHAKE, hello)

    def _handle(self, msg: _Message) -> list[Event]:
        ks = self._ks
        if self._state is State.CLIENT_WAIT_SH:
            if not isinstance(msg, _ServerHello):
                raise UnexpectedMessage("expected ServerHello")
            if msg.session_id != self._session_id:
                raise IllegalParameter("ServerHello did not echo our session id")
            if EXT_PRE_SHARED_KEY not in msg.extensions:
                raise MissingExtension("pre_shared_key")
            if len(msg.extensions) != 2:  # only supported_versions and pre_shared_key
                raise UnsupportedExtension("unexpected ServerHello extension")
            if msg.extensions[EXT_PRE_SHARED_KEY] != 0:
                raise IllegalParameter("server selected a PSK we did not offer")
            self._require_record_end()
            ks.add_ecdhe()
            self._set_send_key(ks.client_handshake_traffic_secret)
            self._set_recv_key(ks.server_handshake_traffic_secret)
            self._state = State.CLIENT_WAIT_EE
            return []
        if self._state is State.CLIENT_WAIT_EE:
            if not isinstance(msg, _EncryptedExtensions):
                raise UnexpectedMessage("expected EncryptedExtensions")
            if msg.extensions:
                raise UnsupportedExtension("EncryptedExtensions must be empty")
            self._server_finished_transcript = bytes(ks.transcript)
            self._state = State.CLIENT_WAIT_FINISHED
            return []
        if self._state is State.CLIENT_WAIT_FINISHED:
            if not isinstance(msg, _Finished):
                raise UnexpectedMessage("expected Finished")
            c_hs, s_hs = ks.client_handshake_traffic_secret, ks.server_handshake_traffic_secret
            assert c_hs is not None and s_hs is not None
            KeySchedule.verify_finished_mac(s_hs, self._server_finished_transcript, msg.verify_data)
            self._require_record_end()
            # Application secrets cover CH..server Finished, not our own Finished.
            finished = _handshake(HT_FINISHED, KeySchedule.finished_mac(c_hs, bytes(ks.transcript)))
            ks.finalize()
            ks.transcript += finished
            self._send(CT_HANDSHAKE, finished)  # still under the client handshake key
            self._set_send_key(ks.client_application_traffic_secret)
            self._set_recv_key(ks.server_application_traffic_secret)
            self._state = State.CONNECTED
            return [HandshakeComplete()]
        if isinstance(msg, _NewSessionTicket):
            return []  # accepted and ignored after the handshake (FPC CLIENT_CONNECTED)
        raise UnexpectedMessage(f"handshake message in {self._state.name}")


class ServerConnection(Connection):
    """The channel creator (the authority): answers a ClientHello carrying our PSK."""

    def __init__(
        self, psk: bytes, psk_id: bytes | str, *, random: Callable[[int], bytes] = os.urandom
    ) -> None:
        super().__init__(psk, psk_id, random=random, state=State.SERVER_START)

    def _handle(self, msg: _Message) -> list[Event]:
        ks = self._ks
        if self._state is State.SERVER_START:
            if not isinstance(msg, _ClientHello):
                raise UnexpectedMessage("expected ClientHello")
            offered = msg.extensions.get(EXT_PRE_SHARED_KEY)
            modes = msg.extensions.get(EXT_PSK_KEY_EXCHANGE_MODES)
            if not isinstance(offered, _OfferedPsks) or not isinstance(modes, list):
                raise MissingExtension("pre_shared_key / psk_key_exchange_modes")
            if PSK_MODE_KE not in modes:
                raise HandshakeFailure("psk_ke not offered")
            if self.psk_id not in offered.identities:
                raise UnknownPskIdentity("our channel id is not offered")
            index = offered.identities.index(self.psk_id)
            ks.add_psk(self.psk)
            binders_len = 2 + sum(len(b) + 1 for b in offered.binders)
            assert ks.ext_binder_key is not None
            truncated = bytes(ks.transcript[:-binders_len])
            KeySchedule.verify_finished_mac(ks.ext_binder_key, truncated, offered.binders[index])
            server_random = self._random(32)
            if len(server_random) != 32:
                raise InternalError("random(32) must return 32 bytes")
            self._require_record_end()
            exts = _ext(EXT_SUPPORTED_VERSIONS, VERSION_TLS_1_3.to_bytes(2, "big")) + _ext(
                EXT_PRE_SHARED_KEY, index.to_bytes(2, "big")
            )
            body = (
                VERSION_TLS_1_2.to_bytes(2, "big") + server_random + _vec(1, msg.session_id)
                + TLS_AES_128_GCM_SHA256.to_bytes(2, "big") + b"\x00" + _vec(2, exts)
            )
            hello = _handshake(HT_SERVER_HELLO, body)
            ks.transcript += hello
            self._send(CT_HANDSHAKE, hello)
            if msg.session_id:  # middlebox compatibility mode, RFC 8446 §D.4
                self._outbox.append(CCS_RECORD)
            ks.add_ecdhe()
            self._set_send_key(ks.server_handshake_traffic_secret)
            self._set_recv_key(ks.client_handshake_traffic_secret)
            ee = _handshake(HT_ENCRYPTED_EXTENSIONS, _vec(2, b""))
            ks.transcript += ee
            s_hs, c_hs = ks.server_handshake_traffic_secret, ks.client_handshake_traffic_secret
            assert s_hs is not None and c_hs is not None
            finished = _handshake(HT_FINISHED, KeySchedule.finished_mac(s_hs, bytes(ks.transcript)))
            ks.transcript += finished
            self._send(CT_HANDSHAKE, ee + finished)  # coalesced into one record, as FPC
            self._client_finished = (c_hs, bytes(ks.transcript))
            ks.finalize()
            self._set_send_key(ks.server_application_traffic_secret)
            self._state = State.SERVER_WAIT_FINISHED
            return []
        if self._state is State.SERVER_WAIT_FINISHED:
            if not isinstance(msg, _Finished):
                raise UnexpectedMessage("expected client Finished")
            c_hs, transcript = self._client_finished
            KeySchedule.verify_finished_mac(c_hs, transcript, msg.verify_data)
            self._require_record_end()
            self._set_recv_key(ks.client_application_traffic_secret)
            self._state = State.CONNECTED
            return [HandshakeComplete()]
        raise UnexpectedMessage(f"handshake message in {self._state.name}")
