"""Free loopback ports for a devnet that must not collide with another one on the same machine.

A port that is picked now and bound later (by a child process) can be lost in between. The kernel hands
out its ephemeral range to every `bind(0)` and to the source port of every outgoing connection, so a pick
from that range races all of them; picks here come from below it, where only other picks compete.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10000
ATTEMPTS = 64


def _below_ephemeral() -> range | None:
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return range(LOWEST, low) if low - LOWEST >= 1024 else None


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    candidates = _below_ephemeral()
    if candidates is not None:
        for port in random.sample(candidates, ATTEMPTS):
            if _bindable(host, port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_or_free(port: int, host: str = "127.0.0.1") -> int:
    """`port` itself, or a free one when it is 0."""
    return port if port else free_port(host)
