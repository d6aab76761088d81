"""Account deletion wipes everything of the account, Sync data included, and nothing else."""

from __future__ import annotations

from server.storage import store as storage_store
from server.storage.query import BsoIn
from server.tokenserver import rules as ts_rules
from server.tokenserver import store as ts_store

from .helpers import AccountsServer, add_account, creds_v1, login

PASSWORD = "delete me"


def _sync_user(conn, fxa_uid: str, now: int) -> int:  # type: ignore[no-untyped-def]
    email = ts_rules.email_for(fxa_uid, ts_rules.FXA_EMAIL_DOMAIN)
    uid = ts_store.insert_user(conn, email, generation=1, client_state="aa" * 16,
                               keys_changed_at=now, created_at=now)
    cid = storage_store.ensure_collection(conn, "bookmarks")
    storage_store.upsert(conn, uid, cid, BsoIn(id="b1", payload="{}"), now)
    return uid


def _count(conn, table: str, uid: object) -> int:  # type: ignore[no-untyped-def]
    return int(conn.execute(f"SELECT count(*) FROM {table} WHERE uid = ?",  # noqa: S608
                            (uid,)).fetchone()[0])


async def test_destroy_wipes_sync_data_tokens_devices(srv: AccountsServer) -> None:
    doomed = await add_account(srv.db, "doomed@example.org", PASSWORD)
    kept = await add_account(srv.db, "kept@example.org", PASSWORD)
    now = srv.accounts.now_ms()
    doomed_sync = await srv.db.write(lambda c: _sync_user(c, doomed.uid, now))
    kept_sync = await srv.db.write(lambda c: _sync_user(c, kept.uid, now))
    async with srv.client() as c:
        session = (await login(c, "doomed@example.org", PASSWORD))["sessionToken"]
        other = (await login(c, "kept@example.org", PASSWORD))["sessionToken"]
    async with srv.hawk(session) as h:
        target = (await h.post("/v1/account/device", json={
            "name": "d", "availableCommands": {"https://identity.mozilla.com/cmd/open-uri":
                                               "k"}})).json()
        await h.post("/v1/account/devices/invoke_command", json={
            "command": "https://identity.mozilla.com/cmd/open-uri", "target": target["id"],
            "payload": {"x": 1}})
    async with srv.hawk(other) as h:
        await h.post("/v1/account/device", json={"name": "k"})
    async with srv.hawk(session) as h:
        r = await h.post("/v1/account/destroy", json={
            "email": "doomed@example.org",
            "authPW": creds_v1("doomed@example.org", PASSWORD).auth_pw.hex()})
    assert r.status_code == 200, r.text

    def check(conn):  # type: ignore[no-untyped-def]
        email = ts_rules.email_for(doomed.uid, ts_rules.FXA_EMAIL_DOMAIN)
        assert ts_store.current_uid(conn, email) is None
        assert _count(conn, "storage_bso", doomed_sync) == 0
        for table in ("accounts", "fxa_tokens", "devices"):
            assert _count(conn, table, doomed.uid) == 0, table
        assert conn.execute("SELECT count(*) FROM device_commands").fetchone()[0] == 0
        # The other account is untouched.
        assert _count(conn, "storage_bso", kept_sync) == 1
        assert _count(conn, "devices", kept.uid) == 1
        assert _count(conn, "fxa_tokens", kept.uid) >= 1

    await srv.db.read(check)
