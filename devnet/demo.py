"""`make demo`: bring the devnet up, show the world it runs, keep it up until Ctrl-C.

With DEMO_EXIT=1 it instead verifies that every part answers over its real protocol and exits 0 (non-zero,
with the reason, otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from core.upstream import upstream_node_id
from devnet import shipped_rbac
from devnet.files import READY, DevnetManifest
from devnet.mission import run_mission
from devnet.processes import ChildProcess
from devnet.real.binaries import MANIFEST, binary
from devnet.scenario import ClusterSpec, Scenario, load_scenario
from devnet.summary import NamespaceRow, WorldView, read_world, render
from devnet.world import desired_peers
from workflows.search_attributes import ALL_KEYS

READY_TIMEOUT = 120.0
KIND_NAMES = {"deployment": "Deployment", "statefulset": "StatefulSet"}
console = Console()


class DemoFailed(RuntimeError):
    pass


async def wait_ready(devnet: ChildProcess, state_dir: Path) -> DevnetManifest:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT
    while not (state_dir / READY).exists():
        devnet.raise_if_exited()
        if loop.time() > deadline:
            raise DemoFailed(f"devnet not ready after {READY_TIMEOUT:.0f}s; see {state_dir / 'devnet.log'}")
        await asyncio.sleep(0.1)
    return DevnetManifest.load(state_dir)


def check_chain(view: WorldView, scenario: Scenario) -> str:
    """The chain must hold exactly the scenario's validators, consumers and opt-ins."""
    monikers = sorted(v.moniker for v in view.validators)
    seeded_monikers = sorted(v.moniker for v in scenario.validators)
    if monikers != seeded_monikers:
        raise DemoFailed(f"the chain has validators {monikers}, the scenario seeded {seeded_monikers}")
    found = {c.chain_id: c.opted_in for c in view.consumers}
    seeded = {
        c.chain_id: sorted(c.opted_in) if c.phase == "CONSUMER_PHASE_LAUNCHED" else []
        for c in scenario.consumers
    }
    if found != seeded:
        raise DemoFailed(f"the chain has consumers and opt-ins {found}, the scenario seeded {seeded}")
    return (
        f"chain: height {view.height}, {len(monikers)} validators, {len(found)} consumers with their opt-ins"
    )


def expected_peers(scenario: Scenario, cluster: ClusterSpec, chain_id: str) -> list[str]:
    """The peer list the scenario implies, as read_cluster shows it (`moniker host:port`)."""
    names = {upstream_node_id(v.moniker, chain_id): v.moniker for v in scenario.validators}
    return sorted(
        f"{names.get(p.node_id, '?')} {p.host}:{p.port}" for p in desired_peers(scenario, cluster, chain_id)
    )


def check_namespaces(rows: list[NamespaceRow], scenario: Scenario, cluster: ClusterSpec) -> str:
    """The cluster's managed namespaces must be the seeded ones, each with the scenario's peer list."""
    seeded = {str(ns.name): ns.consumer for ns in scenario.namespaces(cluster) if ns.managed}
    found = {n.namespace: n.chain_id for n in rows}
    if found != seeded or len(rows) != len(seeded):
        raise DemoFailed(f"cluster {cluster.id}: managed namespaces {found}, the scenario seeded {seeded}")
    for row in rows:
        want = expected_peers(scenario, cluster, row.chain_id)
        if row.problems or sorted(row.peers) != want:
            raise DemoFailed(
                f"cluster {cluster.id}, {row.namespace}: peers {row.peers} (problems {row.problems}), want {want}"
            )
    return f"cluster {cluster.id}: {len(rows)} managed namespaces, each with the scenario's peer list"


def check_restart_guard(rows: list[NamespaceRow], scenario: Scenario, cluster: ClusterSpec) -> str:
    """The workloads that could run two signers at once (activities/workload_safety) are shown refused."""
    unsafe = {
        str(ns.name)
        for ns in scenario.namespaces(cluster)
        if ns.managed
        and ns.signer == "local"
        and (ns.replicas > 1 or (ns.workload == "deployment" and ns.update_strategy != "Recreate"))
    }
    refused = {n.namespace: n.restart for n in rows if n.restart.startswith("refused")}
    if set(refused) != unsafe:
        raise DemoFailed(
            f"cluster {cluster.id}: restarts refused in {sorted(refused)}, expected {sorted(unsafe)}"
        )
    if not refused:
        return f"cluster {cluster.id}: every workload restarts one signer at a time"
    return f"cluster {cluster.id}: peersync refuses to restart " + "; ".join(
        f"{ns} ({why.removeprefix('refused: ')})" for ns, why in sorted(refused.items())
    )


