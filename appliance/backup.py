"""Online, encrypted, consistent backups and verified restores.

A backup is one SQLCipher file encrypted with a passphrase the user chooses (SQLCipher's own
PBKDF2 key derivation), so it can be restored on a new PC after the old one died, keyring and
all.  Besides the database it carries what the server cannot be rebuilt without: the OAuth
signing key, the sync master secret, the metrics secret and the local CA (so phones keep
trusting the restored server), and the row count of every table for verification.

Backup reads the live database inside one read transaction (WAL gives a consistent snapshot
while the server keeps writing); restore builds a complete new database beside the old one,
verifies it opens and every count matches, and only then swaps it in.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import sqlcipher3

from server.db.engine import Connection, WrongKeyError, connect

from . import keys
from .lock import DataDirLock
from .paths import Paths

FORMAT = 1
META = "foxden_backup_meta"
CHUNK = 20_000
Progress = Callable[[str, int, int], None]  # (phase, done, total)


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why."""


def _files(paths: Paths) -> dict[str, Path]:
    return {
        "keys/oauth-signing-key.pem": paths.oauth_signing_key,
        "keys/sync-master-secret": paths.sync_master_secret,
        "keys/metrics-hash-secret": paths.metrics_hash_secret,
        "tls/ca.pem": paths.tls_dir / "ca.pem",
        "tls/ca-key.pem": paths.tls_dir / "ca-key.pem",
        "config/foxden.toml": paths.config_file,
    }


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _schema(conn: Connection, alias: str) -> list[tuple[str, str, str]]:
    return conn.execute(
        f"SELECT type, name, sql FROM {alias}.sqlite_master "  # noqa: S608 - alias is ours
        "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid").fetchall()


def _tables(conn: Connection, alias: str) -> list[str]:
    return [n for t, n, _ in _schema(conn, alias) if t == "table" and n != META]


def _copy(conn: Connection, src: str, dst: str, progress: Progress | None,
          phase: str) -> dict[str, int]:
    """Copy every table src→dst (both attached to conn) in rowid chunks; return counts."""
    schema = _schema(conn, src)
    counts: dict[str, int] = {}
    tables = [(n, sql) for t, n, sql in schema if t == "table" and n != META]
    for _, sql in tables:
        conn.execute(_retarget(sql, dst))
    totals = {n: conn.execute(f"SELECT count(*) FROM {src}.{_quote(n)}").fetchone()[0]  # noqa: S608
              for n, _ in tables}
    grand = sum(totals.values()) or 1
    done = 0
    for name, sql in tables:
        q = _quote(name)
        if "WITHOUT ROWID" in sql.upper():
            conn.execute(f"INSERT INTO {dst}.{q} SELECT * FROM {src}.{q}")  # noqa: S608
            done += totals[name]
        else:
            lo, hi = conn.execute(f"SELECT min(rowid), max(rowid) FROM {src}.{q}").fetchone()  # noqa: S608
            start = lo or 0
            while hi is not None and start <= hi:
                cur = conn.execute(
                    f"INSERT INTO {dst}.{q} SELECT * FROM {src}.{q} "  # noqa: S608
                    "WHERE rowid >= ? AND rowid < ?", (start, start + CHUNK))
                done += max(cur.rowcount, 0)
                start += CHUNK
                if progress:
                    progress(phase, min(done, grand), grand)
        counts[name] = totals[name]
        if progress:
            progress(phase, min(done, grand), grand)
    for kind, _, sql in schema:
        if kind in ("index", "trigger", "view"):
            conn.execute(_retarget(sql, dst))
    return counts


def _retarget(sql: str, alias: str) -> str:
    """Point a CREATE statement at another attached schema."""
    head, sep, rest = sql.partition(" ")
    words = sql.split(None, 6)
    # CREATE [UNIQUE] INDEX|TABLE|TRIGGER|VIEW [IF NOT EXISTS] name ...
    upper = [w.upper() for w in words]
    i = 1
    if upper[i] in ("UNIQUE", "TEMP", "TEMPORARY", "VIRTUAL"):
        i += 1
    i += 1
    if upper[i:i + 3] == ["IF", "NOT", "EXISTS"]:
        i += 3
    name = words[i]
    prefix = " ".join(words[:i])
    idx = sql.index(name, len(prefix))
    return sql[:idx] + f"{alias}." + sql[idx:]


def _counts(conn: Connection, alias: str) -> dict[str, int]:
    return {n: conn.execute(f"SELECT count(*) FROM {alias}.{_quote(n)}").fetchone()[0]  # noqa: S608
            for n in _tables(conn, alias)}


def _attach(conn: Connection, path: Path, alias: str, *, passphrase: str | None = None,
            raw_key: bytes | None = None) -> None:
    key = f"x'{raw_key.hex()}'" if raw_key is not None else passphrase
    conn.execute(f"ATTACH DATABASE ? AS {alias} KEY ?", (str(path), key))


