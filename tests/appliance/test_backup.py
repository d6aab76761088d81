"""Backup, restore and rekey on real SQLCipher files."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import backup, keys, rekey
from appliance.config import Config
from appliance.lock import DataDirLock, LockedError
from appliance.paths import Paths
from appliance.runtime import build, open_database


def _fresh(tmp_path: Path, name: str = "a") -> Paths:
    paths = Paths.resolve(str(tmp_path / name / "data"), str(tmp_path / name / "config"))
    rt = build(paths, Config(), "http://127.0.0.1:1")
    rt.db.write_sync(lambda c: c.execute("CREATE TABLE t (v TEXT)"))
    rt.db.write_sync(lambda c: c.executemany(
        "INSERT INTO t VALUES (?)", [(f"row-{i}",) for i in range(45_000)]))
    rt.db.close()
    return paths


def test_round_trip_to_a_new_machine(tmp_path: Path) -> None:
    src = _fresh(tmp_path)
    key = keys.db_key(src.db_key, create=False)
    seen: list[tuple[str, int, int]] = []
    counts = backup.backup(src, key, tmp_path / "home.fxbk", "correct horse",
                           lambda *a: seen.append(a))
    assert counts["t"] == 45_000
    assert seen and seen[-1][1] == seen[-1][2]  # progress reached 100 %
    assert (tmp_path / "home.fxbk").stat().st_mode & 0o777 == 0o600
    blob = (tmp_path / "home.fxbk").read_bytes()
    assert b"row-1" not in blob and b"SQLite format 3" not in blob
    # A new machine: empty dirs, no key.  The backup brings the secrets along.
    dst = Paths.resolve(str(tmp_path / "b" / "data"), str(tmp_path / "b" / "config"))
    got = backup.restore(dst, tmp_path / "home.fxbk", "correct horse")
    assert got["t"] == 45_000
    assert dst.oauth_signing_key.read_bytes() == src.oauth_signing_key.read_bytes()
    assert dst.sync_master_secret.read_text() == src.sync_master_secret.read_text()
    db = open_database(dst)
    try:
        assert db.read_sync(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) \
            == 45_000
        assert db.schema_version > 0
    finally:
        db.close()


def test_wrong_passphrase_changes_nothing(tmp_path: Path) -> None:
    src = _fresh(tmp_path)
    key = keys.db_key(src.db_key, create=False)
    backup.backup(src, key, tmp_path / "x.fxbk", "correct horse")
    before = src.database.read_bytes()
    with pytest.raises(backup.BackupError, match="passphrase"):
        backup.restore(src, tmp_path / "x.fxbk", "battery staple")
    assert src.database.read_bytes() == before


def test_short_passphrase_and_existing_target(tmp_path: Path) -> None:
    src = _fresh(tmp_path)
    key = keys.db_key(src.db_key, create=False)
    with pytest.raises(backup.BackupError, match="8 characters"):
        backup.backup(src, key, tmp_path / "x.fxbk", "short")
    (tmp_path / "y.fxbk").write_text("keep me")
    with pytest.raises(backup.BackupError, match="exists"):
        backup.backup(src, key, tmp_path / "y.fxbk", "long enough")
    assert (tmp_path / "y.fxbk").read_text() == "keep me"


def test_restore_refuses_while_serving(tmp_path: Path) -> None:
    src = _fresh(tmp_path)
    key = keys.db_key(src.db_key, create=False)
    backup.backup(src, key, tmp_path / "x.fxbk", "correct horse")
    with DataDirLock(src.data_dir):
        with pytest.raises(LockedError):
            backup.restore(src, tmp_path / "x.fxbk", "correct horse")
        with pytest.raises(LockedError):
            rekey.rekey(src)


def test_rekey(tmp_path: Path) -> None:
    paths = _fresh(tmp_path)
    old = keys.db_key(paths.db_key, create=False)
    counts = rekey.rekey(paths)
    new = keys.db_key(paths.db_key, create=False)
    assert new != old and counts["t"] == 45_000
    assert paths.db_key.stat().st_mode & 0o777 == 0o600
    db = open_database(paths)
    assert db.read_sync(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 45_000
    db.close()


def test_rekey_crash_after_swap_is_recovered(tmp_path: Path) -> None:
    paths = _fresh(tmp_path)
    rekey.rekey(paths)
    real = keys.db_key(paths.db_key, create=False)
    # Simulate the crash window: new DB in place, key still the old one, next key parked.
    keys.write_secret_file(paths.db_key.with_name("db.key.next"), real.hex().encode())
    keys.write_secret_file(paths.db_key, ("11" * 32).encode())
    db = open_database(paths)
    db.close()
    assert keys.db_key(paths.db_key, create=False) == real
    assert not paths.db_key.with_name("db.key.next").exists()
