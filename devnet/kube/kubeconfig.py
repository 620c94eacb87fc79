"""The kubeconfig that points `kubectl` and the kubernetes client at an emulator: plain HTTP (or HTTPS with
the emulator's self-signed certificate as CA), and no credentials (the cluster admin, with or without RBAC)
unless a token is given."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml


def kubeconfig(
    server: str, context: str, token: str | None = None, *, certificate_authority: bytes | None = None
) -> dict[str, Any]:
    # An empty user sends no Authorization header, which the emulator takes as the cluster admin; a token is
    # sent as `Authorization: Bearer <token>` and is who the RBAC checks see (kubectl sends it to https only).
    user: dict[str, Any] = {"token": token} if token is not None else {}
    cluster: dict[str, Any] = {"server": server}
    if certificate_authority is not None:
        cluster["certificate-authority-data"] = base64.b64encode(certificate_authority).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": user}],
        "contexts": [
            {"name": context, "context": {"cluster": context, "user": context, "namespace": "default"}}
        ],
        "current-context": context,
    }


def write_kubeconfig(
    path: Path,
    server: str,
    context: str,
    token: str | None = None,
    *,
    certificate_authority: bytes | None = None,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = kubeconfig(server, context, token, certificate_authority=certificate_authority)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)  # kubectl warns about group/world-readable kubeconfigs; it may also hold a token
    return path
