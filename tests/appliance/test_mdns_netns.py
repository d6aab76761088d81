"""mDNS across two network namespaces: B discovers the Foxden announced in A and reaches
its heartbeat over HTTPS, validating the certificate for the announced name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import netns

BROWSER = r"""
import json, socket, ssl, sys, time
sys.path.insert(0, sys.argv[1])
from appliance import mdns
found = []
deadline = time.monotonic() + 20
while not found and time.monotonic() < deadline:
    found = mdns.discover(timeout=2.0)
if not found:
    print(json.dumps({"error": "nothing found"})); sys.exit(1)
f = found[0]
ctx = ssl.create_default_context(cafile=sys.argv[2])
host = f.server.rstrip(".")
with socket.create_connection((f.addresses[0], f.port), timeout=5) as raw:
    with ctx.wrap_socket(raw, server_hostname=host) as s:
        req = f"GET /__heartbeat__ HTTP/1.1\r\nHost: {host}:{f.port}\r\n"
        s.sendall((req + "Connection: close\r\n\r\n").encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
print(json.dumps({"name": f.name, "server": f.server, "port": f.port,
                  "addresses": list(f.addresses), "props": f.properties,
                  "status": data.split(b"\r\n", 1)[0].decode(),
                  "body": data.split(b"\r\n\r\n", 1)[1].decode(errors="replace")}))
"""


@pytest.fixture
def pair():  # type: ignore[no-untyped-def]
    why = netns.available()
    if why:
        pytest.fail(f"this test needs network namespaces: {why}")
    with netns.veth_pair() as p:
        yield p


def test_discovered_across_namespaces(pair: netns.NetPair, tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "FOXDEN_HTTP_LISTEN": "off", "PYTHONPATH": root}
    server = pair.run_in(pair.a, [sys.executable, "-m", "appliance", "--data-dir",
                                  str(tmp_path / "data"), "serve", "--listen", "0.0.0.0:8443"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        ca = tmp_path / "data" / "tls" / "ca.pem"
        deadline = time.monotonic() + 30
        while not ca.exists() and time.monotonic() < deadline:
            assert server.poll() is None, server.communicate()[1]
            time.sleep(0.1)
        time.sleep(1.0)
        browser = pair.run_in(pair.b, [sys.executable, "-c", BROWSER, root, str(ca)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        out, err = browser.communicate(timeout=60)
        assert browser.returncode == 0, (out, err, server.poll())
        result = json.loads(out.strip().splitlines()[-1])
        assert result["status"].split()[1] == "200", result
        assert json.loads(result["body"])["database"] == "Ok"
        assert result["addresses"] == [pair.addr_a]
        assert result["port"] == 8443
        props = result["props"]
        assert props["url"].startswith("https://") and props["url"].endswith(".local:8443")
        assert props["version"]
        from appliance import tls
        fp = tls.ensure_ca(tmp_path / "data" / "tls", "x").fingerprint
        assert props["ca_sha256"] == fp.replace(":", "").lower()
    finally:
        server.terminate()
        try:
            _, err = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0, err
    assert "Traceback" not in err


CONFLICT = r"""
import ipaddress, json, sys
sys.path.insert(0, sys.argv[1])
from appliance import mdns
addr = ipaddress.ip_address(sys.argv[2])
names = []
ads = []
for port in (8443, 9443):
    ann = mdns.Announcement(instance="Foxden on twin", host_label="twin", port=port,
                            addresses=(addr,), public_url=f"https://twin.local:{port}",
                            version="t")
    ad = mdns.Advertiser(interfaces=[str(addr)])
    names.append(ad.register(ann))
    ads.append(ad)
found = sorted((f.name, f.port) for f in mdns.discover(timeout=3.0))
for ad in ads:
    ad.close()
print(json.dumps({"names": names, "found": found}))
"""


def test_name_conflict_is_resolved(pair: netns.NetPair) -> None:
    root = str(Path(__file__).resolve().parents[2])
    proc = pair.run_in(pair.a, [sys.executable, "-c", CONFLICT, root, pair.addr_a],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    first, second = result["names"]
    assert first == "Foxden on twin._foxden._tcp.local."
    assert second and second != first  # renamed by probing, not an error
    assert {p for _, p in result["found"]} == {8443, 9443}
