"""What lands on disk through the real server is unreadable without the key: plain sqlite3
cannot open it, and no BSO id, payload or account email appears as plain bytes."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
import trio

from appliance import users
from tests.conftest import LiveServer

BSO_ID = "findme-bso-id-7f3a"
PAYLOAD_MARK = "plaintext-payload-marker-91c2"
EMAIL = "findme.person@example.org"


async def test_nothing_readable_on_disk(server: LiveServer) -> None:
    await server.db.write(lambda c: None)  # the database exists and is migrated
    users_db = server.db
    await trio.to_thread.run_sync(lambda: users.add_user(
        users_db, EMAIL, "correct horse battery", now_ms=int(time.time() * 1000),
        key_stretch=1))
    async with server.storage_client(4242) as c:
        r = await c.put(f"/storage/bookmarks/{BSO_ID}",
                        content=json.dumps({"payload": PAYLOAD_MARK}),
                        headers={"Content-Type": "application/json"})
        assert r.status_code == 200
        r = await c.get(f"/storage/bookmarks/{BSO_ID}")
        assert r.json()["payload"] == PAYLOAD_MARK
    # Push everything from the WAL into the main file, then read every file raw.
    await server.db.write(lambda c: None)
    server.db._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = [p for p in server.db.path.parent.iterdir() if p.name.startswith("foxden.db")]
    assert files
    for path in files:
        blob = path.read_bytes()
        for needle in (BSO_ID, PAYLOAD_MARK, EMAIL, "storage_bso", "CREATE TABLE"):
            assert needle.encode() not in blob, (needle, path.name)
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(server.db.path).execute("SELECT name FROM sqlite_master").fetchall()
