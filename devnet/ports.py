"""Free loopback ports for a devnet that must not collide with another one on the same machine."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_or_free(port: int, host: str = "127.0.0.1") -> int:
    """`port` itself, or a free one when it is 0."""
    return port if port else free_port(host)
