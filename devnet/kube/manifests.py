"""Small manifest builders for seeding an emulator (devnet scenario, tests).

They produce plain dicts that pass the emulator's validation and the strict v37 client models: every
workload has a selector matching its template labels and named containers with images.
"""

from __future__ import annotations

from typing import Any

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def namespace(
    name: str, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": dict(labels or {})}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def configmap(
    name: str, namespace: str, data: dict[str, str], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": dict(data)}


def pod_template(
    app: str, image: str = "ghcr.io/cosmos/gaiad:v19.0.0", annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"labels": {"app": app}}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"metadata": metadata, "spec": {"containers": [{"name": "node", "image": image}]}}


def _workload(
    kind: str,
    name: str,
    namespace: str,
    replicas: int,
    image: str,
    annotations: dict[str, str] | None,
    spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name, image, annotations),
            **spec,
        },
    }


def deployment(
    name: str,
    namespace: str,
    replicas: int = 1,
    *,
    image: str = "ghcr.io/cosmos/gaiad:v19.0.0",
    template_annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return _workload("Deployment", name, namespace, replicas, image, template_annotations, spec)


def statefulset(
    name: str,
    namespace: str,
    replicas: int = 1,
    *,
    image: str = "ghcr.io/cosmos/gaiad:v19.0.0",
    template_annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return _workload(
        "StatefulSet", name, namespace, replicas, image, template_annotations, {"serviceName": name, **spec}
    )


def restart_patch(stamp: str) -> dict[str, Any]:
    """The strategic merge patch `kubectl rollout restart` sends (kubernetes.md §1)."""
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


def service_account(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}


def rule(
    api_groups: list[str], resources: list[str], verbs: list[str], names: list[str] | None = None
) -> dict[str, Any]:
    """One PolicyRule; `names` restricts it to those resourceNames."""
    result: dict[str, Any] = {
        "apiGroups": list(api_groups),
        "resources": list(resources),
        "verbs": list(verbs),
    }
    if names:
        result["resourceNames"] = list(names)
    return result


def role(name: str, namespace: str | None, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """A Role in `namespace`, or a ClusterRole when `namespace` is None."""
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    kind = "Role" if namespace is not None else "ClusterRole"
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata, "rules": rules}


def service_account_subject(name: str, namespace: str) -> dict[str, Any]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def binding(
    name: str, namespace: str | None, role_kind: str, role_name: str, subjects: list[dict[str, Any]]
) -> dict[str, Any]:
    """A RoleBinding in `namespace` (to a Role or ClusterRole), or a ClusterRoleBinding when it is None."""
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding" if namespace is not None else "ClusterRoleBinding",
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": subjects,
    }
