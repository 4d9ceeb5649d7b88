"""The client's address behind trusted proxies (setting `TRUSTED_PROXIES`).

A peer in `TRUSTED_PROXIES` (addresses or networks) may say who it forwards for: the
client is then the right-most `X-Forwarded-For` hop that is not itself a trusted proxy,
since each proxy appends the address it saw and everything left of the last trusted one
was written by the client. `X-Forwarded-Proto` from a trusted peer sets the scheme. From
any other peer both headers are ignored, so with the default (no proxies) no client can
choose the address its rate limits count under. This is the rule of uvicorn's
`--forwarded-allow-ips`, applied here so that it holds however the app is served.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SCHEMES = {"http", "https", "ws", "wss"}


def parse_network(entry: str) -> Network:
    """`203.0.113.7`, `10.0.0.0/8`, `::1` or `fd00::/8`; ValueError when it is none."""
    return ipaddress.ip_network(entry.strip(), strict=False)


def _split_host_port(hop: str) -> tuple[str, int]:
    """A hop as proxies write it: `198.51.100.4`, `198.51.100.4:5123`, `[2001:db8::1]:80`
    or a bare IPv6 address. Anything else is kept whole, without a port."""
    if hop.startswith("["):
        host, _, rest = hop[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else 0
    if hop.count(":") == 1:
        host, _, port = hop.partition(":")
        return host, int(port) if port.isdigit() else 0
    return hop, 0


class TrustedProxies:
    def __init__(self, entries: Iterable[str]) -> None:
        self.networks = tuple(parse_network(entry) for entry in entries)
        self.trusts = lru_cache(maxsize=4096)(self._trusts)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def _trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def client_from(self, forwarded_for: str) -> tuple[str, int] | None:
        """The right-most hop that is not a trusted proxy (the left-most when all are)."""
        hops = [hop.strip() for hop in forwarded_for.split(",")]
        hops = [hop for hop in hops if hop]
        if not hops:
            return None
        for hop in reversed(hops):
            host, port = _split_host_port(hop)
            if not self.trusts(host):
                return host, port
        return _split_host_port(hops[0])


class ForwardedClientMiddleware:
    """Rewrites the scope's `client` (and `scheme`) when the peer is a trusted proxy."""

    def __init__(self, app: ASGIApp, *, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] in ("http", "websocket") and peer and self.trusted.trusts(peer[0]):
            self._apply(scope)
        await self.app(scope, receive, send)

    def _apply(self, scope: Scope) -> None:
        proto: str | None = None
        forwarded: list[str] = []
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").strip().lower()
        if proto in _SCHEMES:
            scope["scheme"] = proto.replace("http", "ws") if scope["type"] == "websocket" else proto
        if forwarded:
            client = self.trusted.client_from(",".join(forwarded))
            if client is not None:
                scope["client"] = client
