"""`ready` means the devnet's watcher is subscribed: a validator that moves right after it is seen by the
watcher (the fast path), not left to the registry's timer."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from core.ids import endpoint_change_id
from devnet.files import READY
from devnet.stack import Devnet, DevnetOptions
from devnet.testbed import default_world, eventually, random_subnet


async def test_a_move_right_after_ready_takes_the_watchers_fast_path(tmp_path: Path) -> None:
    scenario = default_world(random_subnet())
    devnet = Devnet(
        scenario,
        DevnetOptions(
            state_dir=tmp_path / "devnet",
            temporal_port=0,
            ui_port=None,
            chain_rpc_port=0,
            chain_rest_port=0,
            kube_port=0,
            kube_step_seconds=0.1,
            registry_refresh="10m",  # the registry's timer cannot be what brings the change in
            services=["worker", "watch"],
        ),
    )
    manifest = await devnet.start()
    try:
        assert (tmp_path / "devnet" / READY).exists()
        new = f"{scenario.validators[0].endpoint.rsplit('.', 1)[0]}.22"  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as http:
            # The very moment `ready` is there: no wait for anything.
            url = f"{manifest.chain_rpc_url}/devnet/edit_validator"
            async with http.post(url, json={"validator": "bob", "details": f"p2p={new}"}) as resp:
                assert resp.status == 200, await resp.text()
                height = int((await resp.json())["height"])
        assert devnet.chain is not None
        bob = next(v.operator_address for v in devnet.chain.state().validators if v.moniker == "bob")
        client = await Client.connect(manifest.temporal_address, data_converter=pydantic_data_converter)
        handle = client.get_workflow_handle(endpoint_change_id("alice", bob, height))

        async def started_by() -> str | None:
            try:
                history = await handle.fetch_history()
            except RPCError:
                return None
            payload = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
            return str(pydantic_data_converter.payload_converter.from_payload(payload, dict)["source"])

        # Started by the registry (the one writer of intent) on the watcher's nudge: its timer is 10 minutes.
        assert await eventually(started_by, 20, "the endpoint change of bob's move") == "registry"
    finally:
        await devnet.stop()
