"""One consumer chain run in two namespaces (a validator node and its sentry): a move syncs both, and the
change's progress shows each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.contracts import EndpointChangeResult, Phase
from core.ids import endpoint_change_id
from devnet.real.world import make_world
from devnet.scenario import NamespaceSpec, Scenario
from devnet.testbed import World, default_world, random_subnet

SENTRY = "alice-consumer-1-sentry"

pytestmark = pytest.mark.both_testbeds


def with_sentry() -> Scenario:
    scenario = default_world(random_subnet())
    [cluster] = scenario.clusters
    assert cluster.namespaces is not None
    cluster.namespaces.append(NamespaceSpec(consumer="consumer-1", name=SENTRY))
    return scenario


@pytest.fixture
async def sentry_world(tmp_path: Path, testbed: str) -> AsyncIterator[World]:
    async with make_world(testbed, tmp_path, with_sentry()) as w:
        yield w


async def test_a_chain_run_in_two_namespaces_is_synced_in_both(sentry_world: World) -> None:
    world = sentry_world
    before = {ns: world.generation(ns) for ns in ("alice-consumer-1", SENTRY)}
    await world.start_worker()
    await world.registry_ready()
    new = f"{world.subnet}.22"
    height = await world.edit_validator("bob", f"p2p={new}")
    wf_id = endpoint_change_id("alice", world.operator("bob"), height)
    result = await world.finished(wf_id, EndpointChangeResult)

    assert result.phase == Phase.DONE
    synced = sorted(c.consumer.namespace for c in result.consumers)
    assert synced == sorted(["alice-consumer-1", SENTRY, "alice-consumer-2"])
    for ns in ("alice-consumer-1", SENTRY):
        assert f"@{new}:" in world.configmap_text(ns)
        assert world.generation(ns) == before[ns] + 1
    rows = {c.namespace: c for c in (await world.progress(wf_id)).consumers}
    assert rows[SENTRY].chain_id == "consumer-1" and rows[SENTRY].state == "restarted"
