"""appliance.pairing.tlspsk against the fxa-pairing-channel trace, in both roles, and misuse."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.pairing import tlspsk as t
from appliance.pairing.tlspsk import (
    AlertDescription,
    ClientConnection,
    Closed,
    Data,
    HandshakeComplete,
    ServerConnection,
    State,
)
from tests.appliance.pairing.nodepeer import VECTORS

V = VECTORS
PSK, PSK_ID = V["PSK"], V["PSK_ID"]


def _ids(value: object) -> str:
    return value.__name__ if isinstance(value, type) else "r"


def randoms(*values: bytes) -> Callable[[int], bytes]:
    queue = list(values)

    def draw(n: int) -> bytes:
        value = queue.pop(0)
        assert len(value) == n
        return value

    return draw


def vector_client() -> ClientConnection:
    return ClientConnection(PSK, PSK_ID, random=randoms(V["CLIENT_RANDOM"], V["SESSION_ID"]))


def vector_server() -> ServerConnection:
    return ServerConnection(PSK, PSK_ID, random=randoms(V["SERVER_RANDOM"]))


def connected_vector_client() -> ClientConnection:
    c = vector_client()
    c.data_to_send()
    for rec in ("SERVER_HELLO", "SERVER_CHANGE_CIPHER_SPEC"):
        assert c.receive_record(V[rec]) == []
    assert c.receive_record(V["SERVER_ENCRYPTED_EXTENSIONS_AND_FINISHED"]) == [HandshakeComplete()]
    assert c.data_to_send() == [V["CLIENT_FINISHED"]]
    return c


def connected_vector_server() -> ServerConnection:
    s = vector_server()
    assert s.receive_record(V["CLIENT_HELLO"]) == []
    s.data_to_send()
    assert s.receive_record(V["CLIENT_FINISHED"]) == [HandshakeComplete()]
    return s


def seal(secret: bytes | None, seq: int, content: bytes, ctype: int, padding: int = 0) -> bytes:
    """Forge a record the way a peer holding ``secret`` would (for negative tests)."""
    assert secret is not None
    cs = t._CipherState(secret)
    cs.seq = seq
    inner = content + bytes([ctype]) + bytes(padding)
    header = bytes([23, 3, 3]) + (len(inner) + 16).to_bytes(2, "big")
    return header + cs.encrypt(inner, header)


def unseal(secret: bytes | None, seq: int, record: bytes) -> bytes:
    assert secret is not None
    cs = t._CipherState(secret)
    cs.seq = seq
    return cs.decrypt(record[5:], record[:5])


def plaintext(ctype: int, content: bytes, version: bytes = b"\x03\x03") -> bytes:
    return bytes([ctype]) + version + len(content).to_bytes(2, "big") + content


def pump(a: t.Connection, b: t.Connection) -> list[tuple[str, t.Event]]:
    """Deliver queued records both ways until quiet; returns (receiver, event) pairs."""
    seen: list[tuple[str, t.Event]] = []
    moved = True
    while moved:
        moved = False
        for src, dst, name in ((a, b, "b"), (b, a, "a")):
            for rec in src.data_to_send():
                moved = True
                seen += [(name, ev) for ev in dst.receive_record(rec)]
    return seen


# --- vectors ----------------------------------------------------------------------------


def test_key_schedule_vectors() -> None:
    ks = t.KeySchedule()
    ks.add_psk(PSK)
    assert ks.ext_binder_key == V["KEYS_EXT_BINDER"]
    assert ks.client_handshake_traffic_secret is None
    ks.transcript += V["KEYS_PLAINTEXT_TRANSCRIPT"]
    ks.add_ecdhe()
    assert ks.ext_binder_key is None
    assert ks.client_handshake_traffic_secret == V["KEYS_CLIENT_HANDSHAKE_TRAFFIC_SECRET"]
    assert ks.server_handshake_traffic_secret == V["KEYS_SERVER_HANDSHAKE_TRAFFIC_SECRET"]
    ks.transcript += V["KEYS_ENCRYPTED_TRANSCRIPT"]
    ks.finalize()
    assert ks.client_handshake_traffic_secret is None
    assert ks.client_application_traffic_secret == V["KEYS_CLIENT_APPLICATION_TRAFFIC_SECRET_0"]
    assert ks.server_application_traffic_secret == V["KEYS_SERVER_APPLICATION_TRAFFIC_SECRET_0"]
    for step in (lambda: ks.add_psk(PSK), ks.add_ecdhe, ks.finalize):
        with pytest.raises(t.InternalError):
            step()


def test_key_schedule_order_enforced() -> None:
    for step in (t.KeySchedule().add_ecdhe, t.KeySchedule().finalize):
        with pytest.raises(t.InternalError):
            step()


def test_client_role_reproduces_trace() -> None:
    draws: list[int] = []
    values = [V["CLIENT_RANDOM"], V["SESSION_ID"]]

    def rnd(n: int) -> bytes:
        draws.append(n)
        return values.pop(0)

    c = ClientConnection(PSK, PSK_ID, random=rnd)
    assert draws == [32, 32]  # client random first, then session id (FPC order)
    assert c.state is State.CLIENT_WAIT_SH
    assert c.data_to_send() == [V["CLIENT_HELLO"]]
    assert c.receive_record(V["SERVER_HELLO"]) == []
    assert c.state is State.CLIENT_WAIT_EE
    assert c.receive_record(V["SERVER_CHANGE_CIPHER_SPEC"]) == []
    assert c.receive_record(V["SERVER_ENCRYPTED_EXTENSIONS_AND_FINISHED"]) == [HandshakeComplete()]
    assert c.state is State.CONNECTED and c.handshake_complete
    assert c.data_to_send() == [V["CLIENT_FINISHED"]]  # no CCS from the client, as FPC
    assert c.receive_record(V["SERVER_APP_DATA"]) == [Data(V["SERVER_RAW_APP_DATA"])]
    assert c.send_data(V["CLIENT_RAW_APP_DATA"]) == [V["CLIENT_APP_DATA"]]
    assert c.send_data(V["CLIENT_RAW_APP_DATA_2"]) == [V["CLIENT_APP_DATA_2"]]
    assert c.receive_record(V["SERVER_APP_DATA_2"]) == [Data(V["SERVER_RAW_APP_DATA_2"])]
    assert c.close() == [V["CLIENT_CLOSE"]]
    assert c.we_closed and not c.ended
    assert c.receive_record(V["SERVER_CLOSE"]) == [Closed()]
    assert c.ended


def test_server_role_reproduces_trace() -> None:
    draws: list[int] = []

    def rnd(n: int) -> bytes:
        draws.append(n)
        return V["SERVER_RANDOM"]

    s = ServerConnection(PSK, PSK_ID, random=rnd)
    assert s.data_to_send() == []  # a server says nothing first
    assert s.receive_record(V["CLIENT_HELLO"]) == []
    assert draws == [32]
    flight = ["SERVER_HELLO", "SERVER_CHANGE_CIPHER_SPEC",
              "SERVER_ENCRYPTED_EXTENSIONS_AND_FINISHED"]
    assert s.data_to_send() == [V[name] for name in flight]
    assert s.state is State.SERVER_WAIT_FINISHED
    with pytest.raises(t.LocalProtocolError):
        s.send_data(b"too early")  # FPC blocks until connected; we refuse
    assert s.receive_record(V["CLIENT_CHANGE_CIPHER_SPEC"]) == []  # tlslite sent one
    assert s.receive_record(V["CLIENT_FINISHED"]) == [HandshakeComplete()]
    assert s.receive_record(V["CLIENT_APP_DATA"]) == [Data(V["CLIENT_RAW_APP_DATA"])]
    assert s.send_data(V["SERVER_RAW_APP_DATA"]) == [V["SERVER_APP_DATA"]]
    assert s.receive_record(V["CLIENT_APP_DATA_2"]) == [Data(V["CLIENT_RAW_APP_DATA_2"])]
    assert s.send_data(V["SERVER_RAW_APP_DATA_2"]) == [V["SERVER_APP_DATA_2"]]
    assert s.receive_record(V["CLIENT_CLOSE"]) == [Closed()]
    assert s.close() == [V["SERVER_CLOSE"]]
    assert s.ended and s.data_to_send() == []


def test_server_without_client_ccs() -> None:
    s = connected_vector_server()
    assert s.receive_record(V["CLIENT_APP_DATA"]) == [Data(b"hello world")]


def test_server_accepts_extended_client_hello() -> None:
    s = ServerConnection(PSK, PSK_ID, random=randoms(V["SERVER_RANDOM"]))
    assert s.receive_record(V["EXTENDED_CLIENT_HELLO"]) == []
    sh, ccs, ee_fin = s.data_to_send()
    assert sh[-6:] == bytes.fromhex("002900020001")  # selected_identity = 1 ("testkey")
    assert ccs == V["SERVER_CHANGE_CIPHER_SPEC"] and ee_fin[0] == 23


def test_server_accepts_tls10_record_version_on_client_hello() -> None:
    s = ServerConnection(PSK, PSK_ID)
    s.receive_record(b"\x16\x03\x01" + V["CLIENT_HELLO"][3:])
    assert len(s.data_to_send()) == 3


# --- round trips ------------------------------------------------------------------------


def test_round_trip_both_directions() -> None:
    c, s = ClientConnection(b"k" * 32, "AAAAAAAAAAAAAAAAAAAAAA"), ServerConnection(
        b"k" * 32, "AAAAAAAAAAAAAAAAAAAAAA"
    )
    assert pump(c, s) == [("a", HandshakeComplete()), ("b", HandshakeComplete())]
    msgs = [json.dumps({"message": "pair:supp:request", "data": {"n": i}}).encode()
            for i in range(5)]
    for m in msgs:
        (rec,) = c.send_data(m)
        assert m not in rec
        assert s.receive_record(rec) == [Data(m)]
        (rec,) = s.send_data(m[::-1])
        assert c.receive_record(rec) == [Data(m[::-1])]
    # Several records queued before delivery keep their order.
    recs = c.send_data(b"1") + c.send_data(b"") + c.send_data(b"3")
    assert [s.receive_record(r) for r in recs] == [[Data(b"1")], [Data(b"")], [Data(b"3")]]


def test_fresh_randomness_each_run() -> None:
    c1, c2 = ClientConnection(PSK, PSK_ID), ClientConnection(PSK, PSK_ID)
    assert c1.data_to_send() != c2.data_to_send()


def test_max_record_size_and_no_fragmentation() -> None:
    c, s = ClientConnection(PSK, PSK_ID), ServerConnection(PSK, PSK_ID)
    pump(c, s)
    big = bytes(range(256)) * 64
    assert len(big) == t.MAX_PLAINTEXT
    (rec,) = c.send_data(big)
    assert len(rec) == 5 + t.MAX_PLAINTEXT + 1 + 16
    assert s.receive_record(rec) == [Data(big)]
    with pytest.raises(t.LocalProtocolError):
        s.send_data(big + b"x")
    assert s.state is State.CONNECTED  # refused locally, nothing sent, still usable
    (rec,) = s.send_data(big)
    assert c.receive_record(rec) == [Data(big)]


def test_receiver_strips_inner_padding() -> None:
    s = connected_vector_server()
    secret = s._ks.client_application_traffic_secret
    assert s.receive_record(seal(secret, 0, b"padded", 23, padding=200)) == [Data(b"padded")]
    with pytest.raises(t.UnexpectedMessage):
        s.receive_record(seal(secret, 1, b"", 0, padding=3))  # all zeros: no content type


# --- wrong PSK / identity ---------------------------------------------------------------


def test_wrong_psk_fails_on_both_sides_without_leaking() -> None:
    secret = b'{"message":"pair:supp:request","data":{"state":"s3cr3t"}}'
    c, s = ClientConnection(b"A" * 32, "chan"), ServerConnection(b"B" * 32, "chan")
    with pytest.raises(t.LocalProtocolError):
        c.send_data(secret)  # nothing can leave before the handshake
    (hello,) = c.data_to_send()
    with pytest.raises(t.DecryptError):
        s.receive_record(hello)  # bad binder
    (alert,) = s.data_to_send()
    assert alert == bytes.fromhex("15030300020233")  # plaintext fatal decrypt_error, no ServerHello
    with pytest.raises(t.PeerAlert) as info:
        c.receive_record(alert)
    assert info.value.description == AlertDescription.DECRYPT_ERROR
    assert c.data_to_send() == []  # we do not answer a fatal alert
    for conn in (c, s):
        assert conn.state is State.ERROR and conn.ended
        with pytest.raises(t.ConnectionClosedError):
            conn.send_data(secret)
        with pytest.raises(t.ConnectionClosedError):
            conn.receive_record(alert)
        assert conn.close() == []


def test_client_detects_server_with_other_psk() -> None:
    # A server that skipped the binder check would still be caught by the client:
    # the handshake records do not decrypt under the client's keys.
    rnd = [V["CLIENT_RANDOM"], V["SESSION_ID"]] * 2
    c_right = ClientConnection(b"A" * 32, "chan", random=randoms(*rnd[:2]))
    c_other = ClientConnection(b"B" * 32, "chan", random=randoms(*rnd[2:]))
    s = ServerConnection(b"B" * 32, "chan")
    c_right.data_to_send()
    s.receive_record(c_other.data_to_send()[0])
    sh, ccs, ee_fin = s.data_to_send()
    c_right.receive_record(sh)
    c_right.receive_record(ccs)
    with pytest.raises(t.BadRecordMac):
        c_right.receive_record(ee_fin)
    (alert,) = c_right.data_to_send()
    assert len(alert) == 5 + 3 + 16  # encrypted under the client handshake key
    assert c_right.state is State.ERROR


def test_client_rejects_bad_server_finished() -> None:
    c = vector_client()
    c.data_to_send()
    c.receive_record(V["SERVER_HELLO"])
    s_hs = c._ks.server_handshake_traffic_secret
    bad = seal(s_hs, 0, bytes.fromhex("080000020000") + t._handshake(20, bytes(32)), 22)
    with pytest.raises(t.DecryptError):
        c.receive_record(bad)
    (alert,) = c.data_to_send()
    assert unseal(c._ks.client_handshake_traffic_secret, 0, alert) == bytes([2, 51, 21])


def test_server_rejects_bad_client_finished_and_alerts_under_app_key() -> None:
    s = vector_server()
    s.receive_record(V["CLIENT_HELLO"])
    s.data_to_send()
    c_hs = s._client_finished[0]
    with pytest.raises(t.DecryptError):
        s.receive_record(seal(c_hs, 0, t._handshake(20, bytes(32)), 22))
    (alert,) = s.data_to_send()
    assert unseal(s._ks.server_application_traffic_secret, 0, alert) == bytes([2, 51, 21])
    with pytest.raises(t.ConnectionClosedError):
        s.send_data(b"x")


def test_unknown_psk_identity() -> None:
    c, s = ClientConnection(PSK, "other-channel"), ServerConnection(PSK, "chan")
    with pytest.raises(t.UnknownPskIdentity):
        s.receive_record(c.data_to_send()[0])
    with pytest.raises(t.PeerAlert) as info:
        c.receive_record(s.data_to_send()[0])
    assert info.value.description == AlertDescription.UNKNOWN_PSK_IDENTITY


# --- tampering, truncation, replay, reordering ----------------------------------------


@pytest.mark.parametrize("pos", [5, 10, 20, -1])
def test_tampered_record_fails(pos: int) -> None:
    s = connected_vector_server()
    rec = bytearray(V["CLIENT_APP_DATA"])
    rec[pos] ^= 0x01
    with pytest.raises(t.BadRecordMac):
        s.receive_record(bytes(rec))
    assert s.state is State.ERROR


@pytest.mark.parametrize(
    ("record", "error"),
    [
        (V["CLIENT_APP_DATA"][:-1], t.DecodeError),  # truncated
        (V["CLIENT_APP_DATA"] + b"\x00", t.DecodeError),  # two records / trailing bytes
        (b"", t.DecodeError),
        (b"\x17\x03", t.DecodeError),
        (b"a badly-formed message", t.DecodeError),
        (b"\x17\x03\x01" + V["CLIENT_APP_DATA"][3:], t.DecodeError),  # TLS 1.0 after keys
        (b"\x16" + V["CLIENT_APP_DATA"][1:], t.DecodeError),  # outer type must be 23
        (b"\x17\x03\x03\x41\x01" + bytes(2**14 + 257), t.RecordOverflow),
        (b"\x17\x03\x03\x00\x05" + bytes(5), t.BadRecordMac),  # shorter than a tag
    ],
    ids=_ids,
)
def test_malformed_records_after_handshake(record: bytes, error: type[Exception]) -> None:
    s = connected_vector_server()
    with pytest.raises(error):
        s.receive_record(record)
    assert s.state is State.ERROR


@pytest.mark.parametrize(
    ("record", "error"),
    [
        (b"a badly-formed message", t.DecodeError),
        (V["CLIENT_HELLO"][:-1], t.DecodeError),
        (plaintext(13, b""), t.UnexpectedMessage),
        (plaintext(22, b""), t.UnexpectedMessage),
        (plaintext(21, b"\x01\x02\x03"), t.DecodeError),
        (plaintext(22, bytes(2**14 + 1)), t.RecordOverflow),
        (plaintext(22, b"\x63\x00\x00\x00"), t.UnexpectedMessage),  # unknown handshake type
        (V["CLIENT_HELLO"][:-2] + b"\x00", t.DecodeError),  # inner lengths disagree
        (V["SERVER_HELLO"], t.UnexpectedMessage),
        (V["CLIENT_CHANGE_CIPHER_SPEC"], t.UnexpectedMessage),  # CCS before ClientHello
        (V["CLIENT_APP_DATA"], t.UnexpectedMessage),
        (plaintext(22, V["CLIENT_HELLO"][5:] + bytes.fromhex("080000020000")), t.UnexpectedMessage),
    ],
    ids=_ids,
)
def test_server_rejects_before_handshake(record: bytes, error: type[Exception]) -> None:
    s = ServerConnection(PSK, PSK_ID)
    with pytest.raises(error):
        s.receive_record(record)
    assert s.state is State.ERROR
    (alert,) = s.data_to_send()
    assert alert == plaintext(21, bytes([2, error.description]))  # type: ignore[attr-defined]


def test_replayed_and_reordered_records_fail() -> None:
    s = connected_vector_server()
    assert s.receive_record(V["CLIENT_APP_DATA"]) == [Data(b"hello world")]
    with pytest.raises(t.BadRecordMac):
        s.receive_record(V["CLIENT_APP_DATA"])  # replay
    s = connected_vector_server()
    with pytest.raises(t.BadRecordMac):
        s.receive_record(V["CLIENT_APP_DATA_2"])  # reordered
    c = connected_vector_client()
    c.receive_record(V["SERVER_APP_DATA"])
    with pytest.raises(t.BadRecordMac):
        c.receive_record(V["SERVER_CLOSE"])  # close generated after two records
    s = vector_server()
    s.receive_record(V["CLIENT_HELLO"])
    with pytest.raises(t.DecodeError):
        s.receive_record(V["CLIENT_HELLO"])  # a second (plaintext) ClientHello


def test_handshake_records_out_of_order() -> None:
    c = vector_client()
    with pytest.raises(t.UnexpectedMessage):
        c.receive_record(V["SERVER_CHANGE_CIPHER_SPEC"])  # before ServerHello
    c = vector_client()
    with pytest.raises(t.UnexpectedMessage):
        c.receive_record(V["CLIENT_HELLO"])
    c = vector_client()
    with pytest.raises(t.UnexpectedMessage):
        c.receive_record(V["SERVER_ENCRYPTED_EXTENSIONS_AND_FINISHED"])  # no keys: plaintext data
    c = vector_client()
    c.receive_record(V["SERVER_HELLO"])
    with pytest.raises(t.BadRecordMac):
        c.receive_record(V["SERVER_APP_DATA"])  # application keys not yet known
    c = vector_client()
    c.receive_record(V["SERVER_HELLO"])
    c.receive_record(V["SERVER_CHANGE_CIPHER_SPEC"])
    with pytest.raises(t.UnexpectedMessage):
        c.receive_record(V["SERVER_CHANGE_CIPHER_SPEC"])  # only one CCS
    c = vector_client()
    c.receive_record(V["SERVER_HELLO"])
    s_hs = c._ks.server_handshake_traffic_secret
    with pytest.raises(t.UnexpectedMessage):
        c.receive_record(seal(s_hs, 0, t._handshake(20, bytes(32)), 22))  # Finished before EE
    c = vector_client()
    c.receive_record(V["SERVER_HELLO"])
    with pytest.raises(t.UnexpectedMessage):
        c.receive_record(seal(c._ks.server_handshake_traffic_secret, 0, b"data", 23))
    c = connected_vector_client()
    with pytest.raises(t.UnexpectedMessage):
        c.receive_record(V["SERVER_CHANGE_CIPHER_SPEC"])  # CCS after the handshake


def test_server_hello_and_more_in_one_record() -> None:
    c = vector_client()
    content = V["SERVER_HELLO"][5:] + bytes.fromhex("080000020000")
    with pytest.raises(t.UnexpectedMessage):
        c.receive_record(plaintext(22, content))  # a key change must end the record


def _server_hello(
    *, session_id: bytes = V["SESSION_ID"], exts: bytes | None = None, suite: int = 0x1301
) -> bytes:
    if exts is None:
        exts = t._ext(43, b"\x03\x04") + t._ext(41, b"\x00\x00")
    body = (
        b"\x03\x03" + V["SERVER_RANDOM"] + t._vec(1, session_id) + suite.to_bytes(2, "big")
        + b"\x00" + t._vec(2, exts)
    )
    return plaintext(22, t._handshake(2, body))


@pytest.mark.parametrize(
    ("record", "error"),
    [
        (_server_hello(session_id=bytes(32)), t.IllegalParameter),
        (_server_hello(suite=0x1302), t.IllegalParameter),
        (_server_hello(exts=t._ext(43, b"\x03\x04") + t._ext(41, b"\x00\x01")), t.IllegalParameter),
        (_server_hello(exts=t._ext(43, b"\x03\x03") + t._ext(41, b"\x00\x00")), t.IllegalParameter),
        (_server_hello(exts=t._ext(43, b"\x03\x04")), t.MissingExtension),
        (_server_hello(exts=t._ext(41, b"\x00\x00")), t.MissingExtension),
        (_server_hello(exts=t._ext(43, b"\x03\x04") + t._ext(44, bytes(12)) + t._ext(41, b"\0\0")),
         t.UnsupportedExtension),
        (_server_hello(exts=t._ext(43, b"\x03\x04") + t._ext(45, b"\x00") + t._ext(41, b"\0\0")),
         t.IllegalParameter),
        (_server_hello(exts=t._ext(43, b"\x03\x04") * 2 + t._ext(41, b"\0\0")), t.DecodeError),
        (_server_hello(exts=t._ext(43, b"\x03\x04\x00") + t._ext(41, b"\0\0")), t.DecodeError),
    ],
    ids=_ids,
)
def test_client_rejects_bad_server_hello(record: bytes, error: type[Exception]) -> None:
    c = vector_client()
    c.data_to_send()
    with pytest.raises(error):
        c.receive_record(record)


def test_client_accepts_server_hello_extensions_in_other_order() -> None:
    c = vector_client()
    assert c.receive_record(_server_hello(exts=t._ext(41, b"\0\0") + t._ext(43, b"\x03\x04"))) == []
    assert c.state is State.CLIENT_WAIT_EE


@pytest.mark.parametrize(
    ("ee_exts", "error"),
    [(t._ext(44, bytes(7)), t.UnsupportedExtension), (t._ext(43, b"\x03\x04"), t.IllegalParameter)],
)
def test_client_rejects_non_empty_encrypted_extensions(ee_exts: bytes, error: type) -> None:
    c = vector_client()
    c.receive_record(V["SERVER_HELLO"])
    with pytest.raises(error):
        c.receive_record(seal(c._ks.server_handshake_traffic_secret, 0,
                              t._handshake(8, t._vec(2, ee_exts)), 22))


def _client_hello(exts: list[bytes], *, suites: bytes = b"\x13\x01", compression: bytes = b"\x00",
                  version: bytes = b"\x03\x03", session_id: bytes = b"", trailer: bytes = b"",
                  psk: bytes | None = PSK) -> bytes:
    body = (version + V["CLIENT_RANDOM"] + t._vec(1, session_id) + t._vec(2, suites)
            + t._vec(1, compression) + t._vec(2, b"".join(exts)) + trailer)
    hello = t._handshake(1, body)
    last = exts[-1] if exts else b""
    single_binder = last[:2] == b"\x00\x29" and last[-35:-32] == b"\0\x21\x20"
    if psk is not None and not trailer and single_binder:  # sign like a real client
        ks = t.KeySchedule()
        ks.add_psk(psk)
        assert ks.ext_binder_key is not None
        hello = hello[:-32] + t.KeySchedule.finished_mac(ks.ext_binder_key, hello[:-35])
    return plaintext(22, hello)


SV = t._ext(43, t._vec(1, b"\x03\x04"))
MODES = t._ext(45, t._vec(1, b"\x00"))


def PSKX(ids: list[bytes] = [PSK_ID], binders: list[bytes] | None = None) -> bytes:  # noqa: B006
    binders = [bytes(32)] * len(ids) if binders is None else binders
    identities = b"".join(t._vec(2, i) + bytes(4) for i in ids)
    return t._ext(41, t._vec(2, identities) + t._vec(2, b"".join(t._vec(1, b) for b in binders)))


@pytest.mark.parametrize(
    ("record", "error"),
    [
        (_client_hello([MODES, PSKX(), SV]), t.IllegalParameter),  # PSK not last
        (_client_hello([SV, PSKX()]), t.MissingExtension),
        (_client_hello([MODES, PSKX()]), t.MissingExtension),
        (_client_hello([SV, MODES]), t.MissingExtension),
        (_client_hello([t._ext(43, t._vec(1, b"")), MODES, PSKX()]), t.ProtocolVersion),
        (_client_hello([t._ext(43, t._vec(1, b"\x03\x02\x03\x03")), MODES, PSKX()]),
         t.ProtocolVersion),
        (_client_hello([SV, MODES, PSKX()], version=b"\x01\x02"), t.ProtocolVersion),
        (_client_hello([SV, MODES, PSKX()], suites=b""), t.HandshakeFailure),
        (_client_hello([SV, MODES, PSKX()], suites=b"\x00\x01\x00\x02"), t.HandshakeFailure),
        (_client_hello([SV, MODES, PSKX()], compression=b""), t.IllegalParameter),
        (_client_hello([SV, MODES, PSKX()], compression=b"\x00\x01"), t.IllegalParameter),
        (_client_hello([SV, t._ext(45, t._vec(1, b"\xab")), PSKX()]), t.HandshakeFailure),
        (_client_hello([SV, MODES, PSKX([b"wrong psk"])]), t.UnknownPskIdentity),
        (_client_hello([SV, MODES, PSKX([])]), t.UnknownPskIdentity),
        (_client_hello([SV, MODES, PSKX()], psk=None), t.DecryptError),  # unsigned binder
        (_client_hello([SV, MODES, PSKX()], psk=b"other"), t.DecryptError),
        (_client_hello([SV, MODES, PSKX([PSK_ID, b"x"], [bytes(32)])]), t.IllegalParameter),
        (_client_hello([SV, MODES, PSKX([PSK_ID], [bytes(32)] * 2)]), t.IllegalParameter),
        (_client_hello([SV, MODES, PSKX([PSK_ID], [bytes(24)])]), t.IllegalParameter),
        (_client_hello([SV, MODES, PSKX()], trailer=bytes(12)), t.DecodeError),
        (_client_hello([SV, MODES, SV, PSKX()]), t.DecodeError),
    ],
    ids=_ids,
)
def test_server_rejects_bad_client_hello(record: bytes, error: type[Exception]) -> None:
    s = ServerConnection(PSK, PSK_ID)
    with pytest.raises(error):
        s.receive_record(record)


def test_server_accepts_reordered_extensions_and_empty_session_id() -> None:
    s = ServerConnection(PSK, PSK_ID)
    assert s.receive_record(_client_hello([MODES, t._ext(99, b"zz"), SV, PSKX()])) == []
    assert len(s.data_to_send()) == 2  # no session id → no CCS


# --- close and alerts ---------------------------------------------------------------------


def test_half_close_each_direction() -> None:
    c, s = ClientConnection(PSK, "x"), ServerConnection(PSK, "x")
    pump(c, s)
    (close,) = c.close()
    assert c.close() == []  # idempotent
    with pytest.raises(t.ConnectionClosedError):
        c.send_data(b"after close")
    assert s.receive_record(close) == [Closed()]
    assert s.peer_closed and not s.ended
    with pytest.raises(t.ConnectionClosedError):
        s.receive_record(close)
    (rec,) = s.send_data(b"still talking")  # the other direction stays open
    assert c.receive_record(rec) == [Data(b"still talking")]
    assert c.receive_record(s.close()[0]) == [Closed()]
    assert c.ended and s.ended


def test_close_mid_handshake() -> None:
    c, s = vector_client(), vector_server()
    s.receive_record(c.data_to_send()[0])
    c.receive_record(s.data_to_send()[0])  # ServerHello only
    (close,) = c.close()  # encrypted under the client handshake key
    assert close[0] == 23
    assert s.receive_record(close) == [Closed()]
    assert s.state is State.SERVER_WAIT_FINISHED
    (close,) = ServerConnection(PSK, PSK_ID).close()
    assert close == plaintext(21, b"\x01\x00")  # before any key: plaintext


def test_alerts_after_handshake() -> None:
    c = connected_vector_client()
    secret = c._ks.server_application_traffic_secret
    with pytest.raises(t.IllegalParameter):
        c.receive_record(seal(secret, 0, b"\x02\x00", 21))  # close_notify must be a warning
    c = connected_vector_client()
    with pytest.raises(t.PeerAlert) as info:
        c.receive_record(seal(secret, 0, b"\x02\x50", 21))
    assert info.value.description == 80 and c.state is State.ERROR
    assert c.data_to_send() == []
    c = connected_vector_client()
    with pytest.raises(t.PeerAlert):
        c.receive_record(seal(secret, 0, b"\x01\x0a", 21))  # TLS 1.3: every other alert is fatal
    c = connected_vector_client()
    with pytest.raises(t.DecodeError):
        c.receive_record(seal(secret, 0, b"\x01\x00\x00", 21))


def test_new_session_ticket_is_ignored_by_client_only() -> None:
    c = connected_vector_client()
    secret = c._ks.server_application_traffic_secret
    nst = t._handshake(4, bytes(8) + t._vec(1, bytes(32)) + t._vec(2, bytes(32)) + t._vec(2, b""))
    assert c.receive_record(seal(secret, 0, nst, 22)) == []
    assert c.receive_record(seal(secret, 1, b"ok", 23)) == [Data(b"ok")]
    bad = t._handshake(4, bytes(8) + t._vec(1, b"") + t._vec(2, b"") + t._vec(2, b""))
    with pytest.raises(t.DecodeError):
        c.receive_record(seal(secret, 2, bad, 22))
    s = connected_vector_server()
    with pytest.raises(t.UnexpectedMessage):
        s.receive_record(seal(s._ks.client_application_traffic_secret, 0, nst, 22))


def test_sequence_number_exhaustion() -> None:
    c, s = ClientConnection(PSK, "x"), ServerConnection(PSK, "x")
    pump(c, s)
    assert c._send_cipher is not None
    c._send_cipher.seq = t.MAX_SEQUENCE
    with pytest.raises(t.InternalError):
        c.send_data(b"one too many")
    assert c.state is State.ERROR and c.data_to_send() == []


def test_constructor_validation() -> None:
    with pytest.raises(t.LocalProtocolError):
        ClientConnection(b"", "x")
    with pytest.raises(t.LocalProtocolError):
        ServerConnection(PSK, b"")
    with pytest.raises(t.LocalProtocolError):
        ClientConnection(PSK, "x", random=lambda n: b"short")


# --- property: garbage in, only our own errors out ----------------------------------------


def _fresh_states() -> list[Callable[[], t.Connection]]:
    def server_mid() -> t.Connection:
        s = vector_server()
        s.receive_record(V["CLIENT_HELLO"])
        s.data_to_send()
        return s

    def client_mid() -> t.Connection:
        c = vector_client()
        c.data_to_send()
        c.receive_record(V["SERVER_HELLO"])
        return c

    return [vector_client, vector_server, server_mid, client_mid,
            connected_vector_client, connected_vector_server]


def _record_like() -> st.SearchStrategy[bytes]:
    header = st.tuples(st.sampled_from([20, 21, 22, 23, 24, 0]),
                       st.sampled_from([b"\x03\x03", b"\x03\x01", b"\x03\x04"]),
                       st.binary(max_size=400))
    return st.one_of(
        st.binary(max_size=600),
        header.map(lambda h: bytes([h[0]]) + h[1] + len(h[2]).to_bytes(2, "big") + h[2]),
        # Mutations of real records reach the message parsers.
        st.tuples(st.sampled_from([V["CLIENT_HELLO"], V["EXTENDED_CLIENT_HELLO"],
                                   V["SERVER_HELLO"], V["CLIENT_APP_DATA"]]),
                  st.integers(0, 800), st.integers(0, 255))
        .map(lambda m: m[0][: m[1] % len(m[0])] + bytes([m[2]]) + m[0][m[1] % len(m[0]) + 1:]),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, 5), records=st.lists(_record_like(), min_size=1, max_size=4))
def test_garbage_only_raises_module_errors(which: int, records: list[bytes]) -> None:
    conn = _fresh_states()[which]()
    conn.data_to_send()
    for rec in records:
        try:
            events = conn.receive_record(rec)
        except t.TLSPSKError:
            pass
        else:
            assert all(isinstance(e, HandshakeComplete | Data | Closed) for e in events)
        for out in conn.data_to_send():
            # Alerts, handshake and application records; plus the middlebox-compatibility
            # ChangeCipherSpec (20) a server sends after a ClientHello that parsed.
            assert out[0] in (20, 21, 22, 23)


@settings(max_examples=120, deadline=None)
@given(content=st.binary(max_size=300), ctype=st.integers(0, 255), which=st.integers(0, 1))
def test_garbage_inside_valid_encryption_only_raises_module_errors(
    content: bytes, ctype: int, which: int
) -> None:
    # Authenticated garbage reaches the handshake/alert parsers behind the AEAD.
    if which == 0:
        conn: t.Connection = vector_client()
        conn.receive_record(V["SERVER_HELLO"])
        secret = conn._ks.server_handshake_traffic_secret
    else:
        conn = connected_vector_server()
        secret = conn._ks.client_application_traffic_secret
    try:
        conn.receive_record(seal(secret, 0, content, ctype))
    except t.TLSPSKError:
        pass
