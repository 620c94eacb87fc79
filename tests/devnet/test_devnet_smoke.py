"""`peersync devnet` as an operator runs it: ready file, every part answers, a clean stop, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client

from devnet.files import READY, DevnetManifest

READY_TIMEOUT = 90.0


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"devnet exited with {proc.returncode} before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose; only an unreaped child of ours could be one.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path]]:
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workers.cli",
            "devnet",
            "--state-dir",
            str(state),
            "--free-ports",
            "--headless",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: (state / READY).exists(), READY_TIMEOUT, "the ready file", proc)
        yield proc, state
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_devnet_comes_up_answers_and_stops_cleanly(devnet: tuple[subprocess.Popen, Path]) -> None:
    proc, state = devnet
    manifest = DevnetManifest.load(state)

    env = (state / "env").read_text()
    for name in (
        "TEMPORAL_ADDRESS",
        "KUBECONFIG",
        "PEERSYNC_CLUSTER_ID",
        "PEERSYNC_LOCAL_VALIDATOR",
        "PEERSYNC_CHAIN_RPC_URL",
        "PEERSYNC_CHAIN_REST_URL",
        "PEERSYNC_ENDPOINT_ALLOW_CIDRS",
    ):
        assert f"export {name}=" in env
    assert "export PEERSYNC_ENDPOINT_ALLOW_CIDRS=127.0.10.0/24\n" in env
    # peersync runs as its ServiceAccount under deploy/kubernetes's RBAC; `kubeconfig` is the cluster admin.
    assert f"export KUBECONFIG={state / 'kubeconfig-worker'}\n" in env

    # Temporal answers with the search attributes registered.
    async def temporal_ok() -> None:
        c = await Client.connect(manifest.temporal_address)
        await c.count_workflows()

    import asyncio

    asyncio.run(temporal_ok())

    # The chain answers CometBFT RPC and REST.
    status = requests.get(f"{manifest.chain_rpc_url}/status", timeout=5).json()
    assert int(status["result"]["sync_info"]["latest_block_height"]) >= 1
    vals = requests.get(f"{manifest.chain_rest_url}/cosmos/staking/v1beta1/validators", timeout=5).json()
    assert sorted(v["description"]["moniker"] for v in vals["validators"]) == [
        "alice",
        "bob",
        "carol",
        "dave",
    ]
    alice = next(v for v in vals["validators"] if v["description"]["moniker"] == "alice")
    assert "export PEERSYNC_LOCAL_VALIDATOR=" + alice["operator_address"] in env

    # The kube emulator answers through the written kubeconfig.
    api = k8s_config.new_client_from_config(config_file=str(state / "kubeconfig"))
    names = sorted(
        n.metadata.name
        for n in k8s.CoreV1Api(api).list_namespace(label_selector="peersync.io/cluster=alice").items
    )
    assert names == ["alice-consumer-1", "alice-consumer-2", "alice-consumer-3"]
    api.close()
    worker = k8s_config.new_client_from_config(config_file=str(state / "kubeconfig-worker"))
    with pytest.raises(ApiException) as denied:  # no RoleBinding for the worker in kube-system
        k8s.CoreV1Api(worker).list_namespaced_config_map("kube-system")
    assert denied.value.status == 403
    worker.close()

    temporal_pid = int(subprocess.check_output(["pgrep", "-P", str(proc.pid), "-f", "temporal"]).split()[0])
    assert pid_alive(temporal_pid)

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert not (state / READY).exists()
    wait_for(lambda: not pid_alive(temporal_pid), 10, "Temporal to exit")


def test_killed_devnet_leaves_no_orphans(devnet: tuple[subprocess.Popen, Path]) -> None:
    proc, _ = devnet
    children = [int(p) for p in subprocess.check_output(["pgrep", "-P", str(proc.pid)]).split()]
    assert children
    proc.kill()  # SIGKILL: no handler runs; the children must still go (PR_SET_PDEATHSIG)
    proc.wait(10)
    for pid in children:
        wait_for(lambda pid=pid: not pid_alive(pid), 15, f"child {pid} to exit")


def test_bad_scenario_is_refused_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("validators:\n  - moniker: a\nconsumers:\n  - chain_id: c\n    opted_in: [zed]\n")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "workers.cli",
            "devnet",
            "--state-dir",
            str(tmp_path / "s"),
            "--scenario",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "unknown validators ['zed']" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s" / READY).exists()
