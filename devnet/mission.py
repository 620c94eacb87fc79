"""The scripted scenario `make demo` runs: bob moves his P2P endpoint on the chain; peersync must give
consumer-1 and consumer-2 (where bob is opted in) the new peer list with exactly one rollout each, and
leave consumer-3 alone. Everything is observed from outside, as an operator would: Temporal queries, the
Kubernetes API, the chain's REST."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import aiohttp
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from pydantic import BaseModel
from rich.console import Console
from rich.live import Live
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from core.contracts import EndpointChangeResult, Progress, RegistryView
from core.ids import endpoint_change_id, registry_id
from core.upstream import upstream_node_id
from devnet.files import ClusterInfo, DevnetManifest
from devnet.publish import publish_details
from devnet.summary import read_world
from workers.views import progress_table

MOVER = "bob"
TIMEOUT = 120.0


class MissionFailed(RuntimeError):
    pass


class Snapshot(BaseModel):
    peers: dict[str, str]  # namespace -> ConfigMap text
    generations: dict[str, int]
    chains: dict[str, str]  # namespace -> consumer chain id


def snapshot(info: ClusterInfo) -> Snapshot:
    api = k8s_config.new_client_from_config(config_file=str(info.kubeconfig))
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    peers, gens, chains = {}, {}, {}
    for ns in info.namespaces:
        meta = core.read_namespace(ns).metadata
        notes = meta.annotations
        chains[ns] = meta.labels["peersync.io/chain-id"]
        cm = core.read_namespaced_config_map(notes["peersync.io/configmap"], ns)
        peers[ns] = cm.data[notes["peersync.io/peers-key"]]
        kind, name = notes["peersync.io/workload"].split("/")
        read = apps.read_namespaced_deployment if kind == "deployment" else apps.read_namespaced_stateful_set
        gens[ns] = read(name, ns).metadata.generation
    api.close()
    return Snapshot(peers=peers, generations=gens, chains=chains)


def new_address(manifest: DevnetManifest, current: str) -> str:
    """A fresh address for the mover inside the devnet's allowed range."""
    net = ipaddress.ip_network(manifest.allow_cidrs[0])
    taken = int(ipaddress.ip_address(current.split(":")[0]))
    for host in net.hosts():
        if int(host) > taken + 10:
            return str(host)
    raise MissionFailed(f"no free address in {net}")


async def registry_rows(client: Client, cluster_id: str) -> list[RegistryView]:
    try:
        return await client.get_workflow_handle(registry_id(cluster_id)).query(
            "table", result_type=list[RegistryView]
        )
    except RPCError:
        return []


async def until(check, what: str, timeout: float = TIMEOUT):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise MissionFailed(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)
    return value


