"""AddressGuard: every class of non-public address is refused, in IPv4, IPv6 and IPv4-embedding forms."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from adapters.media.address_guard import AddressGuard
from domain.errors import SourceRejected

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "172.31.255.254": "private",
    "192.168.1.1": "private",
    "fd00::1": "private",
    "fc00::1": "private",
    "169.254.169.254": "link-local",  # cloud metadata
    "fe80::1": "link-local",
    "100.64.0.1": "carrier-grade NAT",
    "100.127.255.254": "carrier-grade NAT",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "255.255.255.255": "broadcast",
    "240.0.0.1": "reserved",
    "192.0.2.1": "reserved",  # documentation
    "fec0::1": "site-local",
    "::ffff:127.0.0.1": "loopback",  # IPv4-mapped: the kernel connects to 127.0.0.1
    "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "link-local",
    "::7f00:1": "embedding 127.0.0.1",  # IPv4-compatible
    "::ffff:0:a00:1": "embedding 10.0.0.1",  # IPv4-translated
    "64:ff9b::a00:1": "embedding 10.0.0.1",  # NAT64
    "64:ff9b::7f00:1": "embedding 127.0.0.1",
    "64:ff9b::a9fe:a9fe": "embedding 169.254.169.254",
    "64:ff9b:1::808:808": "local-use NAT64",
    "2002:7f00:1::": "embedding 127.0.0.1",  # 6to4
    "2002:a9fe:a9fe::1": "embedding 169.254.169.254",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "reserved",  # Teredo (client 192.0.2.45)
    "2001:0:4136:e378:8000:63bf:80ff:fffe": "reserved",  # Teredo (client 127.0.0.1)
    "2001:db8::1": "reserved",  # documentation
}
ALLOWED = ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8")


@pytest.mark.parametrize(("address", "why"), REFUSED.items())
def test_refused(address: str, why: str) -> None:
    reason = AddressGuard().refusal(ipaddress.ip_address(address))
    assert reason is not None and why in reason


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert AddressGuard().refusal(ipaddress.ip_address(address)) is None


def test_public_forms_of_embedding_stay_open() -> None:
    # IPv6-only networks reach IPv4 hosts through NAT64 and 6to4; refusing the form would cut them off.
    guard = AddressGuard()
    assert guard.refusal(ipaddress.ip_address("64:ff9b::808:808")) is None
    assert guard.refusal(ipaddress.ip_address("2002:808:808::1")) is None


def test_allowlist_opens_its_networks_only() -> None:
    guard = AddressGuard.allowing(["127.0.0.1/32", "10.20.0.0/16", "fd12::/16"])
    for opened in ("127.0.0.1", "::ffff:127.0.0.1", "10.20.3.4", "fd12::7"):
        assert guard.refusal(ipaddress.ip_address(opened)) is None, opened
    for still_refused in ("127.0.0.2", "::1", "10.21.0.1", "192.168.0.1", "169.254.169.254", "fd13::1"):
        assert guard.refusal(ipaddress.ip_address(still_refused)) is not None, still_refused


def test_malformed_allowlist_fails_at_start_up() -> None:
    with pytest.raises(ValueError):
        AddressGuard.allowing(["10.0.0.0/33"])


def _resolving_to(*addresses: str) -> Any:
    async def resolve(host: str, port: int, **_: object) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    return resolve


async def test_one_refused_answer_refuses_the_host() -> None:
    guard = AddressGuard(resolver=_resolving_to("8.8.8.8", "10.0.0.1", "8.8.8.8"))
    with pytest.raises(
        SourceRejected, match=r"cdn\.test resolves to 10\.0\.0\.1, which is a private address"
    ):
        await guard.vetted_addresses("cdn.test", 443)


async def test_vetted_addresses_are_every_answer_once() -> None:
    guard = AddressGuard(resolver=_resolving_to("8.8.8.8", "2606:4700:4700::1111", "8.8.8.8"))
    assert await guard.vetted_addresses("cdn.test", 443) == (
        ipaddress.ip_address("8.8.8.8"),
        ipaddress.ip_address("2606:4700:4700::1111"),
    )


async def test_odd_spellings_are_judged_by_what_they_resolve_to() -> None:
    # The real resolver (inet_aton rules): decimal, hex and short forms all mean 127.0.0.1.
    for spelling in ("2130706433", "0x7f.0.0.1", "127.1", "0177.0.0.1"):
        with pytest.raises(SourceRejected, match=r"resolves to 127\.0\.0\.1, which is a loopback"):
            await AddressGuard().vetted_addresses(spelling, 80)


async def test_a_literal_address_is_named_plainly() -> None:
    with pytest.raises(SourceRejected, match=r"^10\.0\.0\.1 is a private address"):
        await AddressGuard().vetted_addresses("10.0.0.1", 80)
