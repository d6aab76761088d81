"""Sync timestamps (storage doc §0): integer ms floored to 10 ms, shown with two decimals.

Never formatted through ``float``: ``1700000000.10`` must not become ``1700000000.1``.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal, InvalidOperation

# Larger header/query values are clamped: still "later than anything", and SQLite's
# 64-bit integers never overflow.
MAX_MS = 2**62
_NUMBER = re.compile(r"\+?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")


class BadTimestamp(ValueError):
    """Negative, non-numeric or otherwise unusable timestamp text."""


def floor10(ms: int) -> int:
    return ms - ms % 10


def now_ms() -> int:
    return floor10(time.time_ns() // 1_000_000)


def fmt(ms: int) -> str:
    """``1700000000120`` → ``"1700000000.12"`` (ms is always a multiple of 10)."""
    return f"{ms // 1000}.{(ms % 1000) // 10:02d}"


def parse(text: str) -> int:
    """Header/query timestamp in seconds → ms floored to 10 ms; BadTimestamp if invalid."""
    if not _NUMBER.fullmatch(text):
        raise BadTimestamp(text[:40])
    try:
        seconds = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise BadTimestamp(text[:40]) from exc
    if seconds * 1000 >= MAX_MS:
        return MAX_MS
    return floor10(int(seconds * 1000))


def parse_ms(text: str) -> int:
    """The millisecond timestamp inside an offset token (digits only)."""
    if not text.isascii() or not text.isdigit():
        raise BadTimestamp(text[:40])
    return min(floor10(int(text)), MAX_MS) if len(text) < 20 else MAX_MS
