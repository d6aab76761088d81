from __future__ import annotations

import pytest

from appliance.languard import LanGuard, is_allowed


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3", "172.20.0.9", "192.168.1.20",
                                  "169.254.3.3", "::1", "fe80::1%eth0", "fd12::5",
                                  "::ffff:192.168.1.4", "100.64.1.1"])
def test_home_addresses_pass(host: str) -> None:
    assert is_allowed(host)


@pytest.mark.parametrize("host", ["8.8.8.8", "2001:db8::1", "172.32.0.1", "", None, "garbage",
                                  "::ffff:8.8.8.8"])
def test_others_are_refused(host: str | None) -> None:
    assert not is_allowed(host)


async def _call(app: LanGuard, client: tuple[str, int] | None, path: str = "/") -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(msg: dict) -> None:
        sent.append(msg)

    await app({"type": "http", "client": client, "path": path}, receive, send)
    return sent


async def test_middleware_refuses_public_and_passes_lan() -> None:
    reached: list[str] = []

    async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
        reached.append(scope["client"][0])

    guard = LanGuard(inner)
    sent = await _call(guard, ("8.8.4.4", 1234), "/v1/account/login")
    assert sent[0]["status"] == 403 and b'"errno": 125' in sent[1]["body"]
    assert reached == []
    await _call(guard, ("192.168.0.7", 1234))
    assert reached == ["192.168.0.7"]
    await _call(LanGuard(inner, allow_public=True), ("8.8.4.4", 1))
    assert reached[-1] == "8.8.4.4"
