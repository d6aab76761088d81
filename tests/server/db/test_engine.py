"""The SQLCipher engine: raw key, encryption at rest, one transaction per write."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from server.db import migrations
from server.db.engine import Database, WrongKeyError, connect

KEY = bytes(range(32))


def test_raw_key_wal_and_migrations(tmp_path: Path) -> None:
    db = Database(tmp_path / "f.db", KEY)
    try:
        assert db.schema_version == len(migrations.available())
        mode = db.read_sync(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        assert mode == "wal"
        fk = db.read_sync(lambda c: c.execute("PRAGMA foreign_keys").fetchone()[0])
        assert fk == 1
    finally:
        db.close()
    # Re-opening applies nothing new and keeps the version.
    db = Database(tmp_path / "f.db", KEY)
    assert db.schema_version == len(migrations.available())
    db.close()


def test_wrong_key_and_plain_sqlite_fail(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    Database(path, KEY).close()
    with pytest.raises(WrongKeyError):
        connect(path, bytes(32))
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(path).execute("SELECT * FROM sqlite_master").fetchall()
    assert not path.read_bytes().startswith(b"SQLite format 3")


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(WrongKeyError):
        Database(path, KEY)


def test_key_must_be_32_bytes(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Database(tmp_path / "f.db", b"short")


async def test_write_is_one_transaction(tmp_path: Path) -> None:
    db = Database(tmp_path / "f.db", KEY)
    await db.write(lambda c: c.execute("CREATE TABLE t (v INTEGER)"))

    def half_then_fail(c):  # type: ignore[no-untyped-def]
        c.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await db.write(half_then_fail)
    assert await db.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 0
    db.close()


async def test_readers_run_while_writer_holds_transaction(tmp_path: Path) -> None:
    db = Database(tmp_path / "f.db", KEY, readers=2)
    await db.write(lambda c: c.execute("CREATE TABLE t (v INTEGER)"))
    await db.write(lambda c: c.execute("INSERT INTO t VALUES (1)"))
    in_write = trio.Event()
    release = trio.Event()
    token = trio.lowlevel.current_trio_token()

    def slow_write(c):  # type: ignore[no-untyped-def]
        c.execute("INSERT INTO t VALUES (2)")
        trio.from_thread.run_sync(in_write.set, trio_token=token)
        trio.from_thread.run(release.wait, trio_token=token)

    async with trio.open_nursery() as n:
        n.start_soon(db.write, slow_write)
        with trio.fail_after(5):
            await in_write.wait()
            # The reader sees the committed snapshot, not the writer's open transaction.
            seen = await db.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0])
        assert seen == 1
        release.set()
    assert await db.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 2
    db.close()


async def test_writers_are_serialized(tmp_path: Path) -> None:
    db = Database(tmp_path / "f.db", KEY)
    await db.write(lambda c: c.execute("CREATE TABLE n (v INTEGER)"))
    await db.write(lambda c: c.execute("INSERT INTO n VALUES (0)"))

    def bump(c):  # type: ignore[no-untyped-def]
        v = c.execute("SELECT v FROM n").fetchone()[0]
        c.execute("UPDATE n SET v = ?", (v + 1,))

    async with trio.open_nursery() as n:
        for _ in range(50):
            n.start_soon(db.write, bump)
    assert await db.read(lambda c: c.execute("SELECT v FROM n").fetchone()[0]) == 50
    db.close()
