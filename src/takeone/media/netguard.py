"""Which network addresses a server-side fetch may reach.

Promises:

* :func:`forbidden_reason` names why an address must not be fetched from (loopback, private,
  link-local, shared/CGNAT, multicast, reserved, unspecified, cloud metadata or any other
  non-global range), or returns ``None`` for a public address. IPv6 addresses that embed an
  IPv4 address (IPv4-mapped, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by the
  embedded address too, so ``[::ffff:127.0.0.1]`` is loopback.
* :func:`parse_ip_literal` reads every spelling the C resolver would accept as an IPv4
  address (``127.1``, ``2130706433``, ``0x7f000001``, ``0177.0.0.1``) as well as IPv6, so
  literal hosts are judged without any lookup.
* :func:`resolve` turns a host into its addresses exactly once: a literal without a lookup,
  a name with one ``getaddrinfo`` call in a worker thread. The caller checks *all* of them and
  connects only to an address it checked, which defeats DNS rebinding.

This module holds no policy about *which hosts* are exempt; that is the caller's business.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance-metadata endpoints. Most are already inside a refused range; they are listed
# so the reason given is the precise one, and so a change in ``ipaddress`` cannot let them by.
_METADATA: Final = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, ...
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("192.0.0.192"),  # Oracle Cloud
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
    }
)

# Special-purpose ranges, named explicitly because ``ipaddress``'s flags have changed between
# Python releases (3.11.7 still calls 192.0.0.192 global, for example).
_SPECIAL: Final[tuple[tuple[str, str], ...]] = (
    ("0.0.0.0/8", "unspecified ('this network')"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
    ("192.0.2.0/24", "reserved (documentation)"),
    ("192.88.99.0/24", "reserved (6to4 relay)"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved (benchmarking)"),
    ("198.51.100.0/24", "reserved (documentation)"),
    ("203.0.113.0/24", "reserved (documentation)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "reserved (IPv4-compatible)"),
    ("64:ff9b:1::/48", "reserved (local-use NAT64)"),
    ("100::/64", "reserved (discard)"),
    ("2001::/32", "reserved (Teredo)"),
    ("2001:db8::/32", "reserved (documentation)"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
_SPECIAL_NETWORKS: Final = tuple((ipaddress.ip_network(net), reason) for net, reason in _SPECIAL)
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")

# Characters that can make up a numeric IPv4 spelling for inet_aton (decimal, octal, hex
# parts). The C function ignores anything after whitespace, so the whole string is checked.
_LEGACY_IPV4: Final = re.compile(r"[0-9a-fA-FxX.]+")


def normalize_host(host: str) -> str:
    """Lower-case ``host``, drop IPv6 brackets and one trailing dot (``Example.COM.``)."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.removesuffix(".")


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells literally, in any form the resolver accepts, else ``None``."""
    host = normalize_host(host)
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host) and any(ch.isdigit() for ch in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` must not be fetched from, or ``None`` when it is a public address."""
    if address in _METADATA:
        return "cloud metadata"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return forbidden_reason(embedded)
        tunnelled = address.sixtofour
        if tunnelled is not None and (reason := forbidden_reason(tunnelled)) is not None:
            return f"6to4 of {reason}"
    for network, reason in _SPECIAL_NETWORKS:
        if address.version == network.version and address in network:
            return reason
    return _flag_reason(address)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # IPv4-mapped and NAT64 addresses reach exactly the embedded IPv4 host, so that host is
    # what gets judged (NAT64 is how IPv6-only machines reach the IPv4 internet).
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _flag_reason(address: IPAddress) -> str | None:
    # A second net under the explicit table, in case it misses a range ipaddress knows.
    flags = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not globally routable"),
    )
    return next((reason for flagged, reason in flags if flagged), None)


async def resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    """Every address ``host`` stands for, in resolver order, without duplicates.

    A literal address is returned as is, with no lookup. A name is looked up once, with
    ``getaddrinfo`` in a worker thread so the event loop is not blocked.

    Raises:
        OSError: the name does not resolve (``socket.gaierror``) or resolves to nothing usable.
    """
    literal = parse_ip_literal(host)
    if literal is not None:
        return (literal,)
    infos = await asyncio.to_thread(
        socket.getaddrinfo, normalize_host(host), port, type=socket.SOCK_STREAM
    )
    addresses: dict[IPAddress, None] = {}
    for family, _type, _proto, _canon, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            # A link-local IPv6 answer carries a "%scope" suffix; the address is what matters.
            addresses.setdefault(ipaddress.ip_address(str(sockaddr[0]).split("%")[0]))
    if not addresses:
        raise OSError(f"no IPv4 or IPv6 address for {host!r}")
    return tuple(addresses)
