"""Failed-password throttling: the in-memory structure with a fake clock, then the routes."""

from __future__ import annotations

from server.accounts.throttle import Limits, LoginThrottle

from .helpers import AccountsServer, add_account, assert_fxa_error, creds_v1, login

EMAIL, PASSWORD = "t@example.org", "the password"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_limits_and_expiry() -> None:
    clock = FakeClock()
    t = LoginThrottle(Limits(per_account=3, per_address=5, window_seconds=60), clock)
    for _ in range(2):
        t.failure("10.0.0.2", "u1")
    assert t.account_limited("u1") is None
    clock.now += 10
    t.failure("10.0.0.2", "u1")
    assert t.account_limited("u1") == 50          # the oldest failure leaves in 50 s
    assert t.address_blocked("10.0.0.2") is None
    t.failure("10.0.0.2")
    t.failure("10.0.0.2")
    assert t.address_blocked("10.0.0.2") == 50
    assert t.address_blocked("10.0.0.3") is None
    clock.now += 50
    assert t.account_limited("u1") is None and t.address_blocked("10.0.0.2") is None
    # Expired keys are dropped when next looked at.
    clock.now += 60
    assert t.account_limited("u1") is None and t.address_blocked("10.0.0.2") is None
    assert t.sizes() == (0, 0)


def test_success_clears_the_account_not_the_address() -> None:
    clock = FakeClock()
    t = LoginThrottle(Limits(per_account=2, per_address=2, window_seconds=60), clock)
    t.failure("a", "u")
    t.failure("a", "u")
    t.success("u")
    assert t.account_limited("u") is None
    assert t.address_blocked("a") == 60


def test_memory_is_bounded() -> None:
    clock = FakeClock()
    t = LoginThrottle(Limits(per_account=5, per_address=5, window_seconds=60, max_keys=100),
                      clock)
    for i in range(10_000):
        t.failure(f"10.{i // 256}.{i % 256}.1", f"user{i}")
        for _ in range(3):
            t.failure("10.9.9.9", "hot")
    accounts, addresses = t.sizes()
    assert accounts <= 100 and addresses <= 100
    # The hot keys were used most recently, so they are still there, with ≤ limit entries.
    assert t.address_blocked("10.9.9.9") == 60 and t.account_limited("hot") == 60


async def test_owner_is_never_locked_out(srv: AccountsServer) -> None:
    clock = FakeClock()
    srv.accounts.throttle.clock = clock
    await add_account(srv.db, EMAIL, PASSWORD)
    wrong = {"email": EMAIL, "authPW": creds_v1(EMAIL, "guess guess").auth_pw.hex()}
    async with srv.client() as c:
        for _ in range(5):
            assert_fxa_error(await c.post("/v1/account/login", json=wrong), 400, 103)
        limited = await c.post("/v1/account/login", json=wrong)
        body = assert_fxa_error(limited, 429, 114)
        assert body["retryAfter"] == 900 and limited.headers["retry-after"] == "900"
        clock.now += 100
        r = await c.post("/v1/account/login", json=wrong)
        assert assert_fxa_error(r, 429, 114)["retryAfter"] == 800
        # The right password still logs in while wrong ones are refused.
        await login(c, EMAIL, PASSWORD, keys=False)
        # ... and clears the account's counter.
        assert_fxa_error(await c.post("/v1/account/login", json=wrong), 400, 103)


async def test_address_limit_stops_before_the_password_check(srv: AccountsServer) -> None:
    clock = FakeClock()
    srv.accounts.throttle.clock = clock
    await add_account(srv.db, EMAIL, PASSWORD)
    async with srv.client() as c:
        # Unknown accounts count too (spraying / enumeration); they cost no scrypt.
        for i in range(20):
            r = await c.post("/v1/account/login", json={"email": f"n{i}@example.org",
                                                        "authPW": "00" * 32})
            assert_fxa_error(r, 400, 102)
        right = {"email": EMAIL, "authPW": creds_v1(EMAIL, PASSWORD).auth_pw.hex()}
        blocked = await c.post("/v1/account/login", json=right)
        assert assert_fxa_error(blocked, 429, 114)["retryAfter"] == 900
        for path, body in [("/v1/password/change/start",
                            {"email": EMAIL, "oldAuthPW": right["authPW"]})]:
            assert_fxa_error(await c.post(path, json=body), 429, 114)
        clock.now += 901
        await login(c, EMAIL, PASSWORD, keys=False)


async def test_other_password_checks_count(srv: AccountsServer) -> None:
    clock = FakeClock()
    srv.accounts.throttle.clock = clock
    await add_account(srv.db, EMAIL, PASSWORD)
    bad = creds_v1(EMAIL, "wrong wrong").auth_pw.hex()
    async with srv.client() as c:
        session = (await login(c, EMAIL, PASSWORD, keys=False))["sessionToken"]
        for _ in range(3):
            assert_fxa_error(await c.post("/v1/password/change/start",
                                          json={"email": EMAIL, "oldAuthPW": bad}), 400, 103)
    async with srv.hawk(session) as h:
        for _ in range(2):
            assert_fxa_error(await h.post("/v1/account/destroy",
                                          json={"email": EMAIL, "authPW": bad}), 400, 103)
        assert_fxa_error(await h.post("/v1/account/destroy",
                                      json={"email": EMAIL, "authPW": bad}), 429, 114)
    # A wrong-case email is a failed check too (it must not be a free guess).
    async with srv.client() as c:
        r = await c.post("/v1/account/login", json={"email": EMAIL.upper(), "authPW": bad})
        assert_fxa_error(r, 429, 114)
