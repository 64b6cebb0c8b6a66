"""Which network addresses the service may fetch media from: public ones, plus networks an operator allows.

A host is judged by every address it resolves to, so no spelling of a name or literal (``2130706433``,
``127.1``, ``[::ffff:127.0.0.1]``) gets past it, and one refused address refuses the host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import attrs

from domain.errors import SourceRejected

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# The event loop's getaddrinfo: (host, port, *, family, type, proto, flags) -> [(family, ..., sockaddr)].
Resolver = Callable[..., Awaitable[list[tuple[Any, ...]]]]

# Carrier-grade NAT: Python 3.11 calls it neither private nor global, so it is named here.
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
# IPv6 forms that carry an IPv4 address in their low 32 bits; what they reach is that IPv4 address.
_LOW_32_CARRIERS = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # IPv4-compatible (deprecated)
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b::/96",  # NAT64, well-known prefix
    )
)
# The local-use NAT64 prefix (RFC 8215) puts the IPv4 address where each network likes; it is never global.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address; the server's is public by construction
    if any(ip in carrier for carrier in _LOW_32_CARRIERS) and int(ip) & 0xFFFFFFFF > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)  # > 1: :: and ::1 carry nothing
    return None


def _kind(ip: IPAddress) -> str | None:
    """Why ``ip`` alone is not public, or None when it is."""
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip == _BROADCAST:
        return "the broadcast address"
    if ip in _SHARED:
        return "a carrier-grade NAT address"
    if any(ip in network for network in _PRIVATE):
        return "a private address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if ip in _LOCAL_NAT64:
        return "a local-use NAT64 address"
    # Not is_reserved: that would refuse 64:ff9b::/96, which is how IPv6-only networks reach IPv4 hosts.
    if not ip.is_global:
        return "a reserved or special-purpose address"
    return None


@attrs.frozen
class AddressGuard:
    """Refuses every address that is not public, except in ``allowed_networks``; resolves with ``resolver``
    (the running loop's getaddrinfo when None)."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver | None = None

    @classmethod
    def allowing(cls, cidrs: Iterable[str], resolver: Resolver | None = None) -> AddressGuard:
        """``cidrs`` as an operator writes them ("127.0.0.1/32"); a malformed one raises ValueError."""
        return cls(tuple(ipaddress.ip_network(cidr) for cidr in cidrs), resolver)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why the service must not connect to ``ip``, or None when it may."""
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        ip = mapped or ip  # the kernel sends ::ffff:a.b.c.d to a.b.c.d, so judge (and allow) it as that
        if any(ip in network for network in self.allowed_networks):
            return None
        if reason := _kind(ip):
            return reason
        inner = embedded_ipv4(ip)
        if inner is not None and (inner_reason := self.refusal(inner)):
            return f"an address embedding {inner}, {inner_reason}"
        return None

    def check(self, host: str, ip: IPAddress) -> None:
        if reason := self.refusal(ip):
            subject = host if host == str(ip) else f"{host} resolves to {ip}, which"
            raise SourceRejected(f"{subject} is {reason}; the service fetches only from public addresses")

    async def vetted_addresses(self, host: str, port: int) -> tuple[IPAddress, ...]:
        """Every address ``host`` resolves to, once each, after checking all of them (one lookup only: the
        caller connects to these, so a second answer can never slip in between check and connect).

        Raises SourceRejected for a refused address and OSError (socket.gaierror) when nothing resolves."""
        resolve = self.resolver or asyncio.get_running_loop().getaddrinfo
        answers = await resolve(host, port, type=socket.SOCK_STREAM)
        # The scope id ("fe80::1%eth0") is not part of the address; link-local is refused anyway.
        addresses = tuple(dict.fromkeys(ipaddress.ip_address(str(a[4][0]).split("%")[0]) for a in answers))
        if not addresses:
            raise socket.gaierror(f"{host} resolves to no address")
        for ip in addresses:
            self.check(host, ip)
        return addresses
