"""Interop with Mozilla's own library, npm ``fxa-pairing-channel`` (what Firefox and FxA ship).

The package is installed for the tests only (never for the product) into pytest's cache dir,
once, and reused while its version matches. Its ``ClientConnection``/``ServerConnection``
(exported as ``_internals`` by the UMD bundle) run in node through tests/web/pairing/peer.mjs,
driven record by record over a pipe; no WebSocket is needed because the library hands every
record to a send callback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.pairing import tlspsk
from tests.appliance.pairing.nodepeer import (
    VECTORS,
    NodePeer,
    handshake_with_python,
    py_events,
    relay_node_peers,
)

PACKAGE, VERSION = "fxa-pairing-channel", "1.0.2"  # the version pairing.md was checked against
DIST = f"node_modules/{PACKAGE}/dist/FxAccountsPairingChannel.babel.umd.js"
V = VECTORS
PSK = bytes(range(100, 132))
CHANNEL_ID = b"AAECAwQFBgcICQoLDA0ODw"


def _installed(prefix: Path) -> bool:
    meta = prefix / "node_modules" / PACKAGE / "package.json"
    try:
        return json.loads(meta.read_text())["version"] == VERSION and (prefix / DIST).is_file()
    except (OSError, ValueError, KeyError):
        return False


@pytest.fixture(scope="session")
def fpc_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    cache = getattr(request.config, "cache", None)
    prefix = cache.mkdir("fxa-pairing-channel-npm") if cache else tmp_path_factory.mktemp("npm")
    if not _installed(prefix):
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is not installed; needed to fetch fxa-pairing-channel for interop")
        try:
            proc = subprocess.run(
                [npm, "install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund",
                 "--ignore-scripts", "--prefix", str(prefix), f"{PACKAGE}@{VERSION}"],
                capture_output=True, text=True, timeout=180,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"npm install {PACKAGE}@{VERSION} took over 180 s")
        if proc.returncode != 0 or not _installed(prefix):
            pytest.fail(f"npm install {PACKAGE}@{VERSION} failed:\n{proc.stdout}\n{proc.stderr}")
    return {"FXA_PAIRING_CHANNEL_DIST": str(prefix / DIST)}


def fpc(role: str, env: dict, psk: bytes = PSK, psk_id: bytes = CHANNEL_ID,
        randoms: list[bytes] | None = None) -> NodePeer:
    return NodePeer("fpc", role, psk, psk_id, randoms=randoms or [], env=env)


def msg(name: str, **data: object) -> bytes:
    return json.dumps({"message": name, "data": data}).encode()


def test_library_reproduces_the_vectors_with_our_python(fpc_env: dict) -> None:
    # Sanity: the installed library is the one the vectors describe, and our server's
    # deterministic flight is accepted by it.
    server = tlspsk.ServerConnection(V["PSK"], V["PSK_ID"], random=lambda n: V["SERVER_RANDOM"])
    with fpc("client", fpc_env, V["PSK"], V["PSK_ID"],
             [V["CLIENT_RANDOM"], V["SESSION_ID"]]) as client:
        assert client.initial.records == [V["CLIENT_HELLO"]]
        server.receive_record(V["CLIENT_HELLO"])
        replies = [client.recv(rec) for rec in server.data_to_send()]
        assert replies[-1].records == [V["CLIENT_FINISHED"]]
        assert server.receive_record(V["CLIENT_FINISHED"]) == [tlspsk.HandshakeComplete()]


@pytest.mark.parametrize("py_role", ["server", "client"])
def test_python_with_mozilla_library(fpc_env: dict, py_role: str) -> None:
    """Authority (server) and supplicant (client) roles, JSON both ways, max-size records."""
    py: tlspsk.Connection
    if py_role == "server":
        py, peer_role = tlspsk.ServerConnection(PSK, CHANNEL_ID), "client"
    else:
        py, peer_role = tlspsk.ClientConnection(PSK, CHANNEL_ID), "server"
    with fpc(peer_role, fpc_env) as peer:
        py_seen, peer_seen = handshake_with_python(py, peer)
        assert py_seen == [("handshake", None)] and peer_seen == [("handshake", None)]
        request = msg("pair:supp:request", client_id="a2270f727f45f648", state="s" * 22)
        (rec,) = peer.send(request).records
        assert json.loads(py.receive_record(rec)[0].data) == json.loads(request)
        for answer in (msg("pair:auth:metadata", email="x@example.org"),
                       msg("pair:auth:authorize", code="c" * 64, state="s" * 22)):
            (rec,) = py.send_data(answer)
            assert peer.recv(rec).events == [("data", answer)]
        big = json.dumps({"pad": "y" * (tlspsk.MAX_PLAINTEXT - 11)}).encode()
        assert len(big) == tlspsk.MAX_PLAINTEXT
        assert peer.recv(py.send_data(big)[0]).events == [("data", big)]
        (rec,) = peer.send(big).records
        assert py.receive_record(rec) == [tlspsk.Data(big)]
        # Desktop (the authority) ends with close_notify; FPC surfaces it as `close`.
        (close,) = py.close()
        assert peer.recv(close).events == [("closed", None)]
        (close,) = peer.close().records
        assert py_events(py.receive_record(close)) == [("closed", None)]


def test_wrong_psk_against_mozilla_library(fpc_env: dict) -> None:
    with fpc("client", fpc_env, psk=b"\x00" * 32) as client:
        server = tlspsk.ServerConnection(PSK, CHANNEL_ID)
        with pytest.raises(tlspsk.DecryptError):
            server.receive_record(client.initial.records[0])
        reply = client.recv(server.data_to_send()[0])
        assert reply.error == ("TLSError", "51")  # FPC's client fails with decrypt_error
    with fpc("server", fpc_env, psk=b"\x00" * 32) as server_fpc:
        client_py = tlspsk.ClientConnection(PSK, CHANNEL_ID)
        reply = server_fpc.recv(client_py.data_to_send()[0])
        assert reply.error == ("TLSError", "51") and len(reply.records) == 1
        with pytest.raises(tlspsk.PeerAlert) as info:
            client_py.receive_record(reply.records[0])
        assert info.value.description == tlspsk.AlertDescription.DECRYPT_ERROR


def test_mozilla_rejects_tampering_by_us_and_vice_versa(fpc_env: dict) -> None:
    server = tlspsk.ServerConnection(PSK, CHANNEL_ID)
    with fpc("client", fpc_env) as client:
        handshake_with_python(server, client)
        rec = bytearray(server.send_data(b'{"a":1}')[0])
        rec[-1] ^= 1
        reply = client.recv(bytes(rec))
        assert reply.error == ("TLSError", "20")  # bad_record_mac
        (alert,) = reply.records
        with pytest.raises(tlspsk.PeerAlert) as info:
            server.receive_record(alert)
        assert info.value.description == tlspsk.AlertDescription.BAD_RECORD_MAC


@pytest.mark.parametrize("ours", ["client", "server"])
def test_our_js_with_mozilla_library(fpc_env: dict, ours: str) -> None:
    """The supplicant page's JS as client against Mozilla's server (and the reverse)."""
    theirs = "server" if ours == "client" else "client"
    with NodePeer("ours", ours, PSK, CHANNEL_ID) as js, fpc(theirs, fpc_env) as moz:
        client, server = (js, moz) if ours == "client" else (moz, js)
        c_seen, s_seen = relay_node_peers(client, server)
        assert c_seen == [("handshake", None)] and s_seen == [("handshake", None)]
        request = msg("pair:supp:request", keys_jwk="e30")
        (rec,) = client.send(request).records
        assert server.recv(rec).events == [("data", request)]
        answer = msg("pair:auth:authorize", code="c" * 64)
        (rec,) = server.send(answer).records
        assert client.recv(rec).events == [("data", answer)]
        (rec,) = server.close().records
        assert client.recv(rec).events == [("closed", None)]
        (rec,) = client.close().records
        assert server.recv(rec).events == [("closed", None)]
