"""LAN-only guard: an ASGI middleware that refuses clients outside the home network.

Loopback, RFC 1918, CGNAT, link-local and IPv6 ULA addresses pass; anything else (a port
forward someone set up on the router, say) gets a 403 with a plain explanation, unless the
config allows public clients.  It wraps the whole app, so it holds for every protocol.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any

from .tls import PRIVATE_NETS

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]],
                   Awaitable[None]]

MESSAGE = ("Foxden only answers devices on your home network. To allow others, set "
           "allow_public_clients = true in foxden.toml.")


def is_allowed(host: str | None) -> bool:
    if not host:
        return False  # a unix socket or unknown peer is not what we serve
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in net for net in PRIVATE_NETS)


class LanGuard:
    def __init__(self, app: ASGIApp, *, allow_public: bool = False) -> None:
        self.app = app
        self.allow_public = allow_public

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and not self.allow_public:
            client = scope.get("client")
            if not is_allowed(client[0] if client else None):
                await self._refuse(scope, send)
                return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Any) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        path = scope.get("path", "")
        if path.startswith("/v1"):
            body = json.dumps({"code": 403, "errno": 125, "error": "Forbidden",
                               "message": MESSAGE}).encode()
            ctype = b"application/json"
        else:
            body, ctype = (MESSAGE + "\n").encode(), b"text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", ctype),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
