"""What a running devnet leaves in its state dir for other processes: env files, a manifest, `ready`."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

MANIFEST = "devnet.json"
READY = "ready"


class ClusterInfo(BaseModel):
    id: str
    validator_moniker: str
    local_validator: str
    kube_url: str
    kubeconfig: Path  # the cluster admin: kubectl, the demo, tests
    worker_kubeconfig: Path | None = None  # peersync's ServiceAccount, when the emulator enforces RBAC
    env_file: Path
    namespaces: list[str]


class DevnetManifest(BaseModel):
    """Everything a test, the demo or an operator needs to talk to the devnet."""

    state_dir: Path
    pid: int
    testbed: Literal["emulated", "real"] = "emulated"
    temporal_address: str
    temporal_namespace: str
    temporal_ui_url: str | None
    chain_rpc_url: str
    chain_rest_url: str
    bech32_prefix: str
    allow_cidrs: list[str]
    clusters: list[ClusterInfo]
    services: dict[str, int] = {}
    # The real testbed only: the provider's home (its test keyring signs the validators' txs) and CLI.
    provider_home: Path | None = None
    provider_cli: Path | None = None

    @classmethod
    def load(cls, state_dir: Path) -> DevnetManifest:
        return cls.model_validate_json((state_dir / MANIFEST).read_text())

    def save(self) -> None:
        atomic_write(self.state_dir / MANIFEST, self.model_dump_json(indent=2))


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def env_lines(settings: dict[str, str]) -> str:
    """Shell `export` lines, values quoted so any path or URL survives `source`."""
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in settings.items())
