"""Versioned schema migrations: ``NNNN_name.sql`` files applied in order at start-up.

``PRAGMA user_version`` holds the number of the last applied file.  Each file runs in its
own transaction together with the version bump, so a crash mid-migration leaves the
previous version intact.  Never edit a released file; add the next number.
"""

from __future__ import annotations

import re
from importlib import resources

import sqlcipher3

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def available() -> list[tuple[int, str]]:
    found = []
    for entry in resources.files(__name__).iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migration numbers are not 1..N: {numbers}")
    return found


def apply(conn) -> int:  # type: ignore[no-untyped-def]
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    steps = available()
    if current > len(steps):
        raise RuntimeError(
            f"the database schema ({current}) is newer than this Foxden ({len(steps)})"
        )
    for number, sql in steps[current:]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return len(steps)


def _statements(sql: str) -> list[str]:
    # executescript() would COMMIT on its own; split with SQLite's own tokenizer instead,
    # so semicolons inside comments, literals and trigger bodies are handled.
    out: list[str] = []
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlcipher3.complete_statement(buf):
            if buf.strip().rstrip(";").strip() and not _only_comments(buf):
                out.append(buf.strip())
            buf = ""
    if buf.strip() and not _only_comments(buf):
        out.append(buf.strip())
    return out


def _only_comments(text: str) -> bool:
    return all(not ln.strip() or ln.strip().startswith("--") for ln in text.splitlines())
