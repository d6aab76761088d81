"""The SQLCipher engine: one encrypted file, one writer, parallel readers, off the Trio loop.

* Opened with a raw 256-bit key (``PRAGMA key = "x'…'"``): no passphrase KDF per open.
* WAL mode, ``synchronous=FULL`` (an acknowledged write survives power loss), foreign keys.
* ``await db.write(fn)`` runs ``fn(conn)`` in a worker thread inside ``BEGIN IMMEDIATE`` …
  ``COMMIT`` (rolled back if ``fn`` raises): every request's writes are one transaction.
  A ``trio.Lock`` admits one writer at a time, so SQLite never sees writer contention.
* ``await db.read(fn)`` borrows one of several reader connections; WAL lets them run while
  the writer works.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlcipher3
import trio

from . import migrations

T = TypeVar("T")
Connection = sqlcipher3.Connection
DatabaseError = sqlcipher3.DatabaseError
IntegrityError = sqlcipher3.IntegrityError


class WrongKeyError(Exception):
    """The file exists but does not open with this key (or is not a database)."""


def _key_pragma(key: bytes) -> str:
    if len(key) != 32:
        raise ValueError("the database key must be 32 bytes")
    return f"PRAGMA key = \"x'{key.hex()}'\""


def connect(path: str | Path, key: bytes, *, readonly: bool = False) -> Connection:
    """Open and key one connection; raises WrongKeyError if the key does not fit."""
    conn = sqlcipher3.connect(
        str(path), isolation_level=None, check_same_thread=False, timeout=30.0
    )
    try:
        # A wrong key is reported by us, once, clearly; not as SQLCipher's stderr lines.
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(_key_pragma(key))
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.DatabaseError as exc:
        conn.close()
        raise WrongKeyError(str(path)) from exc
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    return conn


class Database:
    def __init__(self, path: str | Path, key: bytes, *, readers: int = 4) -> None:
        self.path = Path(path)
        self._key = key
        self._writer = connect(self.path, key)
        self._writer.execute("PRAGMA journal_mode = WAL")
        self._writer.execute("PRAGMA synchronous = FULL")
        migrations.apply(self._writer)
        self._write_lock = trio.Lock()
        self._readers = [connect(self.path, key, readonly=True) for _ in range(readers)]
        self._free = list(self._readers)
        self._reader_slots = trio.Semaphore(readers)
        self._closed = False

    @property
    def schema_version(self) -> int:
        return int(self._writer.execute("PRAGMA user_version").fetchone()[0])

    async def write(self, fn: Callable[[Connection], T]) -> T:
        async with self._write_lock:
            return await trio.to_thread.run_sync(self._run_write, fn)

    def _run_write(self, fn: Callable[[Connection], T]) -> T:
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def read(self, fn: Callable[[Connection], T]) -> T:
        async with self._reader_slots:
            conn = self._free.pop()
            try:
                return await trio.to_thread.run_sync(self._run_read, conn, fn)
            finally:
                self._free.append(conn)

    @staticmethod
    def _run_read(conn: Connection, fn: Callable[[Connection], T]) -> T:
        # A read transaction gives fn one consistent snapshot across its statements.
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("ROLLBACK")

    def write_sync(self, fn: Callable[[Connection], T]) -> T:
        """For CLI commands and start-up code that run outside Trio."""
        return self._run_write(fn)

    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        return self._run_read(self._readers[0], fn)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for conn in self._readers:
            conn.close()
        try:
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        self._writer.close()
