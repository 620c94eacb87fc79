"""Settings refused at load, in one line: a --config file that is not YAML or holds a misspelt key, and URL or
address settings the process could never use (an ftp:// chain RPC made `peersync watch` reconnect forever)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workers.settings import Settings, SettingsError, load_settings
from workers.watcher import Watcher

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("PEERSYNC_") or name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "KUBECONFIG"):
            monkeypatch.delenv(name)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "peersync.yaml"
    path.write_text(text)
    return path


# --- 1. a settings file that is not YAML ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("{{{\n", 1),
        ("{{{", 1),
        ("PEERSYNC_CLUSTER_ID: a\nprobe_budget: [30s\n", 2),
        ("cluster_id: a\nprobe_budget: 30s\n  reconcile_every: 5m\n", 3),
        ("cluster_id: a\n\tprobe_budget: 30s\n", 2),
        ("cluster_id: a\nprobe_budget: !!python/object:os.system x\n", 2),
        ("cluster_id: a\nprobe_budget: \x07\n", 2),
    ],
)
def test_a_file_that_is_not_yaml_is_refused_naming_file_and_line(
    tmp_path: Path, text: str, line: int
) -> None:
    path = config(tmp_path, text)
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not valid YAML at line {line}: "), message
    assert "\n" not in message


@pytest.mark.parametrize(("text", "kind"), [("- cluster_id\n", "a list"), ("cluster_id\n", "a single value")])
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str, kind: str) -> None:
    path = config(tmp_path, text)
    with pytest.raises(SettingsError, match=f"not a mapping of settings .* but {kind}"):
        load_settings(path)


def test_an_empty_file_or_only_comments_is_no_settings(tmp_path: Path) -> None:
    assert load_settings(config(tmp_path, "# nothing yet\n")) == load_settings()


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "peersync.yaml"
    path.write_bytes(b"cluster_id: caf\xe9\n")
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(path)


# --- 2. a misspelt key ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("probe_budgt", "probe_budget"),
        ("PEERSYNC_PROBE_BUDGT", "PEERSYNC_PROBE_BUDGET"),
        ("peersync_reconcile_evry", "peersync_reconcile_every"),
        ("requre_approval", "require_approval"),
        ("TEMPORAL_NAMESPCE", "TEMPORAL_NAMESPACE"),
    ],
)
def test_a_misspelt_key_is_refused_with_the_setting_it_is_closest_to(
    tmp_path: Path, key: str, suggestion: str
) -> None:
    path = config(tmp_path, f"cluster_id: carol\n{key}: 30s\n")
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert str(err.value) == f"unknown setting {key!r} in {path} (did you mean {suggestion!r}?)"


def test_an_unknown_key_far_from_any_setting_is_refused_without_a_guess(tmp_path: Path) -> None:
    path = config(tmp_path, "colour: blue\n")
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert str(err.value) == f"unknown setting 'colour' in {path}"


def test_every_unknown_key_is_named(tmp_path: Path) -> None:
    path = config(tmp_path, "probe_budgt: 30s\ncolour: blue\n")
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert "'probe_budgt'" in str(err.value) and "'colour'" in str(err.value)


def test_temporal_client_variables_in_the_file_are_refused_saying_where_they_go(tmp_path: Path) -> None:
    path = config(tmp_path, "TEMPORAL_API_KEY: secret\n")
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert "'TEMPORAL_API_KEY'" in str(err.value) and "environment only" in str(err.value)
    assert "did you mean" not in str(err.value)


def test_one_setting_spelt_two_ways_in_the_file_is_refused(tmp_path: Path) -> None:
    path = config(tmp_path, "cluster_id: alice\nPEERSYNC_CLUSTER_ID: bob\n")
    with pytest.raises(SettingsError, match="PEERSYNC_CLUSTER_ID is set 2 times"):
        load_settings(path)


def test_every_accepted_spelling_is_still_read(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        "probe_budget: 30s\nPEERSYNC_RECONCILE_EVERY: 2m\npeersync_registry_refresh: 5s\nCluster_Id: carol\n",
    )
    s = load_settings(path)
    assert (s.probe_budget.total_seconds(), s.reconcile_every.total_seconds()) == (30, 120)
    assert (s.registry_refresh.total_seconds(), s.cluster_id) == (5, "carol")


def test_unknown_peersync_environment_variables_are_not_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERSYNC_PROBE_BUDGT", "30s")  # the environment is shared: not ours to police
    monkeypatch.setenv("PEERSYNC_WORKER_USER", "10001")  # compose-only, read by docker-compose.yml
    assert load_settings().probe_budget == Settings().probe_budget


# --- 3. URLs and addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["PEERSYNC_CHAIN_RPC_URL", "PEERSYNC_CHAIN_REST_URL"])
@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("ftp://x", "must be an http:// or https:// URL (scheme 'ftp')"),
        ("ws://node:26657", "must be an http:// or https:// URL (scheme 'ws')"),
        ("node:26657", "must be an http:// or https:// URL"),
        ("127.0.0.1:26657", "must be an http:// or https:// URL (no scheme)"),
        ("", "must be an http:// or https:// URL (no scheme)"),
        ("http://", "has no host"),
        ("http://:26657", "has no host"),
        ("http://node:99999", "is not a URL"),
        ("http://node:port", "is not a URL"),
        ("http://node:26657/?x=1", "must not have a query or fragment"),
        ("http://node:26657#top", "must not have a query or fragment"),
        ("http://no de:26657", "contains whitespace"),
    ],
)
def test_a_chain_url_that_is_not_http_is_refused_at_load(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert f"invalid setting {name}: " in str(err.value) and fragment in str(err.value), str(err.value)


def test_a_refused_url_does_not_echo_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERSYNC_CHAIN_REST_URL", "ftp://user:hunter2@node/lcd")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "hunter2" not in str(err.value) and "ftp://***@node/lcd" in str(err.value)


@pytest.mark.parametrize(
    ("value", "normalised", "websocket"),
    [
        ("http://127.0.0.1:26657", "http://127.0.0.1:26657", "ws://127.0.0.1:26657/websocket"),
        ("https://rpc.example", "https://rpc.example", "wss://rpc.example/websocket"),
        ("HTTPS://rpc.example/", "https://rpc.example", "wss://rpc.example/websocket"),
        (" http://node:26657/rpc/ ", "http://node:26657/rpc", "ws://node:26657/rpc/websocket"),
        ("http://[::1]:26657", "http://[::1]:26657", "ws://[::1]:26657/websocket"),
        ("https://u:p@rpc.example", "https://u:p@rpc.example", "wss://u:p@rpc.example/websocket"),
    ],
)
def test_an_accepted_rpc_url_gives_the_watcher_a_ws_url(
    monkeypatch: pytest.MonkeyPatch, value: str, normalised: str, websocket: str
) -> None:
    monkeypatch.setenv("PEERSYNC_CHAIN_RPC_URL", value)
    monkeypatch.setenv("PEERSYNC_CHAIN_REST_URL", value)
    settings = load_settings()
    assert settings.chain_rpc_url == settings.chain_rest_url == normalised
    assert Watcher(settings, client=None).ws_url == websocket  # type: ignore[arg-type]


def test_a_bad_url_in_the_file_is_refused_too(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="PEERSYNC_CHAIN_RPC_URL: 'ftp://x' must be an http"):
        load_settings(config(tmp_path, "chain_rpc_url: ftp://x\n"))


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("TEMPORAL_ADDRESS", "http://temporal:7233", "no scheme: e.g. localhost:7233"),
        ("TEMPORAL_ADDRESS", "temporal", "is not host:port (e.g. localhost:7233)"),
        ("TEMPORAL_ADDRESS", "temporal:0", "is not host:port"),
        ("TEMPORAL_ADDRESS", "", "is not host:port"),
        ("PEERSYNC_METRICS_ADDRESS", "9464", "is not host:port (e.g. 0.0.0.0:9464)"),
        ("PEERSYNC_METRICS_ADDRESS", "http://0.0.0.0:9464", "no scheme"),
    ],
)
def test_a_bad_host_port_is_refused_at_load(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert f"invalid setting {name}: " in str(err.value) and fragment in str(err.value), str(err.value)


@pytest.mark.parametrize(
    "value",
    [
        "localhost:7233",
        "temporal-frontend.temporal.svc.cluster.local:7233",
        "[::1]:7233",
        "ns.a.tmprl.cloud:7233",
    ],
)
def test_good_temporal_addresses_are_accepted(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", value)
    assert load_settings().temporal_address == value


# --- the command line: one line, exit 1, nothing runs -----------------------------------------------------


def peersync(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PEERSYNC_", "TEMPORAL_"))}
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_refuses_broken_yaml_in_one_line(tmp_path: Path) -> None:
    path = config(tmp_path, "{{{\n")
    done = peersync("--config", str(path), "watch")
    assert done.returncode == 1
    assert done.stderr.startswith(f"peersync: {path}: not valid YAML at line 1: "), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_the_cli_refuses_a_misspelt_key(tmp_path: Path) -> None:
    path = config(tmp_path, "probe_budgt: 30s\n")
    done = peersync("--config", str(path), "watch")
    assert done.returncode == 1
    assert (
        done.stderr == f"peersync: unknown setting 'probe_budgt' in {path} (did you mean 'probe_budget'?)\n"
    )


def test_the_cli_refuses_an_ftp_chain_rpc_url_instead_of_reconnecting_forever() -> None:
    done = peersync("watch", env={"PEERSYNC_CHAIN_RPC_URL": "ftp://x"})
    assert done.returncode == 1
    assert done.stderr.startswith("peersync: invalid setting PEERSYNC_CHAIN_RPC_URL: 'ftp://x'"), done.stderr
    assert "reconnecting" not in done.stderr


@pytest.mark.parametrize("value", ["-3", "-5m", "abc", "5 minutes"])
def test_a_duration_that_is_not_one_names_the_forms_it_may_take(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PEERSYNC_PROBE_BUDGET", value)
    with pytest.raises(
        SettingsError, match=r"PEERSYNC_PROBE_BUDGET: .* is not a positive duration \(e\.g\. 30s"
    ):
        load_settings()


def test_an_iso_duration_still_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERSYNC_PROBE_BUDGET", "PT90S")
    assert load_settings().probe_budget.total_seconds() == 90


def test_an_empty_metrics_address_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERSYNC_METRICS_ADDRESS", "")
    assert load_settings().metrics_address is None
