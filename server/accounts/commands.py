"""The per-device command queue (table ``device_commands``): Mozilla's "pushbox".

``GET /v1/account/device/commands?index=N&limit=M`` returns the queued messages with
``idx >= N`` in order, ``index`` = the last one returned and ``last`` = nothing newer is
left (fxa-auth-server lib/pushbox/db.ts).  Firefox asks for ``lastCommandIndex + 1``.
When nothing is returned we answer the device's newest index (Mozilla answers 0), so a
client that stores ``index`` blindly can never step backwards past an unseen message.

Messages expire after their TTL (open-uri: 30 days, like Mozilla; at most 30 days), and
each device keeps at most MAX_QUEUE of them: a dead device cannot grow the database forever.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..db.engine import Connection

DEFAULT_TTL_SECONDS = {"https://identity.mozilla.com/cmd/open-uri": 30 * 24 * 3600}
MAX_TTL_SECONDS = 30 * 24 * 3600
MAX_QUEUE = 200
DEFAULT_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Batch:
    index: int
    last: bool
    messages: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "last": self.last, "messages": self.messages}


def ttl_for(command: str, requested: int | None) -> int:
    if requested is None:
        requested = DEFAULT_TTL_SECONDS.get(command, MAX_TTL_SECONDS)
    return min(requested, MAX_TTL_SECONDS)


def enqueue(conn: Connection, device_id: str, command: str, payload: dict[str, Any],
            sender: str | None, now_ms: int, ttl_seconds: int) -> int:
    cur = conn.execute(
        "INSERT INTO device_commands (device_id, command, payload, sender, created_at,"
        " expires_at) VALUES (?,?,?,?,?,?)",
        (device_id, command, json.dumps(payload, separators=(",", ":")), sender, now_ms,
         now_ms + ttl_seconds * 1000))
    index = int(cur.lastrowid or 0)
    conn.execute(
        "DELETE FROM device_commands WHERE device_id = ? AND idx <= ("
        " SELECT idx FROM device_commands WHERE device_id = ? ORDER BY idx DESC"
        " LIMIT 1 OFFSET ?)", (device_id, device_id, MAX_QUEUE))
    return index


def fetch(conn: Connection, device_id: str, index: int | None, limit: int,
          now_ms: int) -> Batch:
    rows = conn.execute(
        "SELECT idx, command, payload, sender FROM device_commands WHERE device_id = ?"
        " AND idx >= ? AND expires_at > ? ORDER BY idx LIMIT ?",
        (device_id, index or 0, now_ms, limit)).fetchall()
    newest = conn.execute(
        "SELECT MAX(idx) FROM device_commands WHERE device_id = ? AND expires_at > ?",
        (device_id, now_ms)).fetchone()[0] or 0
    messages = []
    for idx, command, payload, sender in rows:
        data: dict[str, Any] = {"command": command, "payload": json.loads(payload)}
        if sender is not None:
            data["sender"] = sender
        messages.append({"index": idx, "data": data})
    # Nothing returned: report the newest index, but never one at or past ``index`` while
    # unread messages are there (limit=0), so a client storing it skips nothing.
    last_index = rows[-1][0] if rows else min(newest, max((index or 0) - 1, 0))
    return Batch(last_index, last_index >= newest, messages)


def purge_expired(conn: Connection, now_ms: int, limit: int = 5000) -> int:
    cur = conn.execute(
        "DELETE FROM device_commands WHERE idx IN (SELECT idx FROM device_commands"
        " WHERE expires_at <= ? LIMIT ?)", (now_ms, limit))
    return cur.rowcount
