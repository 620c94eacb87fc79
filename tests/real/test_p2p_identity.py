"""The authenticated probe (issue 12, item 1) against real CometBFT v0.38.26 nodes: the id a node proves in
the SecretConnection handshake is the id it reports in `/status`, the probe never becomes a peer, and a port
that is not a p2p port fails clearly.

`PEERSYNC_RECORD_HANDSHAKE=1` makes test_a_fixed_key_handshake_replays rewrite the recording that
tests/unit/test_secret_connection.py replays (tests/unit/data/cometbft_v0_38_26_handshake.json).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import nacl.signing
import pytest
import pytest_asyncio

from activities.p2p_identity import prove_node_id
from core.secret_connection import MIN_HANDSHAKE_BYTES, ProtocolError, SecretHandshake
from devnet.real.nodes import NodeSpec, RealConsumerNodes
from devnet.testbed import eventually, random_subnet

pytestmark = [pytest.mark.real, pytest.mark.asyncio(loop_scope="module")]

C1 = "consumer-1"
PAIR = ["alice", "bob"]
RECORDING = Path(__file__).resolve().parents[1] / "unit" / "data" / "cometbft_v0_38_26_handshake.json"
# Fixed keys for the recording: ours only (the node's ephemeral key is whatever it drew that time).
PROBE_SEED = bytes(range(32))
PROBE_EPHEMERAL = bytes(range(32, 64))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def nodes(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RealConsumerNodes]:
    subnet = random_subnet()
    specs = [NodeSpec(moniker=m, chain_id=C1, host=f"{subnet}.{i}") for i, m in enumerate(PAIR, start=1)]
    async with RealConsumerNodes(Path(tmp_path_factory.mktemp("real-p2p")), specs) as running:
        yield running


async def test_the_proven_id_is_the_nodes_own(nodes: RealConsumerNodes) -> None:
    for moniker in PAIR:
        node = nodes.node(moniker, C1)
        proven = await prove_node_id(node.host, node.p2p_port, timeout=5)
        assert proven == (await nodes.status(moniker, C1))["node_info"]["id"] == node.node_id


def rejections(nodes: RealConsumerNodes, moniker: str) -> list[str]:
    return [line for line in nodes.log(moniker, C1).splitlines() if "Inbound Peer rejected" in line]


async def test_the_probe_stops_before_node_info_and_never_becomes_a_peer(nodes: RealConsumerNodes) -> None:
    alice, bob = nodes.node("alice", C1), nodes.node("bob", C1)
    await eventually(partial(nodes.peer_ids, "alice", C1), 20, "alice connected to bob")
    before = len(rejections(nodes, "alice"))
    await prove_node_id(alice.host, alice.p2p_port, timeout=5)
    # The node accepted our signature (its secret connection succeeded) and failed at the NodeInfo exchange
    # that follows, because we closed: "handshake failed", never "secret conn failed".
    logged = await eventually(
        lambda: asyncio.sleep(0, rejections(nodes, "alice")[before:]), 10, "the rejection"
    )
    assert "auth failure: handshake failed" in logged[0] and "secret conn" not in logged[0], logged
    assert await nodes.peer_ids("alice", C1) == {bob.node_id}


async def test_a_port_that_is_not_p2p_fails_clearly(nodes: RealConsumerNodes) -> None:
    alice = nodes.node("alice", C1)
    with pytest.raises(ProtocolError, match=rf"the node at {re.escape(alice.host)}:{alice.rpc_port}: .*not"):
        await prove_node_id(alice.host, alice.rpc_port, timeout=5)  # the RPC answers HTTP 400


async def record(host: str, port: int) -> dict[str, str]:
    """One handshake with fixed keys of ours, as bytes: what the node sent up to its proof, what we sent."""
    handshake = SecretHandshake(nacl.signing.SigningKey(PROBE_SEED), PROBE_EPHEMERAL, 8192)
    reader, writer = await asyncio.open_connection(host, port)
    received, sent = bytearray(), bytearray(handshake.hello())
    try:
        writer.write(sent)
        while handshake.proven is None:
            data = await asyncio.wait_for(reader.read(4096), 5)
            assert data, f"closed after {len(received)} bytes"
            received += data
            reply = handshake.receive(data)
            sent += reply
            writer.write(reply)
    finally:
        writer.close()
    # A real node proves its key in the least a handshake needs; what follows is its sealed NodeInfo.
    return {
        "cometbft": "v0.38.26",
        "probe_ed25519_seed": PROBE_SEED.hex(),
        "probe_x25519_secret": PROBE_EPHEMERAL.hex(),
        "node_sent": bytes(received[:MIN_HANDSHAKE_BYTES]).hex(),
        "probe_sent": bytes(sent).hex(),
        "node_id": handshake.proven.node_id,
    }


async def test_a_fixed_key_handshake_replays(nodes: RealConsumerNodes) -> None:
    """The recorder the unit replay test's data comes from: fresh bytes from the real node replay too."""
    bob = nodes.node("bob", C1)
    recording = await record(bob.host, bob.p2p_port)
    assert recording["node_id"] == bob.node_id
    replay = SecretHandshake(nacl.signing.SigningKey(PROBE_SEED), PROBE_EPHEMERAL, 8192)
    assert (
        replay.hello().hex() + replay.receive(bytes.fromhex(recording["node_sent"])).hex()
        == (recording["probe_sent"])
    )
    assert replay.proven is not None and replay.proven.node_id == bob.node_id
    if os.environ.get("PEERSYNC_RECORD_HANDSHAKE"):
        RECORDING.parent.mkdir(exist_ok=True)
        RECORDING.write_text(json.dumps(recording, indent=2) + "\n")
