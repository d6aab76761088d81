"""The supplicant's JS TLS-PSK (server/web/static/pairing/tlspsk.js): its node suite, and
interop with the Python engine in both roles through tests/web/pairing/peer.mjs."""

from __future__ import annotations

import json
import re
import subprocess

from appliance.pairing import tlspsk
from tests.appliance.pairing.nodepeer import (
    ROOT,
    VECTORS,
    NodePeer,
    handshake_with_python,
    node_binary,
    py_events,
)

V = VECTORS
PSK = bytes(range(32))
CHANNEL_ID = b"Zm94ZGVuLXRlc3QtY2hhbg"


def test_node_suite_passes() -> None:
    proc = subprocess.run(
        [node_binary(), "--test", "--test-reporter=tap", "tests/web/pairing/"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    ran = re.search(r"^# tests (\d+)$", proc.stdout, re.M)
    assert ran and int(ran.group(1)) > 0, "node ran no tests:\n" + proc.stdout[-2000:]
    assert re.search(r"^# fail 0$", proc.stdout, re.M), proc.stdout[-4000:]


def test_vectors_js_client_python_server() -> None:
    # Both sides deterministic: every record on the wire must be the published one.
    server = tlspsk.ServerConnection(V["PSK"], V["PSK_ID"], random=lambda n: V["SERVER_RANDOM"])
    with NodePeer("ours", "client", V["PSK"], V["PSK_ID"],
                  randoms=[V["CLIENT_RANDOM"], V["SESSION_ID"]]) as client:
        assert client.initial.records == [V["CLIENT_HELLO"]]
        server.receive_record(V["CLIENT_HELLO"])
        flight = server.data_to_send()
        replies = [client.recv(rec) for rec in flight]
        assert replies[-1].records == [V["CLIENT_FINISHED"]]
        assert replies[-1].events == [("handshake", None)]
        assert server.receive_record(V["CLIENT_FINISHED"]) == [tlspsk.HandshakeComplete()]
        assert client.send(V["CLIENT_RAW_APP_DATA"]).records == [V["CLIENT_APP_DATA"]]
        assert client.recv(server.send_data(V["SERVER_RAW_APP_DATA"])[0]).events == [
            ("data", V["SERVER_RAW_APP_DATA"])]


def _exchange(py: tlspsk.Connection, peer: NodePeer) -> None:
    py_seen, peer_seen = handshake_with_python(py, peer)
    assert py_seen == [("handshake", None)] and peer_seen == [("handshake", None)]
    request = json.dumps({"message": "pair:supp:request", "data": {"state": "abc"}}).encode()
    (rec,) = peer.send(request).records
    assert py.receive_record(rec) == [tlspsk.Data(request)]
    reply = json.dumps({"message": "pair:auth:metadata", "data": {"email": "a@b.c"}}).encode()
    (rec,) = py.send_data(reply)
    assert peer.recv(rec).events == [("data", reply)]
    big = b'"' + b"x" * (tlspsk.MAX_PLAINTEXT - 2) + b'"'
    assert peer.recv(py.send_data(big)[0]).events == [("data", big)]
    (rec,) = peer.send(big).records
    assert py.receive_record(rec) == [tlspsk.Data(big)]
    (close,) = py.close()
    assert peer.recv(close).events == [("closed", None)]
    (close,) = peer.close().records
    assert py_events(py.receive_record(close)) == [("closed", None)]
    assert py.ended


def test_python_server_js_client() -> None:
    with NodePeer("ours", "client", PSK, CHANNEL_ID) as client:
        _exchange(tlspsk.ServerConnection(PSK, CHANNEL_ID), client)


def test_python_client_js_server() -> None:
    with NodePeer("ours", "server", PSK, CHANNEL_ID) as server:
        _exchange(tlspsk.ClientConnection(PSK, CHANNEL_ID), server)


def test_wrong_psk_across_implementations() -> None:
    with NodePeer("ours", "client", b"\x01" * 32, CHANNEL_ID) as client:
        server = tlspsk.ServerConnection(b"\x02" * 32, CHANNEL_ID)
        try:
            server.receive_record(client.initial.records[0])
        except tlspsk.DecryptError:
            pass
        else:
            raise AssertionError("binder accepted with the wrong PSK")
        reply = client.recv(server.data_to_send()[0])
        assert reply.error == ("PeerAlert", "51") and reply.records == []
    with NodePeer("ours", "server", b"\x02" * 32, CHANNEL_ID) as server_js:
        client_py = tlspsk.ClientConnection(b"\x01" * 32, CHANNEL_ID)
        reply = server_js.recv(client_py.data_to_send()[0])
        assert reply.error == ("TLSAlertError", "51")
        try:
            client_py.receive_record(reply.records[0])
        except tlspsk.PeerAlert as exc:
            assert exc.description == tlspsk.AlertDescription.DECRYPT_ERROR
        else:
            raise AssertionError("client did not see the alert")
