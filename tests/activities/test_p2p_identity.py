"""activities/p2p_identity.py over real sockets: the id is proven, and each way an endpoint can fail to prove
one is a specific error naming the address, within the time and byte bounds; and activities/probe.py, the
gate that blocks a write when the node at an endpoint is not the one expected."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import nacl.signing
import pytest
from pydantic import ValidationError

from activities.p2p_identity import HandshakeClosedError, HandshakeTimeoutError, prove_node_id
from activities.probe import ProbeReport, probe
from core.endpoint import parse_endpoint
from core.policy import EndpointPolicy
from core.secret_connection import BadSignatureError, OversizeError, SecretHandshake
from core.upstream import node_id_from_pubkey
from workflows.activity_contracts import ProbeInput

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def node(key: nacl.signing.SigningKey) -> Handler:
    """A p2p endpoint holding `key` (the emulated nodes run the same machine)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handshake = SecretHandshake(key, secrets.token_bytes(32), 8192)
        writer.write(handshake.hello())
        while handshake.proven is None and (data := await reader.read(4096)):
            writer.write(handshake.receive(data))
        writer.close()

    return handle


async def proven_at(handler: Handler, **kwargs: float) -> str:
    async with serve(handler) as port:
        return await prove_node_id("127.0.0.1", port, **kwargs)  # type: ignore[arg-type]


async def test_the_node_proves_its_id() -> None:
    key = nacl.signing.SigningKey.generate()
    assert await proven_at(node(key)) == node_id_from_pubkey(bytes(key.verify_key))


async def test_a_silent_endpoint_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the probe gives up and closes
        writer.close()

    with pytest.raises(HandshakeTimeoutError, match=r"127\.0\.0\.1:\d+ did not prove its key within 0\.2s"):
        await proven_at(silent, timeout=0.2)


async def test_an_endpoint_that_hangs_up_is_closed_mid_handshake() -> None:
    async def hangs_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(SecretHandshake(nacl.signing.SigningKey.generate(), bytes(range(32)), 8192).hello())
        writer.close()

    with pytest.raises(HandshakeClosedError, match=r"closed the connection after 35 bytes, before proving"):
        await proven_at(hangs_up)


async def test_a_key_the_endpoint_cannot_sign_with_is_refused() -> None:
    liar = nacl.signing.SigningKey.generate()
    liar.verify_key = nacl.signing.SigningKey.generate().verify_key  # claims a key it does not hold
    with pytest.raises(BadSignatureError, match=r"the node at 127\.0\.0\.1:\d+: the remote claimed node id"):
        await proven_at(node(liar))


async def test_an_endless_stream_stops_at_the_byte_budget() -> None:
    async def floods(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A first message announced just under the budget, then far more than it: 1 MiB in all.
        writer.write(b"\xff\x1f")  # varint 4095
        with contextlib.suppress(OSError):  # the probe hangs up, as it should
            for _ in range(16):
                writer.write(bytes(65536))
                await writer.drain()
        writer.close()

    with pytest.raises(OversizeError, match=r"127\.0\.0\.1:\d+: .*more than 4096 bytes"):
        await proven_at(floods, max_bytes=4096)


async def test_a_closed_port_is_an_os_error_and_bad_bounds_are_refused() -> None:
    async with serve(node(nacl.signing.SigningKey.generate())) as port:
        pass  # closed again: nothing listens there now
    with pytest.raises(ConnectionRefusedError):
        await prove_node_id("127.0.0.1", port, timeout=2)
    with pytest.raises(ValueError, match="timeout must be positive"):
        await prove_node_id("127.0.0.1", port, timeout=0)
    with pytest.raises(ValueError, match="below the 1079"):
        await prove_node_id("127.0.0.1", port, max_bytes=1000)


# ---- the product gate (activities/probe.py) -------------------------------------------------------------

LOOPBACK = EndpointPolicy.from_setting("127.0.0.0/8")


async def gate(handler: Handler, expected: str | None) -> ProbeReport:
    async with serve(handler) as port:
        endpoint = parse_endpoint("127.0.0.1", LOOPBACK)
        return await probe(
            endpoint, [port], LOOPBACK, expected_ids=None if expected is None else {port: expected}
        )


async def test_the_gate_passes_the_expected_node() -> None:
    key = nacl.signing.SigningKey.generate()
    node_id = node_id_from_pubkey(bytes(key.verify_key))
    report = await gate(node(key), node_id)
    assert report.reachable and report.results[0].node_id == node_id and report.summary() == "reachable"


async def test_the_gate_blocks_another_node_with_the_reason() -> None:
    impostor = nacl.signing.SigningKey.generate()
    expected = "ab" * 20
    report = await gate(node(impostor), expected)
    proven = node_id_from_pubkey(bytes(impostor.verify_key))
    assert not report.reachable
    port = report.results[0].port
    assert report.summary() == f"the node at 127.0.0.1:{port} proved id {proven}, expected {expected}"


async def test_the_gate_needs_the_handshake_only_where_an_id_is_expected() -> None:
    async def plain_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()  # something listens, but it is no CometBFT node

    assert (await gate(plain_tcp, None)).reachable  # no expected id: a connect is the check, as before
    report = await gate(plain_tcp, "ab" * 20)
    assert not report.reachable
    assert re.fullmatch(
        r"127\.0\.0\.1 unreachable on \d+ \(the node at .* closed the connection after 0 bytes.*\)",
        report.summary(),
    )


@pytest.mark.parametrize(
    "expected_ids, error",
    [({"26656": "AB" * 20}, "should match pattern"), ({"0": "ab" * 20}, "greater than or equal to 1")],
)
def test_probe_input_refuses_bad_expected_ids(expected_ids: dict[str, str], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        ProbeInput.model_validate({"endpoint": "1.2.3.4", "ports": [26656], "expected_ids": expected_ids})
    assert ProbeInput(endpoint="1.2.3.4", ports=[1]).expected_ids is None  # older inputs: TCP only
