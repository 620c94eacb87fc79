"""A devnet restarted beside a kept Temporal history continues above its old heights."""

from __future__ import annotations

import requests

from devnet.chain.server import ChainEmulator
from devnet.loop_thread import serve_in_thread
from devnet.scenario import Scenario, ValidatorSpec


def test_chain_starts_at_the_initial_height_and_serves_its_blocks() -> None:
    scenario = Scenario(validators=[ValidatorSpec(moniker="a")], block_time=3600.0)
    emulator = ChainEmulator(scenario, initial_height=1000)
    with serve_in_thread(emulator):
        status = requests.get(f"{emulator.rpc_url}/status", timeout=5).json()["result"]["sync_info"]
        assert (status["earliest_block_height"], status["latest_block_height"]) == ("1000", "1000")
        edit = requests.post(
            f"{emulator.rpc_url}/devnet/edit_validator", json={"validator": "a", "details": "x"}, timeout=5
        ).json()
        assert edit["height"] == 1001
        found = requests.get(
            f"{emulator.rpc_url}/tx_search", params={"query": '"tx.height=1001"'}, timeout=5
        ).json()["result"]
        assert found["total_count"] == "1"
        block = requests.get(f"{emulator.rpc_url}/block", params={"height": "1001"}, timeout=5).json()
        assert block["result"]["block"]["header"]["height"] == "1001"
