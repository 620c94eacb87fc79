"""The kubeconfig that points `kubectl` and the kubernetes client at an emulator: plain HTTP, no credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def kubeconfig(server: str, context: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": context, "cluster": {"server": server}}],
        # An empty user: clients send no Authorization header, which the emulator does not ask for.
        "users": [{"name": context, "user": {}}],
        "contexts": [
            {"name": context, "context": {"cluster": context, "user": context, "namespace": "default"}}
        ],
        "current-context": context,
    }


def write_kubeconfig(path: Path, server: str, context: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig(server, context), sort_keys=False))
    path.chmod(0o600)  # kubectl warns about group/world-readable kubeconfigs
    return path
