"""`foxden user add/list` as real processes, then a sign-in against the account they made."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from fxa.core import Client

from appliance import cli
from appliance.users import UserError

FOXDEN = [sys.executable, "-m", "appliance"]
PASSWORD = "pässwörd secret"


def foxden(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*FOXDEN, "--data-dir", str(tmp_path / "data"), "--config-dir", str(tmp_path / "config"),
         "user", *args],
        input=stdin, capture_output=True, text=True, timeout=120)


async def test_add_list_and_sign_in(tmp_path: Path, nursery: trio.Nursery) -> None:
    made = foxden(tmp_path, "add", "Ann@example.org", "--password-stdin", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert "Ann@example.org" in made.stdout
    v1 = foxden(tmp_path, "add", "old@example.org", "--password-stdin", "--key-stretch", "1",
                stdin=PASSWORD)
    assert v1.returncode == 0, v1.stderr
    for out in (made, v1):
        assert PASSWORD not in out.stdout + out.stderr

    listed = foxden(tmp_path, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["email"], r["keyStretchVersion"]) for r in rows] == [
        ("Ann@example.org", 2), ("old@example.org", 1)]
    assert all(len(r["uid"]) == 32 and r["sessions"] == 0 for r in rows)
    text = foxden(tmp_path, "list")
    assert text.returncode == 0 and "old@example.org" in text.stdout

    # A server over the same data dir signs both in, with either stretching.
    from tests.server.accounts.helpers import start

    srv = await start(tmp_path, nursery)
    try:
        for email in ("Ann@example.org", "old@example.org"):
            for version in (1, 2):
                client = Client(srv.url, key_stretch_version=version)
                session = await trio.to_thread.run_sync(
                    lambda c=client, e=email: c.login(e, PASSWORD, keys=True))
                await trio.to_thread.run_sync(session.fetch_keys)
    finally:
        srv.live.cancel.cancel()


def test_refusals(tmp_path: Path) -> None:
    ok = foxden(tmp_path, "add", "a@example.org", "--password-stdin", stdin=PASSWORD)
    assert ok.returncode == 0, ok.stderr
    for args, stdin, message in [
        (["add", "a@example.org", "--password-stdin"], PASSWORD, "already exists"),
        (["add", "A@EXAMPLE.ORG", "--password-stdin"], PASSWORD, "already exists"),
        (["add", "not-an-email", "--password-stdin"], PASSWORD, "not a usable email"),
        (["add", "b@example.org", "--password-stdin"], "short", "at least 8"),
        (["add", "b@example.org"], PASSWORD, "--password-stdin"),  # stdin is no terminal
    ]:
        r = foxden(tmp_path, *args, stdin=stdin)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr
        assert PASSWORD not in r.stdout + r.stderr


def test_prompted_password(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["one password", "one password", "first one", "second one"])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(cli.sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(cli.sys.stdin, "isatty", lambda: True)
    assert cli._read_password(False) == "one password"
    with pytest.raises(UserError, match="differ"):
        cli._read_password(False)
