"""The devnet's two emulators together: replacing a consumer's pods restarts its emulated node, which then
reports `catching_up: true` behind the chain for a while and catches up; other nodes are untouched."""

from __future__ import annotations

import aiohttp

from core.upstream import upstream_ports
from devnet.chain.server import ChainEmulator
from devnet.kube.server import KubeEmulator
from devnet.node_restarts import NodeRestarts
from devnet.testbed import default_world, eventually, random_subnet
from devnet.world import seed_cluster

CATCH_UP_SECONDS = 1.0


async def sync_info(http: aiohttp.ClientSession, host: str, chain_id: str) -> dict[str, object]:
    async with http.get(f"http://{host}:{upstream_ports(chain_id).rpc}/status") as resp:
        return dict((await resp.json())["result"]["sync_info"])


async def test_a_replaced_pod_makes_its_node_catch_up() -> None:
    scenario = default_world(random_subnet())
    alice = scenario.validators[0].endpoint
    assert alice is not None
    chain = ChainEmulator(scenario, block_time=0.2)
    kube = KubeEmulator(step_seconds=0.05)
    await chain.start()
    await kube.start()
    try:
        chain.nodes.catch_up_seconds = CATCH_UP_SECONDS
        restarts = NodeRestarts(kube, chain.nodes)
        kube.store.add_listener(restarts)
        seed_cluster(kube, scenario, scenario.clusters[0])
        async with aiohttp.ClientSession() as http:
            for chain_id in ("consumer-1", "consumer-2"):
                assert (await sync_info(http, alice, chain_id))["catching_up"] is False
            kube.settle()
            assert restarts.restarts == []  # the seeded pods turning Ready are the synced nodes, no restart

            deployment = kube.get("Deployment", "alice-consumer-1", "consumer-1")
            assert deployment is not None
            deployment["spec"]["template"]["metadata"]["annotations"]["peersync.io/peers-hash"] = "f" * 16
            kube.apply(deployment)

            async def catching_up() -> dict[str, object] | None:
                info = await sync_info(http, alice, "consumer-1")
                return info if info["catching_up"] else None

            behind = await eventually(catching_up, 10, "consumer-1's node to be catching up")
            assert [ns for ns, _ in restarts.restarts] == ["alice-consumer-1"]
            assert int(str(behind["latest_block_height"])) < chain.height
            assert (await sync_info(http, alice, "consumer-2"))["catching_up"] is False

            async def caught_up() -> bool:
                return (await sync_info(http, alice, "consumer-1"))["catching_up"] is False

            await eventually(caught_up, 5 * CATCH_UP_SECONDS, "consumer-1's node to catch up")
            assert (
                int(str((await sync_info(http, alice, "consumer-1"))["latest_block_height"]))
                >= chain.height - 1
            )
    finally:
        await kube.stop()
        await chain.stop()
