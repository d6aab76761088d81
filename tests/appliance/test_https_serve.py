"""`foxden serve` with its own CA: HTTPS that validates for every name, the hand-off page."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from appliance import tls


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def https_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    port, http_port = _free_port(), _free_port()
    env = {**os.environ, "FOXDEN_MDNS": "false",  # never announce on real interfaces
           "FOXDEN_HTTP_LISTEN": f"127.0.0.1:{http_port}"}
    # 0.0.0.0 makes the plan a LAN one (handoff page, LAN names in the certificate); every
    # request the test sends still goes to 127.0.0.1.
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "--data-dir", str(tmp_path / "data"), "serve",
         "--listen", f"0.0.0.0:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ca = tmp_path / "data" / "tls" / "ca.pem"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        if ca.exists():
            try:
                ctx = ssl.create_default_context(cafile=str(ca))
                with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost"):
                        break
            except (OSError, ssl.SSLError):
                pass
        time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError("HTTPS did not come up")
    yield proc, port, http_port, tmp_path / "data"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    finally:
        proc.kill()


def test_certificate_validates_for_every_name(https_server) -> None:  # type: ignore[no-untyped-def]
    proc, port, _, data = https_server
    ca_path = data / "tls" / "ca.pem"
    cert = x509.load_pem_x509_certificate((data / "tls" / "server.pem").read_bytes())
    dns, ips = tls.cert_names(cert)
    label = socket.gethostname().split(".")[0].lower()
    assert {f"{label}.local", "localhost"} <= dns
    assert ipaddress.ip_address("127.0.0.1") in ips
    ctx = ssl.create_default_context(cafile=str(ca_path))
    # Connect to loopback only, but verify the certificate as each name would.
    for name in sorted(dns) + [str(ip) for ip in ips if ip.version == 4]:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=name) as s:
                assert s.version() == "TLSv1.3" or s.version() == "TLSv1.2", name
        verify = ["-verify_ip", name] if _is_ip(name) else ["-verify_hostname", name]
        r = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(ca_path),
             "-verify_return_error", *verify, *([] if _is_ip(name) else ["-servername", name])],
            input="", capture_output=True, text=True, timeout=20)
        assert "Verify return code: 0 (ok)" in r.stdout, (name, r.stdout[-500:], r.stderr)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def test_discovery_uses_public_url_and_heartbeat_over_https(https_server) -> None:  # type: ignore[no-untyped-def]
    proc, port, _, data = https_server
    label = socket.gethostname().split(".")[0].lower()
    expected = f"https://{label}.local:{port}"
    transport = httpx.HTTPTransport(verify=ssl.create_default_context(
        cafile=str(data / "tls" / "ca.pem")))
    # Resolve <label>.local to loopback ourselves: no mDNS, no traffic off the machine.
    with httpx.Client(transport=transport, timeout=10) as c:
        r = c.get(f"https://localhost:{port}/__heartbeat__")
        assert r.status_code == 200
        r = c.get(f"https://localhost:{port}/.well-known/fxa-client-configuration")
        assert r.status_code == 200
        doc = r.json()
        for key in ("auth_server_base_url", "oauth_server_base_url",
                    "profile_server_base_url", "sync_tokenserver_base_url"):
            assert doc[key] == expected, (key, doc)
        assert doc["pairing_server_base_uri"] == f"wss://{label}.local:{port}"


def test_handoff_page_serves_ca_and_redirects(https_server) -> None:  # type: ignore[no-untyped-def]
    proc, port, http_port, data = https_server
    with httpx.Client(timeout=10, follow_redirects=False) as c:
        page = c.get(f"http://127.0.0.1:{http_port}/")
        assert page.status_code == 200 and "Android" in page.text and "iPhone" in page.text
        ca = tls.ensure_ca(data / "tls", "x")
        assert ca.fingerprint in page.text
        pem = c.get(f"http://127.0.0.1:{http_port}/ca.pem")
        assert pem.content == (data / "tls" / "ca.pem").read_bytes()
        r = c.get(f"http://127.0.0.1:{http_port}/settings?x=1")
        assert r.status_code == 301
        assert r.headers["location"].endswith(f":{port}/settings?x=1")
        assert r.headers["location"].startswith("https://")


def test_own_certificate_for_a_real_domain(tmp_path: Path) -> None:
    # A certificate the user brings (here from a throw-away CA standing in for a public one).
    other = tls.ensure_ca(tmp_path / "their-ca", "x", extra_dns=("home.example",))
    cert = tls.issue_server_cert(other, tmp_path / "theirs", {"foxden.home.example"}, set())
    cfg = tmp_path / "data.config"
    cfg.mkdir()
    (cfg / "foxden.toml").write_text(
        f'public_name = "foxden.home.example"\ncert_file = "{cert}"\nkey_file = "{cert}"\n'
        'http_listen = "off"\n')
    port = _free_port()
    env = {**os.environ, "FOXDEN_MDNS": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "--data-dir", str(tmp_path / "data"), "serve",
         "--listen", f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env)
    try:
        ctx = ssl.create_default_context(cafile=str(other.cert_path))
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                    with ctx.wrap_socket(raw, server_hostname="foxden.home.example") as s:
                        assert s.version()
                        break
            except (OSError, ssl.SSLError):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert not (tmp_path / "data" / "tls" / "server.pem").exists()  # no local CA cert
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert "https://foxden.home.example:" in out