async def run_mission(manifest: DevnetManifest, console: Console) -> list[str]:
    """Drive the change and check its outcome; return the checks that passed."""
    info = manifest.clusters[0]
    client = await Client.connect(
        manifest.temporal_address,
        namespace=manifest.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
    rows = await until(lambda: registry_rows(client, info.id), "the registry's first refresh")
    mover = next(r for r in rows if r.moniker == MOVER)
    before = await asyncio.to_thread(snapshot, info)
    target = new_address(manifest, mover.effective or "127.0.0.1")
    console.print(
        f"[bold]{MOVER}[/] publishes [bold]p2p={target}[/] on the chain (was {mover.effective}) ..."
    )
    height = await publish_details(manifest, MOVER, f"p2p={target}")
    wf_id = endpoint_change_id(info.id, mover.operator_address, height)
    handle = client.get_workflow_handle(wf_id, result_type=EndpointChangeResult)

    async def running_or_done() -> bool:
        try:
            await handle.describe()
            return True
        except RPCError:
            return False

    await until(running_or_done, f"workflow {wf_id} to start")
    with Live(console=console, refresh_per_second=4) as live:
        while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            live.update(progress_table(wf_id, await handle.query("progress", result_type=Progress)))
            await asyncio.sleep(0.25)
        live.update(progress_table(wf_id, await handle.query("progress", result_type=Progress)))
    console.print()
    result = await handle.result()
    await show_registry_diff(client, info.id, mover, target, console)
    await show_schedule(client, info.id, console)
    world = await read_world(manifest)
    opted = {c.chain_id for c in world.consumers if MOVER in c.opted_in}
    checks = verify(before, await asyncio.to_thread(snapshot, info), result, target, opted)
    if manifest.testbed == "real":  # the nodes are real: the new peer must be connected, not only written
        for c in result.consumers:
            checks.append(await connected(info, c.consumer.namespace, c.consumer.chain_id, target))
    return checks


async def connected(info: ClusterInfo, namespace: str, chain_id: str, target: str) -> str:
    """Every node behind the namespace's pods lists the mover, at `target`, in its real `net_info`."""
    api = k8s_config.new_client_from_config(config_file=str(info.kubeconfig))
    core = k8s.CoreV1Api(api)
    notes = (await asyncio.to_thread(core.read_namespace, namespace)).metadata.annotations
    pods = (await asyncio.to_thread(core.list_namespaced_pod, namespace)).items
    api.close()
    urls = sorted(
        {f"http://{p.status.pod_ip}:{notes['peersync.io/rpc-port']}" for p in pods if p.status.pod_ip}
    )
    mover = upstream_node_id(MOVER, chain_id)

    async def listed() -> bool:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for url in urls:
                try:
                    async with http.get(f"{url}/net_info") as resp:
                        peers = (await resp.json(content_type=None))["result"]["peers"]
                except (aiohttp.ClientError, KeyError, TimeoutError):
                    return False  # restarting
                if not any(p["node_info"]["id"] == mover and listens_at(p, target) for p in peers):
                    return False
        return True

    await until(listed, f"{namespace}'s nodes to connect {MOVER} at {target}")
    return f"{namespace}: {len(urls)} real node(s) connected to {MOVER} at {target} (net_info)"


async def show_registry_diff(
    client: Client, cluster_id: str, before: RegistryView, target: str, console: Console
) -> None:
    """The registry's row for the mover, before and after (it refreshes on the watcher's nudge)."""

    async def moved() -> RegistryView | None:
        rows = await registry_rows(client, cluster_id)
        row = next((r for r in rows if r.operator_address == before.operator_address), None)
        return row if row is not None and row.effective == target else None

    after = await until(moved, "the registry to show the move")
    console.print(
        f"registry: {before.moniker} {before.effective} (height {before.height}) -> "
        f"[bold]{after.effective}[/] (height {after.height}), status {after.status.value}"
    )


async def show_schedule(client: Client, cluster_id: str, console: Console) -> None:
    desc = await client.get_schedule_handle(f"reconcile-{cluster_id}").describe()
    every = ", ".join(str(i.every) for i in desc.schedule.spec.intervals)
    upcoming = (
        desc.info.next_action_times[0].isoformat(timespec="seconds") if desc.info.next_action_times else "-"
    )
    console.print(f"schedule {desc.id}: reconcile every {every}, next run {upcoming}")


def verify(
    before: Snapshot, after: Snapshot, result: EndpointChangeResult, target: str, opted: set[str]
) -> list[str]:
    """What the chain says must have changed (consumers the mover is opted in to) against the cluster."""
    checks = []
    moved = {ns for ns, chain in after.chains.items() if chain in opted}
    if moved != {c.consumer.namespace for c in result.consumers}:
        raise MissionFailed(
            f"peersync synced {[c.consumer.namespace for c in result.consumers]}, expected {moved}"
        )
    for ns in sorted(after.peers):
        gained = f"@{target}:" in after.peers[ns]
        bumps = after.generations[ns] - before.generations[ns]
        if ns in moved:
            if not gained or bumps != 1:
                raise MissionFailed(f"{ns}: new peer present={gained}, rollouts={bumps} (want True, 1)")
            checks.append(f"{ns}: {MOVER} at {target} in the peer list, exactly one rollout")
        else:
            if after.peers[ns] != before.peers[ns] or bumps:
                raise MissionFailed(f"{ns} was touched although {MOVER} is not opted in there")
            checks.append(f"{ns}: untouched ({MOVER} not opted in)")
    if result.phase.value != "done":
        raise MissionFailed(f"the change ended {result.phase.value}")
    return checks


def listens_at(peer: dict[str, Any], host: str) -> bool:
    """The peer's own listen address is on `host` (its remote_ip is 127.0.0.1 when it dialed in: every
    loopback connection comes from that source address)."""
    return str(peer["node_info"]["listen_addr"]).removeprefix("tcp://").rpartition(":")[0] == host