def check_workloads(listing: dict[str, Any], scenario: Scenario, cluster: ClusterSpec) -> str:
    """`kubectl get deployments,statefulsets -A -o json` must list exactly the workloads seeded (besides
    peersync's own, which the real testbed runs from the shipped overlay)."""
    found = sorted(
        f"{item['kind'].lower()} {item['metadata']['namespace']}/{item['metadata']['name']}"
        for item in listing.get("items", [])
        if item["metadata"]["namespace"] != shipped_rbac.NAMESPACE
    )
    seeded = sorted(f"{ns.workload} {ns.name}/{ns.workload_name}" for ns in scenario.namespaces(cluster))
    if found != seeded:
        raise DemoFailed(f"kubectl sees in cluster {cluster.id} the workloads {found}, seeded {seeded}")
    counts = sorted(Counter(w.split()[0] for w in found).items())
    kinds = ", ".join(f"{n} {KIND_NAMES.get(kind, kind)}{'s' if n != 1 else ''}" for kind, n in counts)
    return f"kubectl sees {len(found)} workloads in cluster {cluster.id} ({kinds}), as seeded"


def kubectl() -> str | None:
    """The kubectl `make testbed` built from the pinned release, else one on PATH, else None."""
    return str(binary("kubectl")) if MANIFEST.exists() else shutil.which("kubectl")


async def kubectl_workloads(kubectl: str, kubeconfig: Path) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        kubectl,
        "--kubeconfig",
        str(kubeconfig),
        "get",
        "deployments,statefulsets",
        "-A",
        "-o",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise DemoFailed(f"kubectl --kubeconfig {kubeconfig} failed: {err.decode().strip()}")
    return json.loads(out)


async def verify(manifest: DevnetManifest, scenario: Scenario) -> list[str]:
    """Ask each part a real question; return what it answered. Every answer is checked against the
    scenario the devnet was seeded from, so a wrong world fails the demo."""
    seen = []
    client = await Client.connect(manifest.temporal_address, namespace=manifest.temporal_namespace)
    attrs = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=manifest.temporal_namespace)
    )
    missing = [k.name for k in ALL_KEYS if k.name not in attrs.custom_attributes]
    if missing:
        raise DemoFailed(f"Temporal lacks the search attributes {missing}")
    seen.append(
        f"Temporal {manifest.temporal_address}: namespace {manifest.temporal_namespace}, search attributes ok"
    )
    view = await read_world(manifest)
    seen.append(check_chain(view, scenario))
    ids = [info.id for info in manifest.clusters]
    if ids != [c.id for c in scenario.clusters]:
        raise DemoFailed(
            f"the devnet runs clusters {ids}, the scenario has {[c.id for c in scenario.clusters]}"
        )
    for info, cluster in zip(manifest.clusters, scenario.clusters, strict=True):
        rows = [n for n in view.namespaces if n.cluster == info.id]
        seen.append(check_namespaces(rows, scenario, cluster))
        seen.append(check_restart_guard(rows, scenario, cluster))
        if (path := kubectl()) is not None:
            seen.append(check_workloads(await kubectl_workloads(path, info.kubeconfig), scenario, cluster))
    return seen


def hints(manifest: DevnetManifest) -> None:
    console.print(f"[bold]Temporal UI[/]: {manifest.temporal_ui_url or '(headless)'}")
    first = manifest.clusters[0] if manifest.clusters else None
    if first:
        console.print(
            f"[bold]kubectl[/]: kubectl --kubeconfig {first.kubeconfig} get ns -l peersync.io/cluster={first.id}"
        )
    for info in manifest.clusters:
        console.print(f"[bold]settings[/] for cluster {info.id}: source {info.env_file}")


async def live_summary(manifest: DevnetManifest, devnet: ChildProcess) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with Live(render(await read_world(manifest)), console=console, refresh_per_second=1) as live:
        while not stop.is_set():
            devnet.raise_if_exited()
            live.update(render(await read_world(manifest)))
            try:
                await asyncio.wait_for(stop.wait(), 2.0)
            except TimeoutError:
                pass


async def main(state_dir: Path, exit_when_verified: bool, testbed: str = "emulated") -> int:
    state_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    argv = [
        sys.executable,
        "-m",
        "workers.cli",
        "devnet",
        "--state-dir",
        str(state_dir),
        "--services",
        "worker,watch",
        "--registry-refresh",
        "60s",  # the default: the watcher, not the registry's timer, must bring the change in
        "--testbed",
        testbed,
    ]
    devnet = ChildProcess("devnet", argv, log_file=state_dir / "devnet.log")
    await devnet.start()
    try:
        console.print(f"starting the devnet in {state_dir} (log: {state_dir / 'devnet.log'}) ...")
        manifest = await wait_ready(devnet, state_dir)
        hints(manifest)
        console.print(render(await read_world(manifest)))
        for line in await verify(manifest, load_scenario(None)):  # the devnet's: no --scenario above
            console.print(f"[green]ok[/] {line}")
        for line in await run_mission(manifest, console):
            console.print(f"[green]ok[/] {line}")
        console.print(render(await read_world(manifest)))
        if exit_when_verified:
            return 0
        console.print("Ctrl-C stops the devnet.")
        await live_summary(manifest, devnet)
        return 0
    except Exception as exc:
        console.print(f"[red]demo failed[/]: {exc}")
        return 1
    finally:
        await devnet.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=Path(".devnet"))
    parser.add_argument("--testbed", choices=("emulated", "real"), default="emulated")
    args = parser.parse_args()
    exit_when_verified = os.environ.get("DEMO_EXIT") == "1"
    raise SystemExit(asyncio.run(main(args.state_dir.resolve(), exit_when_verified, args.testbed)))
