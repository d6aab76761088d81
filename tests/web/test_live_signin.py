"""The pages' sign-in, sign-up and settings flows (server/web/static/js/flow.js) run by node
against a real Foxden on loopback, with tests/web/fakefirefox.mjs as the browser: every
HAWK signature, the key bundle, keys_jwe, the code exchange and the tokenserver's X-KeyID
check are the real server's."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import trio

HERE = Path(__file__).resolve().parent
OLDSYNC = "https://identity.mozilla.com/apps/oldsync"


def node() -> str:
    path = shutil.which("node")
    assert path, "node is not installed: install Node.js 20 or newer (apt-get install nodejs)"
    return path


async def test_pages_flow_against_live_server(make_server) -> None:
    live = await make_server(signup_open=True)
    try:
        proc = await trio.run_process(
            [node(), str(HERE / "live-signin.mjs"), live.url],
            capture_stdout=True, capture_stderr=True, check=False, cwd=str(HERE.parents[1]))
    finally:
        live.cancel.cancel()
    assert proc.returncode == 0, proc.stderr.decode()
    r = json.loads(proc.stdout)
    order = ["fxaccounts:fxa_status", "fxaccounts:oauth_flow_is_active",
             "fxaccounts:can_link_account", "fxaccounts:login", "fxaccounts:oauth_login"]

    key = r["signup"]["key"]
    assert r["signup"]["commands"] == order
    assert key["kty"] == "oct" and key["scope"] == OLDSYNC
    assert re.fullmatch(r"[0-9]{13}-[A-Za-z0-9_-]{22}", key["kid"])
    assert r["signup"]["scope"].split() and OLDSYNC in r["signup"]["scope"].split()
    assert r["signup"]["services"] == {
        "sync": {"offeredEngines": ["addons", "bookmarks", "history", "passwords", "prefs",
                                    "tabs", "addresses", "creditcards"],
                 "declinedEngines": ["addresses"]}}
    for step in ("signup", "signin", "afterChange"):
        ts = r[step]["tokenserver"]
        assert ts["status"] == 200, (step, ts)
        assert ts["body"]["api_endpoint"].startswith(live.url)

    assert r["signin"]["commands"] == order
    assert r["signin"]["key"] == key, "same kB from a second sign-in"
    assert r["signin"]["email"] == "alice@example.org", "canonical email after errno 120"

    s = r["settings"]
    assert any(d["id"] == s["deviceA"] and not d["current"] for d in s["devices"])
    assert s["deviceA"] not in s["devicesAfter"]
    assert any(c["current"] for c in s["clients"])

    ch = r["change"]
    assert ch["newSessionToFirefox"] and ch["lastCommand"] == "fxaccounts:change_password"
    assert ch["newSessionStatus"] == "verified"
    assert ch["oldSessionErrno"] == 110 and ch["otherSessionErrno"] == 110
    assert r["oldPasswordErrno"] == 103
    assert r["afterChange"]["key"] == key, "the password change kept kB"

    assert r["signout"] == {"firefoxUser": None, "sessionErrno": 110,
                            "lastCommand": "fxaccounts:logout"}
    assert r["deleteWrongPasswordErrno"] == 103
    assert r["deleted"] == {"firefoxUser": None, "lastCommand": "fxaccounts:delete",
                            "loginErrno": 102}
    assert r["refused"] == {"kind": "link-refused", "commands": order[:3]}
