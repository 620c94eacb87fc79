"""Settings: the fixed variable names, YAML files, and errors that name the variable."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

import pytest

from workers.settings import SettingsError, load_settings

ALL = [
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "KUBECONFIG",
    "PEERSYNC_CLUSTER_ID",
    "PEERSYNC_LOCAL_VALIDATOR",
    "PEERSYNC_CHAIN_RPC_URL",
    "PEERSYNC_CHAIN_REST_URL",
    "PEERSYNC_BECH32_PREFIX",
    "PEERSYNC_ENDPOINT_ALLOW_CIDRS",
    "PEERSYNC_MAX_PARALLEL_ROLLOUTS",
    "PEERSYNC_REQUIRE_APPROVAL",
    "PEERSYNC_REGISTRY_REFRESH",
    "PEERSYNC_RECONCILE_EVERY",
    "PEERSYNC_METRICS_ADDRESS",
    "PEERSYNC_PROBE_BUDGET",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL:
        monkeypatch.delenv(name, raising=False)


def test_defaults_match_the_design() -> None:
    s = load_settings()
    assert s.bech32_prefix == "cosmos"
    assert s.endpoint_allow_cidrs == []
    assert s.max_parallel_rollouts == 1
    assert s.require_approval is False
    assert s.registry_refresh == timedelta(seconds=60)
    assert s.probe_budget == timedelta(minutes=5)  # = policies.PROBE.total
    assert s.task_queue == "peersync-default"


def test_every_fixed_variable_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    values = {
        "TEMPORAL_ADDRESS": "temporal.example:7233",
        "TEMPORAL_NAMESPACE": "ops",
        "KUBECONFIG": str(tmp_path / "kc"),
        "PEERSYNC_CLUSTER_ID": "alice",
        "PEERSYNC_LOCAL_VALIDATOR": "cosmosvaloper1xyz",
        "PEERSYNC_CHAIN_RPC_URL": "http://127.0.0.1:1",
        "PEERSYNC_CHAIN_REST_URL": "http://127.0.0.1:2",
        "PEERSYNC_BECH32_PREFIX": "neutron",
        "PEERSYNC_ENDPOINT_ALLOW_CIDRS": "127.0.10.0/24, fd00::/8",
        "PEERSYNC_MAX_PARALLEL_ROLLOUTS": "3",
        "PEERSYNC_REQUIRE_APPROVAL": "true",
        "PEERSYNC_REGISTRY_REFRESH": "5s",
        "PEERSYNC_RECONCILE_EVERY": "2m",
        "PEERSYNC_PROBE_BUDGET": "90s",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert (s.temporal_address, s.temporal_namespace, s.kubeconfig) == (
        "temporal.example:7233",
        "ops",
        tmp_path / "kc",
    )
    assert (s.cluster_id, s.task_queue, s.local_validator) == ("alice", "peersync-alice", "cosmosvaloper1xyz")
    assert (s.chain_rpc_url, s.chain_rest_url, s.bech32_prefix) == (
        "http://127.0.0.1:1",
        "http://127.0.0.1:2",
        "neutron",
    )
    assert s.endpoint_allow_cidrs == [ipaddress.ip_network("127.0.10.0/24"), ipaddress.ip_network("fd00::/8")]
    assert (s.max_parallel_rollouts, s.require_approval) == (3, True)
    assert (s.registry_refresh, s.reconcile_every) == (timedelta(seconds=5), timedelta(minutes=2))
    assert s.probe_budget == timedelta(seconds=90)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("PEERSYNC_MAX_PARALLEL_ROLLOUTS", "zero", "valid integer"),
        ("PEERSYNC_MAX_PARALLEL_ROLLOUTS", "0", "greater than or equal to 1"),
        ("PEERSYNC_ENDPOINT_ALLOW_CIDRS", "127.0.10.1/24", "host bits set"),
        ("PEERSYNC_ENDPOINT_ALLOW_CIDRS", "everything", "is not a CIDR"),
        ("PEERSYNC_CLUSTER_ID", "Alice_Cluster", "should match pattern"),
        ("PEERSYNC_REQUIRE_APPROVAL", "perhaps", "valid boolean"),
        ("PEERSYNC_REGISTRY_REFRESH", "0", "positive duration"),
        ("PEERSYNC_PROBE_BUDGET", "0s", "positive duration"),
    ],
)
def test_bad_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert name in str(err.value) and fragment in str(err.value)


def test_yaml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "peersync.yaml"
    cfg.write_text("PEERSYNC_CLUSTER_ID: carol\nmax_parallel_rollouts: 4\nPEERSYNC_REQUIRE_APPROVAL: true\n")
    monkeypatch.setenv("PEERSYNC_MAX_PARALLEL_ROLLOUTS", "2")
    s = load_settings(cfg)
    assert (s.cluster_id, s.max_parallel_rollouts, s.require_approval) == ("carol", 2, True)


def test_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no such file"):
        load_settings(tmp_path / "absent.yaml")
