"""`peersync devnet --testbed real` as an operator runs it (issue 10 item 5): the emulated devnet's contract
(DIR/env, kubeconfigs, devnet.json, ready) with the real components behind it, peersync's own services on
it, a clean stop with no orphans; and a scenario the real components cannot express refused in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from devnet.files import READY, DevnetManifest
from tests.devnet.test_devnet_smoke import pid_alive, wait_for

READY_TIMEOUT = 120.0


def _child_pids(pid: int) -> list[int]:
    """Every descendant of `pid` (the real components run as the devnet's children)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(fields[1]) == parent:
                child = int(stat.parent.name)
                found.append(child)
                todo.append(child)
    return found


def test_the_real_devnet_keeps_the_devnet_contract(tmp_path: Path) -> None:
    state = tmp_path / "state"
    argv = [sys.executable, "-m", "workers.cli", "devnet", "--testbed", "real", "--state-dir", str(state)]
    argv += ["--free-ports", "--headless", "--services", "worker,watch"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: (state / READY).exists(), READY_TIMEOUT, "ready", proc)
        manifest = DevnetManifest.load(state)
        assert manifest.testbed == "real" and manifest.provider_home and manifest.provider_cli
        [alice] = manifest.clusters
        assert {p.name for p in state.iterdir()} >= {"env", "kubeconfig", "kubeconfig-worker", "devnet.json"}
        worker_user = yaml.safe_load(alice.worker_kubeconfig.read_text())["users"][0]["user"]  # type: ignore[union-attr]
        assert set(worker_user) == {"token"}  # peersync runs as its ServiceAccount, not as the admin
        children = _child_pids(proc.pid)
        names = {
            Path(f"/proc/{pid}/exe").resolve().name for pid in children if Path(f"/proc/{pid}/exe").exists()
        }
        assert {"interchain-security-pd", "cometbft", "kube-apiserver", "etcd", "kwok"} <= names, names

        env = {**os.environ, "COLUMNS": "200"}
        for line in (state / "env").read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'")
        out = subprocess.run(
            [sys.executable, "-m", "workers.cli", "registry", "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        rows = json.loads(out.stdout)
        rows = rows if isinstance(rows, list) else rows.get("validators", rows)
        assert sorted(r["moniker"] for r in rows) == ["alice", "bob", "carol", "dave"], rows
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stdout.read() if proc.stdout else ""
    assert not (state / READY).exists()
    assert not [pid for pid in children if pid_alive(pid)]  # nothing left running


def test_a_scenario_the_real_testbed_cannot_run_is_refused_in_one_line(tmp_path: Path) -> None:
    scenario = tmp_path / "jailed.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "validators": [
                    {"moniker": "alice", "endpoint": "127.0.10.1"},
                    {"moniker": "bob", "jailed": True},
                ]
            }
        )
    )
    argv = [sys.executable, "-m", "workers.cli", "devnet", "--testbed", "real", "--scenario", str(scenario)]
    done = subprocess.run(
        [*argv, "--state-dir", str(tmp_path / "s")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "the real testbed cannot run this scenario: validator bob: only bonded, unjailed" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "s" / READY).exists()
