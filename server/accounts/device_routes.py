"""Devices and device commands (FxA lib/routes/devices-and-sessions.js).

Send Tab: device A ``POST /v1/account/devices/invoke_command {command, target, payload}``
→ the command is queued for B with A's device id as sender; B polls
``GET /v1/account/device/commands?index=…`` (no push service on a LAN).

These routes take a session or, from Fenix/iOS, an OAuth refresh token (``auth.Owner``).
"""

from __future__ import annotations

import re
from typing import Any

from quart import Blueprint, Response

from .. import fxa_errors
from . import commands, devices, errors
from .auth import authenticate_device_owner
from .common import reply
from .context import ctx
from .validate import Fields, invalid, json_body, query_int

_DEVICE_ID = re.compile(r"^[0-9a-fA-F]{32}$")


def add_routes(bp: Blueprint) -> None:
    @bp.post("/account/device")
    async def device_register() -> Response:
        c = ctx()
        owner = await authenticate_device_owner()
        update = devices.parse_update(await json_body())
        now = c.now_ms()
        device = await c.db.write(lambda conn: devices.upsert(conn, owner, update, now))
        return reply(devices.as_json(device))

    @bp.get("/account/devices")
    async def device_list() -> Response:
        c = ctx()
        owner = await authenticate_device_owner()
        idle_before = query_int("filterIdleDevicesTimestamp", minimum=0)
        found = await c.db.read(lambda conn: devices.list_for_account(conn, owner.uid))
        out = [devices.as_json(d, current=owner, for_list=True) for d in found
               if idle_before is None or d.owned_by(owner) or d.last_access >= idle_before]
        return reply(out)

    @bp.post("/account/device/destroy")
    async def device_destroy() -> Response:
        c = ctx()
        owner = await authenticate_device_owner()
        device_id = Fields(await json_body()).hex_id("id", 16, required=True)
        assert device_id is not None
        if not await c.db.write(lambda conn: devices.destroy(conn, owner.uid, device_id)):
            raise errors.unknown_device()
        return reply({})

    @bp.post("/account/devices/notify")
    async def devices_notify() -> Response:
        await authenticate_device_owner()
        f = Fields(await json_body())
        to = f.data.get("to")
        if to is None:
            raise invalid("to") if "to" in f.data else fxa_errors.missing_parameter("to")
        if to != "all":
            if not isinstance(to, list) or not all(
                    isinstance(d, str) and _DEVICE_ID.match(d) for d in to):
                raise invalid("to")
        excluded = f.array("excluded")
        if excluded is not None and (to != "all" or not all(
                isinstance(d, str) and _DEVICE_ID.match(d) for d in excluded)):
            raise invalid("excluded")
        f.obj("payload", required=True)
        f.integer("TTL", minimum=0)
        f.string("_endpointAction", max_len=32)
        # DIVERGENCE: no push service on a LAN (Firefox is told pushCallback=null and polls),
        # so a notification has nowhere to go: validated, then a no-op.
        return reply({})

    @bp.get("/account/device/commands")
    async def device_commands() -> Response:
        c = ctx()
        owner = await authenticate_device_owner()
        index = query_int("index", minimum=0)
        limit = query_int("limit", minimum=0, maximum=100)
        now = c.now_ms()

        def read(conn: Any) -> dict[str, Any]:
            device = devices.for_owner(conn, owner)
            if device is None:
                return {"index": 0, "last": True, "messages": []}
            return commands.fetch(conn, device.id, index,
                                  commands.DEFAULT_LIMIT if limit is None else limit,
                                  now).as_json()

        return reply(await c.db.read(read))

    @bp.post("/account/devices/invoke_command")
    async def invoke_command() -> Response:
        c = ctx()
        owner = await authenticate_device_owner()
        f = Fields(await json_body())
        target = f.hex_id("target", 16, required=True)
        command = f.string("command", required=True, max_len=100, pattern=devices.COMMAND_NAME)
        payload = f.obj("payload", required=True)
        ttl = f.integer("ttl", minimum=0, maximum=10_000_000)
        assert target is not None and command is not None and payload is not None
        now = c.now_ms()

        def write(conn: Any) -> int:
            device = devices.get(conn, owner.uid, target)
            if device is None:
                raise errors.unknown_device()
            if command not in device.available_commands:
                raise errors.device_command_unavailable()
            sender = devices.for_owner(conn, owner)
            return commands.enqueue(conn, device.id, command, payload,
                                    sender.id if sender else None, now,
                                    commands.ttl_for(command, ttl))

        await c.db.write(write)
        # DIVERGENCE: no push service, so never "notified"; the target polls.
        return reply({"enqueued": True, "notified": False})

