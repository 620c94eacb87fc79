"""CometBFT peer-address parsing (p2p/netaddress.go NewNetAddressString), with upstream's error texts.

The emulator never resolves DNS (loopback-only network): `localhost` maps to 127.0.0.1 and any other
hostname counts as a lookup failure, which CometBFT's dial_peers skips silently.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass


class AddressError(ValueError):
    """A peer string CometBFT refuses; dial_peers reports it as -32603 with this text."""


class LookupFailed(AddressError):
    """Host is a name that does not resolve; dial_peers skips these without error."""


@dataclass(frozen=True)
class PeerAddress:
    id: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.id}@{host}:{self.port}"


def _go_hex_error(text: str) -> str | None:
    for ch in text:
        if ch not in "0123456789abcdefABCDEF":
            return f"encoding/hex: invalid byte: U+{ord(ch):04X} {ch!r}"
    if len(text) % 2:
        return "encoding/hex: odd length hex string"
    return None


def split_host_port(text: str) -> tuple[str, str]:
    """Go's net.SplitHostPort, errors included."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise AddressError(f"address {text}: missing ']' in address")
        host, rest = text[1:end], text[end + 1 :]
        if not rest.startswith(":"):
            raise AddressError(f"address {text}: missing port in address")
        return host, rest[1:]
    if ":" not in text:
        raise AddressError(f"address {text}: missing port in address")
    host, _, port = text.rpartition(":")
    if ":" in host:
        raise AddressError(f"address {text}: too many colons in address")
    if "[" in host or "]" in host:
        raise AddressError(f"address {text}: unexpected '[' in address")
    return host, port


def parse_peer(text: str) -> PeerAddress:
    without_protocol = text.split("://", 1)[1] if "://" in text else text
    parts = without_protocol.split("@")
    if len(parts) != 2:
        raise AddressError(f"address ({text}) does not contain ID")
    node_id, rest = parts
    if not node_id:
        raise AddressError(f"invalid address ({without_protocol}): no ID")
    hex_error = _go_hex_error(node_id)
    if hex_error:
        raise AddressError(f"invalid address ({without_protocol}): {hex_error}")
    if len(node_id) != 40:
        raise AddressError(
            f"invalid address ({without_protocol}): invalid hex length - got {len(node_id) // 2}, expected 20"
        )
    try:
        host, port_text = split_host_port(rest)
    except AddressError as err:
        raise AddressError(f"invalid address ({rest}): {err}") from None
    if not host:
        raise AddressError(f"invalid address ({rest}): host is empty")
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        if host != "localhost":
            raise LookupFailed(f"error looking up host ({host}): lookup {host}: no such host") from None
        ip = "127.0.0.1"
    if not re.fullmatch(r"[0-9]+", port_text):
        raise AddressError(
            f'invalid address ({port_text}): strconv.ParseUint: parsing "{port_text}": invalid syntax'
        )
    port = int(port_text)
    if port > 65535:
        raise AddressError(
            f'invalid address ({port_text}): strconv.ParseUint: parsing "{port_text}": value out of range'
        )
    return PeerAddress(node_id, ip, port)  # ids compare as strings: upper-case never matches


def peer_ids(peers: list[str]) -> list[str]:
    """rpc/core/net.go getIDs: every peer needs exactly one '@'."""
    ids = []
    for peer in peers:
        parts = peer.split("@")
        if len(parts) != 2:
            raise AddressError(f"address ({peer}) does not contain ID")
        ids.append(parts[0])
    return ids


def parse_peers(peers: list[str]) -> list[PeerAddress]:
    """NewNetAddressStrings as AddPersistentPeers uses it: lookup failures skipped, other errors fatal."""
    parsed = []
    for peer in peers:
        try:
            parsed.append(parse_peer(peer))
        except LookupFailed:
            continue
    return parsed
