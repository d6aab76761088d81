"""`foxden rekey`: move the database to a fresh random key, crash-safely.

Steps: checkpoint the old file; copy it into a new file under the new key; verify counts and
integrity; park the new key as ``db.key.next``; swap the files; promote the key.  A crash at
any point leaves either the old database with the old key, or the new database with its key
in ``db.key.next`` — which start-up then promotes (see :func:`recover`).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import sqlcipher3

from server.db.engine import WrongKeyError, connect

from . import backup, keys
from .lock import DataDirLock
from .paths import Paths


def _next_key_path(paths: Paths) -> Path:
    return paths.db_key.with_name("db.key.next")


def rekey(paths: Paths) -> dict[str, int]:
    with DataDirLock(paths.data_dir):
        old = keys.db_key(paths.db_key, create=False)
        conn = connect(paths.database, old)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        new = secrets.token_bytes(32)
        tmp = paths.database.with_name(f".rekey.{secrets.token_hex(4)}.db")
        try:
            conn.execute("ATTACH DATABASE ? AS nk KEY ?", (str(tmp), f"x'{new.hex()}'"))
            conn.execute("BEGIN")
            counts = backup._copy(conn, "main", "nk", None, "rekey")
            version = conn.execute("PRAGMA main.user_version").fetchone()[0]
            conn.execute(f"PRAGMA nk.user_version = {int(version)}")
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE nk")
        except BaseException:
            conn.close()
            tmp.unlink(missing_ok=True)
            raise
        conn.close()
        got = backup.verify_copy(tmp, new, counts, "re-keyed copy")
        keys.write_secret_file(_next_key_path(paths), new.hex().encode() + b"\n")
        for suffix in ("-wal", "-shm"):
            paths.database.with_name(paths.database.name + suffix).unlink(missing_ok=True)
        os.replace(tmp, paths.database)
        keys.store_db_key(paths.db_key, new)
        _next_key_path(paths).unlink(missing_ok=True)
        return got


def recover(paths: Paths) -> None:
    """Finish a rekey that crashed after the swap: promote db.key.next if it opens the DB."""
    nxt = _next_key_path(paths)
    if not nxt.exists() or not paths.database.exists():
        return
    key = keys._parse_key(nxt.read_text(), str(nxt))
    try:
        connect(paths.database, key).close()
    except (WrongKeyError, sqlcipher3.DatabaseError):
        nxt.unlink()  # the swap never happened; the old key is still right
        return
    keys.store_db_key(paths.db_key, key)
    nxt.unlink()
