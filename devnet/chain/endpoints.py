"""Where a validator's emulated consumer nodes should run, read from its published `details`.

Only the devnet decides this; the chain itself stores `details` verbatim. A details text names a devnet
endpoint when it has a `p2p=<host>[:<port>]` token or a JSON `"p2p":"<host>[:<port>]"` whose host is an
IPv4 literal inside the scenario's `allow_cidrs`. Anything else (garbage, injection attempts, public
addresses) leaves the nodes where they are — the validator published something, but did not move.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from devnet.chain.state import Validator

_TOKEN = re.compile(r"(?:^|\s)p2p=(\S*)")
_JSON = re.compile(r'"p2p"\s*:\s*"([^"]*)"')
_HOST_PORT = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$")


@dataclass(frozen=True)
class DevnetEndpoint:
    host: str
    port: int | None


class EndpointRejected(ValueError):
    """Why a details text does not name a usable devnet endpoint."""


def published_endpoint(details: str) -> str | None:
    """The raw `<host>[:<port>]` the details publish, or None when they publish none."""
    match = _TOKEN.search(details) or _JSON.search(details)
    return match.group(1) if match else None


def devnet_endpoint(details: str, allow_cidrs: list[str]) -> DevnetEndpoint:
    raw = published_endpoint(details)
    if raw is None:
        raise EndpointRejected("details publish no p2p endpoint")
    match = _HOST_PORT.match(raw)
    if not match:
        raise EndpointRejected(f"endpoint {raw!r} is not <ipv4>[:<port>]")
    try:
        host = ipaddress.IPv4Address(match.group(1))
    except ipaddress.AddressValueError:
        raise EndpointRejected(f"endpoint {raw!r} has an invalid IPv4 address") from None
    port = int(match.group(2)) if match.group(2) else None
    if port is not None and not 1 <= port <= 65535:
        raise EndpointRejected(f"endpoint {raw!r} has a port outside 1-65535")
    networks = [ipaddress.IPv4Network(c, strict=False) for c in allow_cidrs if ":" not in c]
    if not any(host in net for net in networks):
        raise EndpointRejected(f"host {host} is outside the devnet's allow_cidrs {allow_cidrs}")
    return DevnetEndpoint(str(host), port)


def bindable(host: str) -> bool:
    """The emulator only ever listens on loopback addresses."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def place_nodes(validator: Validator, details: str, allow_cidrs: list[str], reachable: bool | None) -> None:
    """Move `validator`'s nodes to the endpoint its new details name, if they name a devnet one.

    `reachable` says whether anything listens at the resulting host; None keeps the current setting,
    except that a move to a new host defaults to reachable (a validator that moves brings its nodes up).
    """
    try:
        endpoint = devnet_endpoint(details, allow_cidrs)
    except EndpointRejected as err:
        where = f"nodes stay at {validator.node_host}" if validator.node_host else "validator has no nodes"
        validator.endpoint_note = f"{err}; {where}"
    else:
        if validator.node_host != endpoint.host and reachable is None:
            reachable = True
        validator.node_host = endpoint.host
        validator.endpoint_note = (
            "" if bindable(endpoint.host) else f"{endpoint.host} is not loopback; nothing listens"
        )
    if reachable is not None:
        validator.reachable = reachable
