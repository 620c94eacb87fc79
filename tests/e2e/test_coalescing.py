"""Coalescing: a burst of endpoint changes that hit one consumer while its rollout runs costs that consumer
at most one more rollout, and the ConfigMap ends with the final endpoints (DESIGN: "N requests arriving
during one sync -> ONE more sync, not N restarts")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.contracts import EndpointChangeResult, Phase, SyncResult
from core.ids import endpoint_change_id
from devnet.testbed import World, default_world, eventually, random_subnet

NS = "alice-consumer-1"  # all four opted in: every move of bob, carol or dave hits it
DEPLOYMENT = {"type": "stall", "resource": "deployments", "namespace": NS, "name": "consumer-1"}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """The default world, but alice's cluster runs consumer-1 only: every change hits that one consumer.

    (With consumer-2/3 running too, their syncs would race the burst: a sync that computed bob's peer at
    .24 and probes it after bob moved on to .27 waits out its probe budget before keeping the old peer.)
    """
    scenario = default_world(random_subnet())
    cluster = scenario.clusters[0]
    assert cluster.namespaces is not None
    cluster.namespaces = [n for n in cluster.namespaces if n.consumer == "consumer-1"]
    async with World(tmp_path, scenario) as w:
        yield w


async def test_ten_changes_during_one_rollout_cost_one_more_rollout(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    log = world.record_kube()
    gen0 = world.generation(NS)
    # The rollout of consumer-1 holds (the controller makes no progress) until the burst is queued.
    await world.kube_fault(DEPLOYMENT)

    # Change 1: bob moves; consumer-1's sync #1 writes, restarts and waits on the held rollout.

    first = await _change(world, "bob", 21)
    await eventually(lambda: _generation_is(world, gen0 + 1), what="consumer-1's first rollout to start")

    # Changes 2..10 while that rollout runs, three validators at a time (bob moves three more times).
    burst: list[str] = []
    final = {"bob": 21}
    for round_ in range(3):
        edits = [("carol", 22 + 3 * round_), ("dave", 23 + 3 * round_), ("bob", 24 + 3 * round_)]
        ids = await asyncio.gather(*(_change(world, m, host) for m, host in edits))
        burst += ids
        final.update({m: host for m, host in edits})
        # Each change's request is parked on consumer-1 behind the running sync before the next round.
        await eventually(
            lambda ids=ids: _queued(world, ids), what=f"round {round_ + 1} to queue on consumer-1"
        )
    assert len({first, *burst}) == 10
    assert world.generation(NS) == gen0 + 1  # nothing restarted while the burst arrived

    world.kube().clear_faults()  # the first rollout completes; the nine queued requests get ONE more sync
    results: dict[str, EndpointChangeResult] = {}
    for wf_id in [first, *burst]:
        results[wf_id] = await world.finished(wf_id, EndpointChangeResult)

    assert all(r.phase == Phase.DONE for r in results.values()), {k: r.phase for k, r in results.items()}
    syncs = {wf_id: _consumer_1(r).sync_number for wf_id, r in results.items()}
    assert syncs[first] == 1
    assert {syncs[wf_id] for wf_id in burst} == {2}, syncs  # the nine were answered by one sync
    assert world.generation(NS) == gen0 + 2
    hashes = {
        (obj["spec"]["template"]["metadata"].get("annotations") or {}).get("peersync.io/peers-hash")
        for obj in log.objects("Deployment", NS)
    }
    assert len(hashes - {None}) == 2, hashes  # two peer sets rolled out, not ten
    assert log.configmap_data_writes(NS) == 2  # two peer lists written (each rollout also records its hash)

    text = world.configmap_text(NS)
    for moniker, host in final.items():
        assert f"@{world.subnet}.{host}:" in text, (moniker, text)
    for stale in [2, 3, 4, *range(21, 31)]:
        if stale not in final.values():
            assert f"@{world.subnet}.{stale}:" not in text, (stale, text)


async def _change(world: World, moniker: str, host: int) -> str:
    """Move `moniker` to <subnet>.<host>; return the id of the EndpointChangeWorkflow the registry starts."""
    height = await world.edit_validator(moniker, f"p2p={world.subnet}.{host}")
    await world.registry_sees(moniker, height)
    return endpoint_change_id("alice", world.operator(moniker), height)


async def _generation_is(world: World, generation: int) -> bool:
    return world.generation(NS) == generation


async def _queued(world: World, ids: list[str]) -> bool:
    state = await world.consumer_sync(NS)
    waiting = {r.requested_by for r in state.pending}
    return all(wf_id in waiting for wf_id in ids)


def _consumer_1(result: EndpointChangeResult) -> SyncResult:
    return next(c for c in result.consumers if c.consumer.namespace == NS)
