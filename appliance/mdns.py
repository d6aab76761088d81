"""mDNS: announce Foxden on the LAN as ``_foxden._tcp`` and answer for ``<host>.local``.

Home Assistant's way: one shared Zeroconf instance for the process, services registered
only once HTTP answers, unregistered on shutdown.  python-zeroconf runs its own asyncio loop
in a background thread; from Trio we call its blocking API in worker threads.

A service-name conflict (another Foxden on the LAN) is resolved by zeroconf's rename
(``Foxden (2)``), not fatal.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from zeroconf import (
    InterfaceChoice,
    IPVersion,
    NonUniqueNameException,
    ServiceBrowser,
    ServiceInfo,
    ServiceListener,
    Zeroconf,
)

log = logging.getLogger("foxden.mdns")

SERVICE_TYPE = "_foxden._tcp.local."
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Announcement:
    instance: str            # "Foxden on kitchen-pc"
    host_label: str          # "kitchen-pc" → kitchen-pc.local
    port: int
    addresses: tuple[IPAddress, ...]
    public_url: str
    version: str
    ca_fingerprint: str = ""
    handoff_url: str = ""

    def service_info(self, instance: str | None = None) -> ServiceInfo:
        props = {"url": self.public_url, "version": self.version, "path": "/"}
        if self.ca_fingerprint:
            props["ca_sha256"] = self.ca_fingerprint.replace(":", "").lower()
        if self.handoff_url:
            props["handoff"] = self.handoff_url
        return ServiceInfo(
            SERVICE_TYPE,
            f"{instance or self.instance}.{SERVICE_TYPE}",
            port=self.port,
            properties=props,
            server=f"{self.host_label}.local.",
            parsed_addresses=[str(a) for a in self.addresses],
        )


class Advertiser:
    """Owns the process's single Zeroconf instance."""

    def __init__(self, zc: Zeroconf | None = None,
                 interfaces: list[str] | None = None) -> None:
        self._zc = zc
        self._interfaces = interfaces
        self._info: ServiceInfo | None = None

    @property
    def zeroconf(self) -> Zeroconf:
        if self._zc is None:
            # Bind only the LAN addresses we serve on: never loopback, never an interface
            # the certificate does not cover.  IPv4: every home router and phone speaks it,
            # and IPv6 link-local scopes trip zeroconf on some systems.
            self._zc = Zeroconf(interfaces=self._interfaces or InterfaceChoice.All,
                                ip_version=IPVersion.V4Only)
        return self._zc

    @property
    def registered_name(self) -> str | None:
        return self._info.name if self._info else None

    def register(self, ann: Announcement, *, listen_first: float = 1.5) -> str:
        info = ann.service_info()
        # zeroconf renames on conflict only from what its cache already holds, and a fresh
        # instance's cache is empty: listen for existing Foxdens first, so a second one on
        # the LAN becomes "Foxden on x (2)" instead of a silent duplicate.
        if listen_first > 0:
            browser = ServiceBrowser(self.zeroconf, SERVICE_TYPE, handlers=[_ignore])
            try:
                import time

                time.sleep(listen_first)
            finally:
                browser.cancel()
        try:
            self.zeroconf.register_service(info, allow_name_change=True)
        except NonUniqueNameException:
            # allow_name_change covers service names; a clash it cannot resolve is logged,
            # not fatal: the server still serves, only discovery is affected.
            log.warning("mDNS name %s is taken; not announced", info.name)
            return ""
        self._info = info
        log.info("announced %s on mDNS", info.name)
        return info.name

    def update(self, ann: Announcement) -> None:
        """Re-announce (addresses or certificate changed)."""
        if self._info is None:
            self.register(ann)
            return
        instance = self._info.name[: -len("." + SERVICE_TYPE)]
        info = ann.service_info(instance)
        self.zeroconf.update_service(info)
        self._info = info

    def close(self) -> None:
        if self._zc is None:
            return
        try:
            if self._info is not None:
                self.zeroconf.unregister_service(self._info)
        finally:
            self._zc.close()
            self._zc = None
            self._info = None


def _ignore(**_: object) -> None:
    """ServiceBrowser needs a handler; the records land in the cache regardless."""


@dataclass(frozen=True)
class Found:
    name: str
    server: str
    port: int
    addresses: tuple[str, ...]
    properties: dict[str, str]


def discover(timeout: float = 3.0, zc: Zeroconf | None = None) -> list[Found]:
    """Browse for Foxden servers for ``timeout`` seconds (for `foxden doctor` and tests)."""
    own = zc is None
    zc = zc or Zeroconf(ip_version=IPVersion.V4Only)
    names: list[str] = []

    class _Listener(ServiceListener):
        def add_service(self, z: Zeroconf, type_: str, name: str) -> None:
            names.append(name)

        def update_service(self, z: Zeroconf, type_: str, name: str) -> None:
            pass

        def remove_service(self, z: Zeroconf, type_: str, name: str) -> None:
            pass

    browser = ServiceBrowser(zc, SERVICE_TYPE, listener=_Listener())
    try:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not names:
            time.sleep(0.05)
        found = []
        for name in dict.fromkeys(names):
            info = zc.get_service_info(SERVICE_TYPE, name, timeout=int(timeout * 1000))
            if info is None:
                continue
            props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
            found.append(Found(name, info.server or "", info.port or 0,
                               tuple(info.parsed_addresses()), props))
        return found
    finally:
        browser.cancel()
        if own:
            zc.close()


def lan_addresses(extra: Iterable[str] = ()) -> list[IPAddress]:
    """Non-loopback addresses of this machine that a LAN client could use."""
    found: set[IPAddress] = set()
    try:
        import ifaddr  # zeroconf's own dependency

        for adapter in ifaddr.get_adapters():
            for ip in adapter.ips:
                raw = ip.ip[0] if isinstance(ip.ip, tuple) else ip.ip
                try:
                    addr = ipaddress.ip_address(raw)
                except ValueError:
                    continue
                if not addr.is_loopback and not (addr.version == 6 and addr.is_link_local):
                    found.add(addr)
    except ImportError:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            addr = ipaddress.ip_address(info[4][0])
            if not addr.is_loopback:
                found.add(addr)
    found.update(ipaddress.ip_address(e) for e in extra)
    return sorted(found, key=lambda a: (a.version, int(a)))
