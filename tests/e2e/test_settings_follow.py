"""Long-lived workflows follow the settings of the worker running now, not those they started with:
PEERSYNC_REQUIRE_APPROVAL in every ConsumerSyncWorkflow, PEERSYNC_REGISTRY_REFRESH in the registry."""

from __future__ import annotations

from core.contracts import EndpointChangeResult, Phase
from core.ids import endpoint_change_id, registry_id
from devnet.testbed import World, eventually
from workflows.registry import RegistryStats

C1 = "alice-consumer-1"


async def test_switching_approval_off_applies_to_running_consumer_syncs(world: World) -> None:
    strict = await world.start_worker(PEERSYNC_REQUIRE_APPROVAL="true")
    await world.registry_ready()
    code, _out, err = await world.peersync("sync", "--consumer", C1, PEERSYNC_REQUIRE_APPROVAL="true")
    assert code == 0, err
    assert (await world.consumer_sync(C1)).require_approval
    await strict.stop()

    await world.start_worker()  # the operator turned approval off
    height = await world.edit_validator("bob", f"p2p={world.subnet}.22")
    result = await world.finished(
        endpoint_change_id("alice", world.operator("bob"), height), EndpointChangeResult
    )
    assert result.phase == Phase.DONE
    [c1] = [c for c in result.consumers if c.consumer.namespace == C1]
    assert c1.restarted, c1
    assert not (await world.consumer_sync(C1)).require_approval


async def test_a_worker_start_hands_its_refresh_interval_to_the_running_registry(world: World) -> None:
    first = await world.start_worker()
    await world.registry_ready()
    await first.stop()
    await world.start_worker(PEERSYNC_REGISTRY_REFRESH="1h")

    async def interval() -> float | None:
        stats = await world.handle(registry_id("alice")).query("stats", result_type=RegistryStats)
        return stats.refresh_seconds if stats.refresh_seconds == 3600 else None

    assert await eventually(interval, what="the registry to take the new interval") == 3600
