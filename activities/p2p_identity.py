"""The authenticated probe: dial a CometBFT p2p endpoint and make the node there prove its node key.

The SecretConnection handshake (core/secret_connection.py) runs with a fresh ed25519 key of our own, up to
the remote's signature over the shared challenge; then the connection is closed. No NodeInfo is sent and
nothing after the signature is read, so no reactor ever sees the probe (the node logs a failed handshake).
Bounded by one deadline for connect + handshake and by a budget of bytes accepted from the remote.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

import nacl.signing

from core.secret_connection import MIN_HANDSHAKE_BYTES, HandshakeError, SecretHandshake

DEFAULT_MAX_BYTES = 8192  # a real node proves its key in 1079 bytes (35 + one 1044-byte frame)
_READ_SIZE = 4096


class HandshakeTimeoutError(HandshakeError):
    """The endpoint did not answer, or did not finish the handshake, within the time allowed."""


class HandshakeClosedError(HandshakeError):
    """The endpoint closed the connection before proving its key (not a CometBFT p2p port, or it refused us)."""


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # an IPv6 literal is bracketed


async def prove_node_id(
    host: str,
    port: int,
    timeout: float = 5.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    identity: nacl.signing.SigningKey | None = None,
    ephemeral_secret: bytes | None = None,
) -> str:
    """The node id the node at host:port proves. Raises OSError when it cannot be dialled, and a
    HandshakeError subclass (reason prefixed with the address) when it does not prove a key.
    `identity` and `ephemeral_secret` exist for deterministic tests; by default both are fresh."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    handshake = SecretHandshake(
        identity or nacl.signing.SigningKey.generate(),
        ephemeral_secret or secrets.token_bytes(32),
        max_bytes,  # checked by SecretHandshake: at least MIN_HANDSHAKE_BYTES
    )
    where = host_port(host, port)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    phase = "connect"
    received = 0
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout_at(deadline):
            reader, writer = await asyncio.open_connection(host, port)
            phase = "handshake"
            try:
                writer.write(handshake.hello())
                while handshake.proven is None:
                    data = await reader.read(_READ_SIZE)
                    if not data:
                        raise ConnectionResetError("end of stream")
                    received += len(data)
                    reply = handshake.receive(data)
                    if reply:
                        writer.write(reply)
                        await writer.drain()
            except OSError as exc:  # connected, then dropped: not a refused dial
                raise HandshakeClosedError(
                    f"the node at {where} closed the connection after {received} bytes, before proving its "
                    f"key (a handshake needs {MIN_HANDSHAKE_BYTES}): {exc}"
                ) from None
    except TimeoutError:
        raise HandshakeTimeoutError(
            f"the node at {where} did not {'accept the connection' if phase == 'connect' else 'prove its key'} "
            f"within {timeout:g}s"
        ) from None
    except (HandshakeTimeoutError, HandshakeClosedError):
        raise
    except HandshakeError as exc:
        raise type(exc)(f"the node at {where}: {exc.reason}") from None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return handshake.proven.node_id
