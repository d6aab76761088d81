from tests.conftest import LiveServer


async def test_heartbeats(server: LiveServer) -> None:
    async with server.client() as c:
        r = await c.get("/__heartbeat__")
        assert r.status_code == 200 and r.json()["database"] == "Ok"
        r = await c.get("/__lbheartbeat__")
        assert r.status_code == 200 and r.json() == {}
        r = await c.get("/__version__")
        assert r.json()["version"] == server.settings.version


async def test_unknown_path_is_weave_404(server: LiveServer) -> None:
    async with server.client() as c:
        r = await c.get("/nope/nothing")
        assert r.status_code == 404 and r.text == "0"
