"""Store functions on a real SQLCipher file, without HTTP: the command queue, single-use
tokens, cascades."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.accounts import commands, devices, passwords, store, tokens
from server.crypto import fxatokens
from server.db.engine import Database

NOW = 1_700_000_000_000


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "t.db", secrets.token_bytes(32))
    yield database
    database.close()


def _record() -> passwords.PasswordRecord:
    return passwords.PasswordRecord(secrets.token_bytes(32), secrets.token_bytes(32),
                                    secrets.token_bytes(32))


def _device(db: Database) -> tuple[str, str, str]:
    def write(conn):  # type: ignore[no-untyped-def]
        account = store.create(conn, f"{secrets.token_hex(4)}@example.org", _record(), NOW)
        token_hex, creds = fxatokens.new_token("sessionToken")
        tokens.insert(conn, creds, account.uid, NOW)
        owner = devices.Owner(account.uid, session_id=creds.id)
        dev = devices.upsert(conn, owner, devices.DeviceUpdate(name="d"), NOW)
        return account.uid, creds.id, dev.id

    return db.write_sync(write)


def test_queue_indexes_expiry_and_bound(db: Database) -> None:
    _, _, dev = _device(db)
    _, _, other = _device(db)
    idx = [db.write_sync(lambda c, n=n: commands.enqueue(c, dev, "cmd", {"n": n}, None, NOW, 60))
           for n in range(5)]
    db.write_sync(lambda c: commands.enqueue(c, other, "cmd", {}, None, NOW, 60))
    assert idx == sorted(idx) and len(set(idx)) == 5
    batch = db.read_sync(lambda c: commands.fetch(c, dev, idx[1], 2, NOW))
    assert [m["index"] for m in batch.messages] == idx[1:3] and not batch.last
    assert batch.index == idx[2]
    # limit=0 must not report an index past unread messages.
    zero = db.read_sync(lambda c: commands.fetch(c, dev, idx[3], 0, NOW))
    assert zero.messages == [] and zero.index < idx[3] and zero.last is False
    # After the TTL nothing is served, and the purge removes the rows.
    later = NOW + 61_000
    assert db.read_sync(lambda c: commands.fetch(c, dev, 0, 100, later)).messages == []
    assert db.write_sync(lambda c: commands.purge_expired(c, later)) == 6
    # A new message after a purge still gets a larger index (AUTOINCREMENT).
    fresh = db.write_sync(lambda c: commands.enqueue(c, dev, "cmd", {}, None, later, 60))
    assert fresh > max(idx)


def test_queue_is_bounded_per_device(db: Database) -> None:
    _, _, dev = _device(db)
    for n in range(commands.MAX_QUEUE + 25):
        db.write_sync(lambda c, n=n: commands.enqueue(c, dev, "cmd", {"n": n}, None, NOW, 60))
    batch = db.read_sync(lambda c: commands.fetch(c, dev, 0, 100, NOW))
    assert batch.messages[0]["data"]["payload"] == {"n": 25}
    total = db.read_sync(lambda c: c.execute(
        "SELECT count(*) FROM device_commands WHERE device_id = ?", (dev,)).fetchone()[0])
    assert total == commands.MAX_QUEUE


def test_ttl_defaults() -> None:
    assert commands.ttl_for("https://identity.mozilla.com/cmd/open-uri", None) == 30 * 86400
    assert commands.ttl_for("x", 10**7) == commands.MAX_TTL_SECONDS
    assert commands.ttl_for("x", 0) == 0


def test_key_fetch_token_consumed_once(db: Database) -> None:
    uid, session, _ = _device(db)
    token_hex = db.write_sync(lambda c: tokens.create_key_fetch(
        c, uid, b"a" * 32, b"b" * 32, NOW, session_id=session))
    token_id = fxatokens.derive(bytes.fromhex(token_hex), "keyFetchToken").id
    first = db.write_sync(lambda c: tokens.consume(c, token_id, "keyFetchToken", NOW))
    assert first is not None and first.data is not None and len(first.data) == 96
    assert db.write_sync(lambda c: tokens.consume(c, token_id, "keyFetchToken", NOW)) is None


def test_session_delete_cascades_to_device_and_queue(db: Database) -> None:
    uid, session, dev = _device(db)
    db.write_sync(lambda c: commands.enqueue(c, dev, "cmd", {}, None, NOW, 60))
    db.write_sync(lambda c: tokens.delete(c, session))
    assert db.read_sync(lambda c: devices.get(c, uid, dev)) is None
    assert db.read_sync(lambda c: c.execute("SELECT count(*) FROM device_commands")
                        .fetchone()[0]) == 0


def test_duplicate_email_is_refused_case_insensitively(db: Database) -> None:
    db.write_sync(lambda c: store.create(c, "Bob@Example.org", _record(), NOW))
    with pytest.raises(store.AccountExists):
        db.write_sync(lambda c: store.create(c, "bob@example.ORG", _record(), NOW))
    found = db.read_sync(lambda c: store.find_by_email(c, "BOB@example.org"))
    assert found is not None and found.email == "Bob@Example.org"
