"""The local CA and server certificate: real TLS handshakes against them."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from appliance import tls

LOOP4 = ipaddress.ip_address("127.0.0.1")
LOOP6 = ipaddress.ip_address("::1")


def test_ca_created_once_with_private_key(tmp_path: Path) -> None:
    ca = tls.ensure_ca(tmp_path, "kitchen-pc")
    assert (tmp_path / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    again = tls.ensure_ca(tmp_path, "kitchen-pc")
    assert again.fingerprint == ca.fingerprint
    assert len(ca.fingerprint.split(":")) == 32
    bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0


def test_reissue_rules(tmp_path: Path) -> None:
    ca = tls.ensure_ca(tmp_path, "kitchen-pc")
    path = tmp_path / "server.pem"
    names = {"kitchen-pc.local", "kitchen-pc", "localhost"}
    assert tls.needs_issue(path, ca, names, {LOOP4}) == "no certificate yet"
    tls.issue_server_cert(ca, tmp_path, names, {LOOP4})
    assert path.stat().st_mode & 0o777 == 0o600
    assert tls.needs_issue(path, ca, names, {LOOP4}) is None
    assert tls.needs_issue(path, ca, names, {LOOP4, LOOP6}) == "names or addresses changed"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=tls.CERT_DAYS - 10)
    assert tls.needs_issue(path, ca, names, {LOOP4}, now=later) == "expires soon"
    other = tls.ensure_ca(tmp_path / "other", "x")
    assert tls.needs_issue(path, other, names, {LOOP4}) == "issued by another CA"


def _serve_once(cert: Path) -> int:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert)
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def run() -> None:
        srv.settimeout(10)
        for _ in range(4):
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True) as s:
                    s.recv(1)
            except (ssl.SSLError, OSError):
                pass
        srv.close()

    threading.Thread(target=run, daemon=True).start()
    return port


@pytest.mark.parametrize("name", ["kitchen-pc.local", "localhost", "127.0.0.1"])
def test_handshake_validates_against_ca(tmp_path: Path, name: str) -> None:
    ca = tls.ensure_ca(tmp_path, "kitchen-pc")
    cert = tls.issue_server_cert(ca, tmp_path, {"kitchen-pc.local", "localhost"}, {LOOP4})
    port = _serve_once(cert)
    client = ssl.create_default_context(cafile=str(ca.cert_path))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client.wrap_socket(raw, server_hostname=name) as s:
            assert s.version() in ("TLSv1.2", "TLSv1.3")
            s.send(b"x")


def test_wrong_name_is_refused(tmp_path: Path) -> None:
    ca = tls.ensure_ca(tmp_path, "kitchen-pc")
    cert = tls.issue_server_cert(ca, tmp_path, {"kitchen-pc.local"}, {LOOP4})
    port = _serve_once(cert)
    client = ssl.create_default_context(cafile=str(ca.cert_path))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            client.wrap_socket(raw, server_hostname="example.com")


def test_name_constraints_block_public_names(tmp_path: Path) -> None:
    # Even if the CA key were used to sign a public name, verifiers reject the chain.
    ca = tls.ensure_ca(tmp_path, "kitchen-pc")
    cert = tls.issue_server_cert(ca, tmp_path, {"www.example.com"}, set())
    port = _serve_once(cert)
    client = ssl.create_default_context(cafile=str(ca.cert_path))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            client.wrap_socket(raw, server_hostname="www.example.com")
