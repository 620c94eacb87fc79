"""`make demo`: bring the devnet up, show the world it runs, keep it up until Ctrl-C.

With DEMO_EXIT=1 it instead verifies that every part answers over its real protocol and exits 0 (non-zero,
with the reason, otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.live import Live
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from devnet.files import READY, DevnetManifest
from devnet.mission import run_mission
from devnet.processes import ChildProcess
from devnet.summary import read_world, render
from workflows.search_attributes import ALL_KEYS

READY_TIMEOUT = 120.0
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


async def verify(manifest: DevnetManifest) -> list[str]:
    """Ask each part a real question; return what it answered."""
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
    if not view.validators or not view.consumers:
        raise DemoFailed("the chain emulator reports no validators or no consumers")
    seen.append(
        f"chain: height {view.height}, {len(view.validators)} validators, {len(view.consumers)} consumers"
    )
    for info in manifest.clusters:
        rows = [n for n in view.namespaces if n.cluster == info.id]
        if len(rows) != len(info.namespaces) or any(n.problems or not n.peers for n in rows):
            raise DemoFailed(f"cluster {info.id}: namespaces or peer lists are not as seeded: {rows}")
        seen.append(f"cluster {info.id}: {len(rows)} managed namespaces, each with its peer list")
        if shutil.which("kubectl"):
            proc = await asyncio.create_subprocess_exec(
                "kubectl",
                "--kubeconfig",
                str(info.kubeconfig),
                "get",
                "deployments,statefulsets",
                "-A",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await proc.communicate()
            if proc.returncode != 0:
                raise DemoFailed(f"kubectl against cluster {info.id} failed: {out.decode().strip()}")
            seen.append(f"kubectl sees {len(out.decode().splitlines()) - 1} workloads in cluster {info.id}")
    return seen


def hints(manifest: DevnetManifest) -> None:
    console.print(f"[bold]Temporal UI[/]: {manifest.temporal_ui_url or '(headless)'}")
    first = manifest.clusters[0] if manifest.clusters else None
    if first:
        console.print(
            f"[bold]kubectl[/]: kubectl --kubeconfig {first.kubeconfig} get ns -l peersync.io/cluster={first.id}"
        )
    console.print(f"[bold]settings[/]: source {manifest.state_dir / 'env'}")


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


async def main(state_dir: Path, exit_when_verified: bool) -> int:
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
    ]
    devnet = ChildProcess("devnet", argv, log_file=state_dir / "devnet.log")
    await devnet.start()
    try:
        console.print(f"starting the devnet in {state_dir} (log: {state_dir / 'devnet.log'}) ...")
        manifest = await wait_ready(devnet, state_dir)
        hints(manifest)
        console.print(render(await read_world(manifest)))
        for line in await verify(manifest):
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
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.state_dir.resolve(), os.environ.get("DEMO_EXIT") == "1")))
