"""`--log-level debug` traces every request, and no secret reaches the terminal or the log
file: not the password, authPW, session or key-fetch tokens, storage token/key or payload."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from server.crypto import fxatokens, hawk, onepw

PASSWORD = "very secret household password"
EMAIL = "trace@example.org"
PAYLOAD = "payload-that-must-not-be-logged-3c1d"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_debug_trace_redacts(tmp_path: Path) -> None:
    env = {**os.environ, "FOXDEN_MDNS": "false", "FOXDEN_KEYRING": "off"}
    base = [sys.executable, "-m", "appliance", "--data-dir", str(tmp_path / "data")]
    r = subprocess.run([*base, "user", "add", EMAIL, "--password-stdin", "--key-stretch", "1"],
                       input=PASSWORD + "\n", capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([*base, "--log-level", "debug", "serve", "--listen",
                             f"127.0.0.1:{port}", "--tls", "off"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    secrets_seen: list[str] = [PASSWORD, PAYLOAD]
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/__lbheartbeat__", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        creds = onepw.client_credentials_v1(EMAIL, PASSWORD)
        secrets_seen.append(creds.auth_pw.hex())
        r = httpx.post(f"{url}/v1/account/login?keys=true",
                       json={"email": EMAIL, "authPW": creds.auth_pw.hex()})
        assert r.status_code == 200, r.text
        session, kft = r.json()["sessionToken"], r.json()["keyFetchToken"]
        secrets_seen += [session, kft]
        sid = fxatokens.derive(bytes.fromhex(session), "sessionToken")
        secrets_seen.append(sid.id)
        # A HAWK-signed call with a body, and a wrong password for a logged failure.
        body = json.dumps({"client_id": "5882386c6d801776", "grant_type": "fxa-credentials",
                           "scope": "https://identity.mozilla.com/apps/oldsync"}).encode()
        auth = hawk.sign_header(sid.hawk_key, sid.id, "POST", "/v1/oauth/token", "127.0.0.1",
                                port, int(time.time()), "bm9uY2U=",
                                content_type="application/json", body=body)
        r = httpx.post(f"{url}/v1/oauth/token", content=body,
                       headers={"Authorization": auth, "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        access = r.json()["access_token"]
        secrets_seen.append(access)
        r = httpx.post(f"{url}/v1/account/login", json={"email": EMAIL, "authPW": "ab" * 32})
        assert r.status_code == 400
        kft_id = fxatokens.derive(bytes.fromhex(kft), "keyFetchToken").id
        r = httpx.get(f"{url}/v1/account/keys", headers={"Authorization": f"Bearer fxk_{kft_id}"})
        assert r.status_code == 200, r.text
        secrets_seen.append(r.json()["bundle"])
        # Storage with a payload, through the token the tokenserver hands out.
        kid = "1234567890123-" + "AAAAAAAAAAAAAAAAAAAAAA"
        r = httpx.get(f"{url}/1.0/sync/1.5",
                      headers={"Authorization": f"Bearer {access}", "X-KeyID": kid})
        assert r.status_code == 200, r.text
        tok = r.json()
        secrets_seen += [tok["id"], tok["key"]]
        path = f"/1.5/{tok['uid']}/storage/history/rec1"
        body = json.dumps({"payload": PAYLOAD}).encode()
        auth = hawk.sign_header(tok["key"].encode(), tok["id"], "PUT", path, "127.0.0.1", port,
                                int(time.time()), "bm9uY2Uy")
        r = httpx.put(url + path, content=body,
                      headers={"Authorization": auth, "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    log_file = (tmp_path / "data" / "logs" / "foxden.log").read_text()
    everything = out + err + log_file
    assert "foxden.trace" in everything and "POST /v1/account/login" in everything
    assert "/v1/oauth/token" in everything
    for secret in secrets_seen:
        assert secret not in everything, secret[:12]
    assert "keys=true" in everything  # safe query parameters stay readable
