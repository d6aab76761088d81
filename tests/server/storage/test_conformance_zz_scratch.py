from hypothesis import given, settings, HealthCheck, strategies as st

async def test_a(server):
    async with server.storage_client(1) as c:
        r = await c.get("/info/collections")
        print(r.status_code, r.text, dict(r.headers))
    async with server.client() as c:
        r = await c.get("/__heartbeat__")
        print(r.status_code, r.text, dict(r.headers))

@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=st.integers())
async def test_h(server, x):
    async with server.client() as c:
        r = await c.get("/__lbheartbeat__")
        assert r.status_code == 200
