"""Issue 12 item 2 on the emulated devnet: a namespace annotated `peersync.io/node-ids: published` gets the id the
validator publishes, one annotated `discovered` the id its node proved to the registry; with no id published
nothing is written there and the change says why. bob renames himself: the upstream scheme would now derive a
node id that his node (its key file made under the old moniker) cannot prove."""

from __future__ import annotations

import json

from core.contracts import EndpointChangeResult, Phase
from core.ids import endpoint_change_id
from core.upstream import upstream_node_id, upstream_ports
from devnet.testbed import World, eventually

C1, C2 = "alice-consumer-1", "alice-consumer-2"


def annotate(world: World, namespace: str, source: str) -> None:
    """As `kubectl annotate namespace NS peersync.io/node-ids=SOURCE` would (straight into the emulator's
    store: a blocking client call here would wait on the event loop that serves it)."""
    ns = world.kube().get("Namespace", "", namespace)
    ns["metadata"]["annotations"]["peersync.io/node-ids"] = source
    world.kube().apply(ns)


async def test_published_and_discovered_ids_are_written_and_absence_writes_nothing(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    annotate(world, C1, "published")
    annotate(world, C2, "discovered")
    sub, bob = world.subnet, world.operator("bob")
    true_c1, true_c2 = upstream_node_id("bob", "consumer-1"), upstream_node_id("bob", "consumer-2")
    p1, p2 = upstream_ports("consumer-1").p2p, upstream_ports("consumer-2").p2p

    # bob moves and renames himself; he publishes his consumer-1 node's id (his real one).
    details = f"p2p={sub}.22 p2p-ids=consumer-1={true_c1}@{sub}.22"
    height = await world.edit_validator("bob", details, moniker="bobby")
    await world.nudge_registry()
    result = await world.finished(endpoint_change_id("alice", bob, height), EndpointChangeResult, timeout=90)
    assert result.phase == Phase.DONE, result
    assert f"{true_c1}@{sub}.22:{p1}" in world.configmap_text(C1)
    assert upstream_node_id("bobby", "consumer-1") not in world.configmap_text(C1)

    async def proved() -> bool:
        return f"{true_c2}@{sub}.22:{p2}" in world.configmap_text(C2)

    await eventually(proved, timeout=60, what="bob's proved consumer-2 id written at his new host")
    row = await world.registry_row("bobby")
    assert row.discovered["consumer-2"].node_id == true_c2, row.discovered
    code, out, _ = await world.peersync("registry", "--json")
    shown = {r["moniker"]: r for r in json.loads(out)}
    assert code == 0 and shown["bobby"]["discovered"]["consumer-2"]["node_id"] == true_c2
    code, out, _ = await world.peersync("registry", COLUMNS="240")
    assert code == 0 and "node ids proved" in out, out

    # bob moves again but publishes no node id: consumer-1 keeps his entry as it is and is skipped, with why.
    before = world.configmap_text(C1)
    height = await world.edit_validator(bob, f"p2p={sub}.23")
    await world.nudge_registry()
    result = await world.finished(endpoint_change_id("alice", bob, height), EndpointChangeResult, timeout=90)
    reasons = {s.chain_id: s.reason for s in result.skipped}
    assert "no node id published for chain consumer-1" in reasons["consumer-1"], reasons
    assert world.configmap_text(C1) == before
    await eventually(
        lambda: _has(world, C2, f"{true_c2}@{sub}.23:{p2}"), timeout=60, what="consumer-2 follows bob's move"
    )


async def _has(world: World, namespace: str, peer: str) -> bool:
    return peer in world.configmap_text(namespace)
