"""The RBAC of deploy/kubernetes, loaded into a kube emulator so the devnet's worker runs with exactly the
permissions an operator grants in a real cluster: a missing verb shows up as a 403 in every e2e test.

The files are plain objects plus kustomize's namespace transformer, which is all this applies;
tests/deploy/test_kubernetes_manifests.py checks the result equals `kubectl kustomize` for these kinds.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

MANIFESTS = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"
NAMESPACE = "peersync"
WORKER_ACCOUNT = "peersync-worker"
BASE_FILES = ("namespace.yaml", "serviceaccounts.yaml", "rbac.yaml")
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


class ShippedRbacError(RuntimeError):
    """deploy/kubernetes is missing (e.g. an installed package, not a checkout)."""


def _documents(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ShippedRbacError(f"{path} not found: the devnet's RBAC comes from a source checkout")
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _in_namespace(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    if obj["kind"] not in CLUSTER_SCOPED:
        obj["metadata"]["namespace"] = namespace
    return obj


def base_objects(root: Path = MANIFESTS) -> list[dict[str, Any]]:
    """Namespace, ServiceAccounts, ClusterRoles and the ClusterRoleBinding of the base."""
    return [_in_namespace(o, NAMESPACE) for name in BASE_FILES for o in _documents(root / "base" / name)]


def consumer_binding(namespace: str, root: Path = MANIFESTS) -> dict[str, Any]:
    """The RoleBinding an operator creates in each consumer namespace (deploy/kubernetes/consumer-namespace)."""
    [binding] = _documents(root / "consumer-namespace" / "rolebinding.yaml")
    return _in_namespace(binding, namespace)