def backup(paths: Paths, db_key: bytes, dest: Path, passphrase: str,
           progress: Progress | None = None) -> dict[str, int]:
    """Write an encrypted backup of the live database (safe while the server runs)."""
    if len(passphrase) < 8:
        raise BackupError("choose a backup passphrase of at least 8 characters")
    dest = dest.resolve()
    if dest.exists():
        raise BackupError(f"{dest} exists; choose a new file name")
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.partial")
    conn = connect(paths.database, db_key, readonly=False)
    try:
        _attach(conn, tmp, "bk", passphrase=passphrase)
        conn.execute("BEGIN")  # one snapshot of main for the whole copy
        try:
            counts = _copy(conn, "main", "bk", progress, "backing up")
            version = conn.execute("PRAGMA main.user_version").fetchone()[0]
            conn.execute(f"CREATE TABLE bk.{META} (key TEXT PRIMARY KEY, value BLOB)")
            meta: dict[str, bytes] = {
                "format": str(FORMAT).encode(), "schema_version": str(version).encode(),
                "created_at": str(int(time.time())).encode(),
                "counts": json.dumps(counts).encode(),
            }
            for name, path in _files(paths).items():
                if path.exists():
                    meta["file:" + name] = path.read_bytes()
            conn.executemany(f"INSERT INTO bk.{META} VALUES (?, ?)", meta.items())  # noqa: S608
            conn.execute(f"PRAGMA bk.user_version = {int(version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("DETACH DATABASE bk")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        conn.close()
    os.chmod(tmp, 0o600)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dest)
    return counts


def read_meta(backup_file: Path, passphrase: str) -> dict[str, bytes]:
    conn = sqlcipher3.connect(str(backup_file), isolation_level=None)
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute("PRAGMA key = " + _sql_string(passphrase))
        try:
            rows = conn.execute(f"SELECT key, value FROM {META}").fetchall()  # noqa: S608
        except sqlcipher3.DatabaseError as exc:
            raise BackupError(
                f"{backup_file} does not open with that passphrase (or is not a Foxden "
                "backup)") from exc
    finally:
        conn.close()
    return {k: bytes(v) for k, v in rows}


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def verify_copy(path: Path, key: bytes, expected: dict[str, int], what: str) -> dict[str, int]:
    """Open a finished copy with a fresh connection: it must open with ``key``, pass the
    integrity check and hold exactly ``expected`` rows per table; then fsync it.  On any
    failure the copy is deleted and nothing else has been touched."""
    try:
        check = connect(path, key)
    except WrongKeyError as exc:
        path.unlink(missing_ok=True)
        raise BackupError(f"the {what} does not open; nothing was changed") from exc
    try:
        got = _counts(check, "main")
        integrity = check.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        check.close()
    if got != expected or integrity != "ok":
        path.unlink(missing_ok=True)
        raise BackupError(f"the {what} did not verify (counts {got} vs {expected}, "
                          f"integrity {integrity}); nothing was changed")
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
    return got


def restore(paths: Paths, backup_file: Path, passphrase: str,
            progress: Progress | None = None) -> dict[str, int]:
    """Replace the database (and key material) with the backup's; the server must be
    stopped.  Returns the verified row counts."""
    if not backup_file.exists():
        raise BackupError(f"{backup_file} does not exist")
    with DataDirLock(paths.data_dir):
        return _restore(paths, backup_file, passphrase, progress)


def _restore(paths: Paths, backup_file: Path, passphrase: str,
             progress: Progress | None) -> dict[str, int]:
    meta = read_meta(backup_file, passphrase)
    if int(meta.get("format", b"0")) != FORMAT:
        raise BackupError(f"{backup_file} is a backup format this Foxden does not know")
    expected = json.loads(meta["counts"])
    paths.ensure()
    key = keys.db_key(paths.db_key, create=True)
    tmp = paths.database.with_name(f".restore.{secrets.token_hex(4)}.db")
    conn = sqlcipher3.connect(str(tmp), isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
        _attach(conn, backup_file, "bk", passphrase=passphrase)
        conn.execute("BEGIN")
        _copy(conn, "bk", "main", progress, "restoring")
        conn.execute(f"PRAGMA main.user_version = {int(meta['schema_version'])}")
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE bk")
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    if progress:
        progress("verifying", 0, 1)
    got = verify_copy(tmp, key, expected, "restored database")
    if progress:
        progress("verifying", 1, 1)
    if paths.database.exists():
        aside = paths.database.with_name(f"foxden.db.before-restore-{int(time.time())}")
        os.replace(paths.database, aside)
        for suffix in ("-wal", "-shm"):
            side = paths.database.with_name(paths.database.name + suffix)
            side.unlink(missing_ok=True)
    os.replace(tmp, paths.database)
    for name, path in _files(paths).items():
        data = meta.get("file:" + name)
        if data is not None:
            keys.write_secret_file(path, data)
    return got
