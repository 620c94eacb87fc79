"""`peersync devnet`: a complete local world on loopback (see devnet/stack.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from workers.cli_common import fail

if TYPE_CHECKING:
    from devnet.files import DevnetManifest
    from devnet.stack import Devnet

# The long-running `peersync` commands the devnet can start per cluster, each with that cluster's env file.
SERVICES = ("worker", "watch")
TESTBEDS = ("emulated", "real")


def devnet(
    state_dir: Annotated[
        Path, typer.Option(help="Where the devnet keeps Temporal's SQLite file, env and logs.")
    ] = Path(".devnet"),
    scenario: Annotated[
        Path | None,
        typer.Option(help="YAML scenario (validators, consumers, clusters); default: DESIGN.md's."),
    ] = None,
    free_ports: Annotated[
        bool, typer.Option(help="Pick free ports for everything instead of the defaults.")
    ] = False,
    temporal_port: Annotated[int, typer.Option(help="Temporal frontend gRPC port (0: free).")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal UI port (0: free).")] = 8233,
    headless: Annotated[bool, typer.Option(help="Run Temporal without its UI.")] = False,
    chain_rpc_port: Annotated[int, typer.Option(help="Chain emulator CometBFT RPC port (0: free).")] = 26657,
    chain_rest_port: Annotated[int, typer.Option(help="Chain emulator REST port (0: free).")] = 1317,
    kube_port: Annotated[
        int, typer.Option(help="First kube emulator port; one more per cluster (0: free).")
    ] = 6443,
    kube_step: Annotated[float, typer.Option(help="Seconds per simulated rollout step.")] = 0.5,
    block_time: Annotated[
        float | None, typer.Option(help="Seconds per empty block (default: scenario's).")
    ] = None,
    registry_refresh: Annotated[
        str, typer.Option(help="PEERSYNC_REGISTRY_REFRESH for the devnet's workers.")
    ] = "5s",
    clusters: Annotated[
        str | None,
        typer.Option(
            help="Comma list of validator monikers, one cluster each (e.g. alice,carol); default: the scenario's."
        ),
    ] = None,
    testbed: Annotated[
        str,
        typer.Option(
            help="emulated: the project's chain and kube emulators (fast; fault injection). real: a real ICS "
            "provider, real cometbft consumer nodes and a real Kubernetes control plane with kwok, built by "
            "`make testbed` (slower; what the emulators are measured against)."
        ),
    ] = "emulated",
    services: Annotated[
        str,
        typer.Option(
            help="Comma list of peersync services to start per cluster, from: worker, watch "
            "(e.g. worker,watch). None start by default: run them yourself with the cluster's env file.",
            show_default="none",
        ),
    ] = "",
    require_approval: Annotated[
        bool,
        typer.Option(
            help="PEERSYNC_REQUIRE_APPROVAL=true in every cluster's env file and services: each change waits "
            "for `peersync approve` before restarting anything."
        ),
    ] = False,
) -> None:
    """Start Temporal (with UI), the chain emulator, a kube emulator per cluster
    (or, with --testbed real, the real chain, nodes and control planes)
    and, only with --services, peersync's worker and/or watcher per cluster.

    Writes to DIR, per cluster: env (source it to run peersync as that cluster),
    kubeconfig (cluster admin) and kubeconfig-worker (peersync's ServiceAccount).
    Other clusters' files end in -ID: env-ID, kubeconfig-ID, kubeconfig-worker-ID.
    Also devnet.json, and ready once every part answers.
    Runs until Ctrl-C or SIGTERM and stops everything it started.
    """
    # The emulators load only for this command: the product's own commands never import them, and the
    # production image does not hold them.
    try:
        from devnet.scenario import load_scenario, with_clusters
        from devnet.stack import Devnet, DevnetOptions
    except ImportError as exc:
        fail(
            f"the devnet is not installed here ({exc.name}): it is development tooling, left out of the "
            "production image; run it from a source checkout (`make demo`, or pip install -e '.[devnet]')"
        )

    try:
        world = load_scenario(scenario)
        if clusters:
            world = with_clusters(world, [c.strip() for c in clusters.split(",") if c.strip()])
    except ValidationError as exc:
        where = "; ".join(".".join(map(str, e["loc"])) or "scenario" for e in exc.errors())
        fail(f"scenario {scenario or '(default)'}: {exc.errors()[0]['msg']} (at {where})")
    except Exception as exc:  # unreadable or malformed YAML: one line, nothing started
        fail(f"scenario {scenario}: {exc}")
    if testbed not in TESTBEDS:
        fail(f"--testbed: unknown {testbed}; choose from {', '.join(TESTBEDS)}")
    wanted = [s.strip() for s in services.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SERVICES))
    if unknown:
        fail(f"--services: unknown {', '.join(unknown)}; choose from {', '.join(SERVICES)}")
    opts = DevnetOptions(
        state_dir=state_dir,
        temporal_port=0 if free_ports else temporal_port,
        ui_port=None if headless else (0 if free_ports else ui_port),
        chain_rpc_port=0 if free_ports else chain_rpc_port,
        chain_rest_port=0 if free_ports else chain_rest_port,
        kube_port=0 if free_ports else kube_port,
        kube_step_seconds=kube_step,
        block_time=block_time,
        registry_refresh=registry_refresh,
        services=wanted,
        require_approval=require_approval,
    )
    if testbed == "emulated":
        raise SystemExit(asyncio.run(_run(Devnet(world, opts))))
    from devnet.real.binaries import MANIFEST, NOT_BUILT
    from devnet.real.stack import RealDevnet, RealTestbedUnsupported

    if not MANIFEST.exists():
        fail(NOT_BUILT)
    try:
        net = RealDevnet(world, opts)
    except RealTestbedUnsupported as exc:
        fail(str(exc))
    raise SystemExit(asyncio.run(_run(net)))


async def _run(net: Devnet) -> int:
    try:
        manifest = await net.start()
    except Exception as exc:
        fail(f"devnet did not start: {exc}")
    print(ready_message(manifest), flush=True)
    return await net.run_until_stopped()


def ready_message(manifest: DevnetManifest) -> str:
    """What an operator needs to use the running devnet: its endpoints and, per cluster, its files."""
    ui = manifest.temporal_ui_url or "(headless)"
    lines = [f"devnet ready: Temporal {manifest.temporal_address}, UI {ui}, chain {manifest.chain_rpc_url}"]
    running = ", ".join(manifest.services) or "none (start them with --services worker,watch)"
    lines.append(f"  peersync services: {running}")
    for info in manifest.clusters:
        lines.append(f"  cluster {info.id} (validator {info.validator_moniker}):")
        lines.append(f"    source {info.env_file}  # peersync's settings for this cluster")
        lines.append(f"    kubectl --kubeconfig {info.kubeconfig}  # cluster admin")
        if info.worker_kubeconfig is not None:
            lines.append(
                f"    peersync's kubeconfig: {info.worker_kubeconfig}  # its ServiceAccount; the env file's KUBECONFIG"
            )
    return "\n".join(lines)
