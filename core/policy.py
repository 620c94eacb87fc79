"""The public-address policy of DESIGN.md invariant 6. Pure: no I/O, no DNS.

A validator's published endpoint is attacker-controlled. Without this policy any validator could point
every operator's consumer nodes (and our reachability probe) at 127.0.0.1, the cluster network or the
cloud metadata service. Addresses in `allow_cidrs` (PEERSYNC_ENDPOINT_ALLOW_CIDRS, for devnets) are
exempt, except addresses that can never be a peer at all (unspecified, multicast, broadcast).

The ranges are listed here explicitly instead of using `ipaddress.is_private`/`is_global`, whose
answers changed between Python releases: a policy must not move under a minor upgrade, and the table
also yields the specific reasons operators see.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_CIDRS_SETTING = "PEERSYNC_ENDPOINT_ALLOW_CIDRS"


class PolicyConfigError(ValueError):
    """A policy setting that cannot be used; the message names the setting."""


class EndpointPolicy(BaseModel):
    """Which non-public addresses are nevertheless accepted as endpoints."""

    model_config = ConfigDict(frozen=True)

    allow_cidrs: tuple[Network, ...] = ()

    @classmethod
    def from_setting(cls, value: str | Iterable[str | Network] | None) -> EndpointPolicy:
        """Build from the comma-separated setting (or an already split list of CIDRs)."""
        if value is None:
            return cls()
        parts = value.split(",") if isinstance(value, str) else list(value)
        networks: list[Network] = []
        for part in parts:
            if isinstance(part, ipaddress.IPv4Network | ipaddress.IPv6Network):
                networks.append(part)
                continue
            text = str(part).strip()
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text, strict=True))
            except ValueError as exc:
                raise PolicyConfigError(f"{ALLOW_CIDRS_SETTING}: {text!r} is not a CIDR ({exc})") from None
        return cls(allow_cidrs=tuple(networks))

    def allows(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.allow_cidrs)


STRICT = EndpointPolicy()
"""No exemptions: the production default."""

# Never a peer, whatever the allow list says: dialing 0.0.0.0 reaches the local host on Linux, and
# multicast/broadcast are not unicast hosts.
_NEVER = frozenset({"unspecified", "multicast", "broadcast"})

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# First match wins, so specific entries precede the ranges that contain them.
_REFUSED_V4: tuple[tuple[ipaddress.IPv4Network, str, str], ...] = (
    (_V4("0.0.0.0/32"), "unspecified", "the unspecified address"),
    (_V4("0.0.0.0/8"), "reserved", 'a reserved address ("this network")'),
    (_V4("10.0.0.0/8"), "private", "a private address"),
    (_V4("100.100.100.200/32"), "shared", "a shared (carrier-grade NAT) address (cloud metadata)"),
    (_V4("100.64.0.0/10"), "shared", "a shared (carrier-grade NAT) address"),
    (_V4("127.0.0.0/8"), "loopback", "a loopback address"),
    (_V4("169.254.169.254/32"), "link-local", "a link-local address (cloud metadata)"),
    (_V4("169.254.0.0/16"), "link-local", "a link-local address"),
    (_V4("172.16.0.0/12"), "private", "a private address"),
    (_V4("192.0.0.0/24"), "reserved", "a reserved address (IETF protocol assignments)"),
    (_V4("192.0.2.0/24"), "documentation", "a documentation address"),
    (_V4("192.88.99.0/24"), "reserved", "a reserved address (deprecated 6to4 relay)"),
    (_V4("192.168.0.0/16"), "private", "a private address"),
    (_V4("198.18.0.0/15"), "benchmarking", "a benchmarking address"),
    (_V4("198.51.100.0/24"), "documentation", "a documentation address"),
    (_V4("203.0.113.0/24"), "documentation", "a documentation address"),
    (_V4("224.0.0.0/4"), "multicast", "a multicast address"),
    (_V4("255.255.255.255/32"), "broadcast", "the broadcast address"),
    (_V4("240.0.0.0/4"), "reserved", "a reserved address"),
)

_REFUSED_V6: tuple[tuple[ipaddress.IPv6Network, str, str], ...] = (
    (_V6("::/128"), "unspecified", "the unspecified address"),
    (_V6("::1/128"), "loopback", "a loopback address"),
    (_V6("64:ff9b:1::/48"), "private", "a private address (local-use NAT64)"),
    (_V6("100::/64"), "reserved", "a reserved address (discard-only)"),
    (_V6("2001::/23"), "reserved", "a reserved address (IETF protocol assignments)"),
    (_V6("2001:db8::/32"), "documentation", "a documentation address"),
    (_V6("3fff::/20"), "documentation", "a documentation address"),
    (_V6("fd00:ec2::254/128"), "private", "a private address (cloud metadata)"),
    (_V6("fc00::/7"), "private", "a private address"),
    (_V6("fe80::/10"), "link-local", "a link-local address"),
    (_V6("fec0::/10"), "private", "a private address (deprecated site-local)"),
    (_V6("ff00::/8"), "multicast", "a multicast address"),
)
_GLOBAL_UNICAST_V6 = _V6("2000::/3")
_NAT64 = _V6("64:ff9b::/96")


def _classify(address: IPAddress) -> tuple[str, str] | None:
    """(category, description) of a refused address, or None for a public one. No embedding logic."""
    table = _REFUSED_V4 if isinstance(address, ipaddress.IPv4Address) else _REFUSED_V6
    for network, category, description in table:
        if address in network:
            return category, description
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST_V6:
        return "reserved", "a reserved address (outside global unicast 2000::/3)"
    return None


def format_ip(address: IPAddress) -> str:
    """Canonical text of an address, identical on every Python version.

    RFC 5952 compressed lower-case form; IPv4-mapped addresses keep the dotted tail (`::ffff:1.2.3.4`)
    because Python 3.13 changed how `str()` prints them and peer strings feed a stable hash.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return address.compressed


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, NAT64 well-known prefix, 6to4).

    Such an address is judged by its IPv4 too: `[::ffff:127.0.0.1]` or `[2002:7f00:1::]` must not be
    a way around the loopback rule.
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def refusal(address: IPAddress, policy: EndpointPolicy) -> str | None:
    """Why `address` may not be a peer endpoint under `policy`, or None if it may.

    The reason reads as a sentence about the address, e.g. "10.0.0.5 is a private address".
    An IPv6 address that stands for an IPv4 address is judged by that IPv4 address alone.
    """
    inner = embedded_ipv4(address)
    if inner is None:
        found, subject = _classify(address), f"{format_ip(address)} is"
    else:
        found, subject = _classify(inner), f"{format_ip(address)} stands for {inner}, which is"
    if found is None:
        return None
    category, description = found
    exempt = policy.allows(address) or (inner is not None and policy.allows(inner))
    if exempt and category not in _NEVER:
        return None
    return f"{subject} {description}"
