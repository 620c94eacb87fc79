"""The emulators must never be what later benchmarks measure (issue #2 targets).

- the chain emulator serves >= 500 REST requests/s and delivers a websocket event <= 20 ms after its block;
- the kube emulator serves >= 500 requests/s;
- a devnet with 300 validators and 500 consumer namespaces is ready in <= 10 s.
"""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import websockets

from bench.report import Row
from bench.scenarios import large_scenario, write
from devnet.files import READY, DevnetManifest
from devnet.testbed import rfc3339_seconds

EDIT_QUERY = "tm.event='Tx' AND message.action='/cosmos.staking.v1beta1.MsgEditValidator'"


async def start_devnet(scenario_file: Path, state: Path) -> tuple[asyncio.subprocess.Process, float]:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers.cli",
        "devnet",
        "--state-dir",
        str(state),
        "--scenario",
        str(scenario_file),
        "--free-ports",
        "--headless",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    while not (state / READY).exists():
        if proc.returncode is not None:
            raise RuntimeError(f"devnet exited with {proc.returncode}")
        await asyncio.sleep(0.02)
    return proc, time.perf_counter() - t0


async def throughput(urls: list[str], total: int, concurrency: int = 16) -> float:
    """Requests per second over `total` GETs cycling through `urls` with `concurrency` clients."""
    counter = iter(range(total))

    async def client(session: aiohttp.ClientSession) -> None:
        for i in counter:
            async with session.get(urls[i % len(urls)]) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{urls[i % len(urls)]} -> {resp.status}")

    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        return total / (time.perf_counter() - t0)


async def websocket_latency(manifest: DevnetManifest, monikers: list[str], edits: int = 50) -> list[float]:
    """Milliseconds from the block's commit time (its header time) to the event arriving at a subscriber.

    A reader task timestamps every message the moment it arrives, independently of the edits being sent."""
    ws_url = manifest.chain_rpc_url.replace("http://", "ws://") + "/websocket"
    arrived: dict[int, float] = {}
    async with websockets.connect(ws_url) as ws, aiohttp.ClientSession() as session:
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "method": "subscribe", "id": 1, "params": {"query": EDIT_QUERY}})
        )
        await ws.recv()

        all_arrived = asyncio.Event()

        async def read() -> None:
            async for raw in ws:
                stamp = time.time()
                height = json.loads(raw)["result"]["events"]["tx.height"][0]
                arrived[int(height)] = stamp
                if len(arrived) >= edits:
                    all_arrived.set()

        reader = asyncio.ensure_future(read())
        heights = []
        for i in range(edits):
            body = {
                "validator": monikers[i % len(monikers)],
                "details": f"p2p=127.1.0.{i % 200 + 1} bench {i}",
            }
            async with session.post(f"{manifest.chain_rpc_url}/devnet/edit_validator", json=body) as resp:
                heights.append((await resp.json())["height"])
        await asyncio.wait_for(all_arrived.wait(), 10)
        reader.cancel()
        latencies = []
        for height in heights:
            async with session.get(f"{manifest.chain_rpc_url}/block", params={"height": str(height)}) as resp:
                header_time = (await resp.json())["result"]["block"]["header"]["time"]
            latencies.append((arrived[height] - rfc3339_seconds(header_time)) * 1000)
    return latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        scenario = large_scenario(300, 500)
        scenario_file = write(scenario, Path(tmp) / "large.yaml")
        proc, ready_s = await start_devnet(scenario_file, Path(tmp) / "state")
        try:
            manifest = DevnetManifest.load(Path(tmp) / "state")
            rest = manifest.chain_rest_url
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{rest}/cosmos/staking/v1beta1/validators?pagination.limit=1") as resp,
            ):
                valoper = (await resp.json())["validators"][0]["operator_address"]
            rest_urls = [
                f"{rest}/cosmos/staking/v1beta1/validators/{valoper}",
                f"{rest}/interchain_security/ccv/provider/opted_in_validators/7",
                f"{rest}/interchain_security/ccv/provider/consumer_chain/7",
            ]
            page_urls = [f"{rest}/cosmos/staking/v1beta1/validators?pagination.limit=100"]
            cluster = manifest.clusters[0]
            ns = cluster.namespaces[7]
            kube_urls = [
                f"{cluster.kube_url}/api/v1/namespaces/{ns}/configmaps/bench-7-config",
                f"{cluster.kube_url}/apis/apps/v1/namespaces/{ns}/statefulsets/bench-7",
                f"{cluster.kube_url}/api/v1/namespaces?labelSelector=peersync.io%2Fcluster%3Dbench",
            ][:2]
            rest_rps = await throughput(rest_urls, 3000)
            page_rps = await throughput(page_urls, 500)
            kube_rps = await throughput(kube_urls, 3000)
            lat = await websocket_latency(manifest, [v.moniker for v in scenario.validators[1:40]])
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    return [
        Row("devnet ready, 300 validators / 500 consumer namespaces", ready_s, "s", "<= 10", ready_s <= 10),
        Row("chain REST, single-object queries", rest_rps, "req/s", ">= 500", rest_rps >= 500),
        Row("chain REST, 100-validator pages", page_rps, "req/s", "(info)", True),
        Row("kube API, GET configmap / statefulset", kube_rps, "req/s", ">= 500", kube_rps >= 500),
        Row("websocket event after block commit, p50", pct(lat, 50), "ms", "(info)", True),
        Row(
            "websocket event after block commit, p99 (50 edits)",
            pct(lat, 99),
            "ms",
            "<= 20",
            pct(lat, 99) <= 20,
        ),
    ]
