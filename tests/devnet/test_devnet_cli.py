"""`peersync devnet`'s help and ready message, and the checks behind `make demo`'s "ok" lines. No devnet
runs here: the checks get the world as the devnet would show it, then one thing wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from devnet.demo import DemoFailed, check_chain, check_namespaces, check_workloads, expected_peers
from devnet.files import ClusterInfo, DevnetManifest
from devnet.scenario import Scenario, default_scenario, with_clusters
from devnet.summary import ConsumerRow, NamespaceRow, ValidatorRow, WorldView
from workers.cli import app
from workers.cli_devnet import ready_message


def flat_help(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())


def test_help_says_which_services_start_and_that_none_do_by_default() -> None:
    text = flat_help(["devnet", "--help"])
    assert "from: worker, watch" in text
    assert "None start by default" in text
    assert "[default: (none)]" in text
    assert "env-ID, kubeconfig-ID, kubeconfig-worker-ID" in text


def test_an_unknown_service_is_refused_before_anything_starts(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "workers.cli",
            "devnet",
            "--state-dir",
            str(tmp_path),
            "--services",
            "worker,web",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "unknown web; choose from worker, watch" in proc.stderr
    assert not list(tmp_path.iterdir())


def manifest_for(state: Path, ids: list[str], services: dict[str, int]) -> DevnetManifest:
    """Named as devnet/stack.py names them: no suffix for the first cluster, `-<id>` for the others."""
    clusters = []
    for index, cid in enumerate(ids):
        suffix = "" if index == 0 else f"-{cid}"
        clusters.append(
            ClusterInfo(
                id=cid,
                validator_moniker=cid,
                local_validator=f"cosmosvaloper1{cid}",
                kube_url="https://127.0.0.1:6443",
                kubeconfig=state / f"kubeconfig{suffix}",
                worker_kubeconfig=state / f"kubeconfig-worker{suffix}",
                env_file=state / f"env{suffix}",
                namespaces=[],
            )
        )
    return DevnetManifest(
        state_dir=state,
        pid=1,
        temporal_address="127.0.0.1:7233",
        temporal_namespace="default",
        temporal_ui_url=None,
        chain_rpc_url="http://127.0.0.1:26657",
        chain_rest_url="http://127.0.0.1:1317",
        bech32_prefix="cosmos",
        allow_cidrs=["127.0.10.0/24"],
        clusters=clusters,
        services=services,
    )


def test_ready_message_lists_every_clusters_env_file_and_kubeconfigs() -> None:
    state = Path("/s")
    text = ready_message(manifest_for(state, ["alice", "carol"], {"worker-alice": 10, "watch-alice": 11}))
    assert "UI (headless)" in text
    assert "peersync services: worker-alice, watch-alice" in text
    for cid, suffix in (("alice", ""), ("carol", "-carol")):
        assert f"cluster {cid} (validator {cid}):" in text
        assert f"source /s/env{suffix} " in text
        assert f"kubectl --kubeconfig /s/kubeconfig{suffix} " in text
        assert f"/s/kubeconfig-worker{suffix} " in text


def test_ready_message_says_no_services_run() -> None:
    assert "peersync services: none (start them with --services worker,watch)" in ready_message(
        manifest_for(Path("/s"), ["alice"], {})
    )


# ---- the demo's checks ----------------------------------------------------------------------------


def seeded_world(scenario: Scenario) -> WorldView:
    """What read_world shows of a devnet freshly seeded from `scenario`."""
    validators = [
        ValidatorRow(operator_address=v.moniker, moniker=v.moniker, details="", status="bonded", valcons="")
        for v in scenario.validators
    ]
    consumers = [
        ConsumerRow(
            consumer_id=str(c.consumer_id), chain_id=c.chain_id, phase="launched", opted_in=sorted(c.opted_in)
        )
        for c in scenario.consumers
    ]
    namespaces = [
        NamespaceRow(
            cluster=cluster.id,
            namespace=str(ns.name),
            chain_id=ns.consumer,
            workload=f"{ns.workload}/{ns.workload_name}",
            peers=expected_peers(scenario, cluster, ns.consumer),
            problems=[],
        )
        for cluster in scenario.clusters
        for ns in scenario.namespaces(cluster)
    ]
    return WorldView(height=3, validators=validators, consumers=consumers, namespaces=namespaces)


def kubectl_listing(scenario: Scenario) -> dict[str, Any]:
    """`kubectl get deployments,statefulsets -A -o json` of the seeded cluster."""
    kinds = {"deployment": "Deployment", "statefulset": "StatefulSet"}
    return {
        "kind": "List",
        "items": [
            {"kind": kinds[ns.workload], "metadata": {"namespace": ns.name, "name": ns.workload_name}}
            for ns in scenario.namespaces(scenario.clusters[0])
        ],
    }


def test_the_default_world_passes_and_the_workload_count_is_right() -> None:
    scenario = default_scenario()
    world = seeded_world(scenario)
    [alice] = scenario.clusters
    assert check_chain(world, scenario) == "chain: height 3, 4 validators, 3 consumers with their opt-ins"
    assert check_namespaces(world.namespaces, scenario, alice).startswith(
        "cluster alice: 3 managed namespaces"
    )
    # Two kinds, two tables in kubectl's plain output: the count once said 5.
    assert (
        check_workloads(kubectl_listing(scenario), scenario, alice)
        == "kubectl sees 3 workloads in cluster alice (2 Deployments, 1 StatefulSet), as seeded"
    )


def test_a_missing_or_extra_workload_fails() -> None:
    scenario = default_scenario()
    [alice] = scenario.clusters
    listing = kubectl_listing(scenario)
    extra = {**listing, "items": [*listing["items"], listing["items"][0]]}
    with pytest.raises(DemoFailed, match="kubectl sees"):
        check_workloads(extra, scenario, alice)
    with pytest.raises(DemoFailed, match="kubectl sees"):
        check_workloads({**listing, "items": listing["items"][1:]}, scenario, alice)


def test_a_chain_unlike_the_scenario_fails() -> None:
    scenario = default_scenario()
    world = seeded_world(scenario)
    lost_opt_in = world.model_copy(deep=True)
    lost_opt_in.consumers[0].opted_in.remove("bob")
    with pytest.raises(DemoFailed, match="opt-ins"):
        check_chain(lost_opt_in, scenario)
    with pytest.raises(DemoFailed, match="validators"):
        check_chain(world.model_copy(update={"validators": world.validators[1:]}), scenario)


def test_a_wrong_peer_list_or_namespace_set_fails() -> None:
    scenario = default_scenario()
    [alice] = scenario.clusters
    rows = seeded_world(scenario).namespaces
    short = [r.model_copy(deep=True) for r in rows]
    short[0].peers.pop()
    with pytest.raises(DemoFailed, match="alice-consumer-1: peers"):
        check_namespaces(short, scenario, alice)
    with pytest.raises(DemoFailed, match="managed namespaces"):
        check_namespaces(rows[:2], scenario, alice)


def test_every_cluster_of_a_multi_cluster_world_passes() -> None:
    scenario = with_clusters(default_scenario(), ["alice", "carol"])
    world = seeded_world(scenario)
    for cluster in scenario.clusters:
        rows = [n for n in world.namespaces if n.cluster == cluster.id]
        assert rows and check_namespaces(rows, scenario, cluster)
