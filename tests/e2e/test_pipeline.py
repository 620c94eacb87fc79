"""The mission on the devnet: a validator moves, every affected consumer gets the new peers and exactly one
rollout; the others are untouched."""

from __future__ import annotations

from tests.e2e.harness import World, eventually
from workflows.contracts import EndpointChangeResult, Phase
from workflows.ids import endpoint_change_id


async def test_bob_moves_and_consumers_1_and_2_follow_with_one_rollout_each(world: World) -> None:
    await world.start_worker()
    before = {ns: world.generation(ns) for ns in ("alice-consumer-1", "alice-consumer-2", "alice-consumer-3")}
    untouched = world.configmap_text("alice-consumer-3")
    await eventually(lambda: _registry_has(world, 4), what="the registry's first refresh")

    new = f"{world.subnet}.22"
    height = await world.edit_validator("bob", f"p2p={new}")
    wf_id = endpoint_change_id("alice", world.operator("bob"), height)
    result = await world.finished(wf_id, EndpointChangeResult)

    assert result.phase == Phase.DONE
    assert sorted(c.consumer.namespace for c in result.consumers) == ["alice-consumer-1", "alice-consumer-2"]
    assert all(c.restarted and c.changed for c in result.consumers)
    assert [s.chain_id for s in result.skipped] == ["consumer-3"]
    for ns in ("alice-consumer-1", "alice-consumer-2"):
        assert f"@{new}:" in world.configmap_text(ns)
        assert f"@{world.subnet}.2:" not in world.configmap_text(ns)
        assert world.generation(ns) == before[ns] + 1
    assert world.configmap_text("alice-consumer-3") == untouched
    assert world.generation("alice-consumer-3") == before["alice-consumer-3"]


async def _registry_has(world: World, n: int) -> bool:
    code, out, err = await world.peersync("registry", "--json")
    return code == 0 and out.count('"operator_address"') == n
