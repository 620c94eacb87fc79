"""Fixtures for the kube emulator conformance tests.

Tests talk to the emulator through official clients (kubernetes v37, kubectl) or raw HTTP; the in-process API
is used only as the devnet uses it: seeding, stepping controllers, moving the clock, injecting faults.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from devnet.kube import manifests
from devnet.kube.server import KubeEmulator
from devnet.loop_thread import serve_in_thread
from devnet.real.binaries import NOT_BUILT, kubectl_binary

NAMESPACE = "consumer-a"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def namespace() -> str:
    return NAMESPACE


@pytest.fixture
def emulator() -> Iterator[KubeEmulator]:
    """A running emulator with the background controllers off (tests step them with tick()) and one
    namespace labelled for cluster `alice`."""
    emu = KubeEmulator(step_seconds=0)
    with serve_in_thread(emu):
        emu.apply(manifests.namespace(NAMESPACE, {"peersync.io/cluster": "alice"}))
        yield emu


@pytest.fixture
def kubeconfig(emulator: KubeEmulator, tmp_path: Path) -> Path:
    return emulator.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def api_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """A client loaded from the written kubeconfig, leaving the global default configuration alone."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        yield api


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def kubectl_command(kubeconfig: Path, tmp_path: Path) -> list[str]:
    """kubectl pointed at the emulator, with its discovery cache in the test's temp dir."""
    binary = kubectl_binary()
    if binary is None:
        pytest.skip(NOT_BUILT)
    return [binary, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "kube-cache")]


@pytest.fixture
def kubectl(kubectl_command: list[str]) -> Kubectl:
    """Run the real kubectl against the emulator."""

    def run(*args: str, timeout: float = 40) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*kubectl_command, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    return run
