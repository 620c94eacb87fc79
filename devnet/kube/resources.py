"""The resource types the emulator serves, and how each one is named on the wire.

Everything that differs between configmaps and deployments at the REST level (group, kind, scope,
short names, which rules apply on update) is data here, so the store and the routes stay generic.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceType:
    plural: str
    singular: str
    kind: str
    group: str  # "" for the core group
    version: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    has_status: bool = False  # serves `/status` and keeps .status on main-resource writes
    tracks_generation: bool = False  # sets metadata.generation (1.32: not for core types)
    annotations_bump_generation: bool = False  # Deployment's PrepareForUpdate quirk
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`configmaps` or `deployments.apps`, as used in Status messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def verbs(self) -> list[str]:
        return ["create", "delete", "get", "list", "patch", "update", "watch"]


NAMESPACES = ResourceType(
    plural="namespaces",
    singular="namespace",
    kind="Namespace",
    group="",
    version="v1",
    namespaced=False,
    short_names=("ns",),
    has_status=True,
)
CONFIGMAPS = ResourceType(
    plural="configmaps",
    singular="configmap",
    kind="ConfigMap",
    group="",
    version="v1",
    namespaced=True,
    short_names=("cm",),
)
PODS = ResourceType(
    plural="pods",
    singular="pod",
    kind="Pod",
    group="",
    version="v1",
    namespaced=True,
    short_names=("po",),
    has_status=True,
    categories=("all",),
)
DEPLOYMENTS = ResourceType(
    plural="deployments",
    singular="deployment",
    kind="Deployment",
    group="apps",
    version="v1",
    namespaced=True,
    short_names=("deploy",),
    has_status=True,
    tracks_generation=True,
    annotations_bump_generation=True,
    categories=("all",),
)
STATEFULSETS = ResourceType(
    plural="statefulsets",
    singular="statefulset",
    kind="StatefulSet",
    group="apps",
    version="v1",
    namespaced=True,
    short_names=("sts",),
    has_status=True,
    tracks_generation=True,
    categories=("all",),
)

SERVICEACCOUNTS = ResourceType(
    plural="serviceaccounts",
    singular="serviceaccount",
    kind="ServiceAccount",
    group="",
    version="v1",
    namespaced=True,
    short_names=("sa",),
)

RBAC_GROUP = "rbac.authorization.k8s.io"
ROLES = ResourceType(
    plural="roles", singular="role", kind="Role", group=RBAC_GROUP, version="v1", namespaced=True
)
ROLEBINDINGS = ResourceType(
    plural="rolebindings",
    singular="rolebinding",
    kind="RoleBinding",
    group=RBAC_GROUP,
    version="v1",
    namespaced=True,
)
CLUSTERROLES = ResourceType(
    plural="clusterroles",
    singular="clusterrole",
    kind="ClusterRole",
    group=RBAC_GROUP,
    version="v1",
    namespaced=False,
)
CLUSTERROLEBINDINGS = ResourceType(
    plural="clusterrolebindings",
    singular="clusterrolebinding",
    kind="ClusterRoleBinding",
    group=RBAC_GROUP,
    version="v1",
    namespaced=False,
)
RBAC_TYPES: tuple[ResourceType, ...] = (ROLES, ROLEBINDINGS, CLUSTERROLES, CLUSTERROLEBINDINGS)
BINDING_TYPES: tuple[ResourceType, ...] = (ROLEBINDINGS, CLUSTERROLEBINDINGS)

ALL_TYPES: tuple[ResourceType, ...] = (
    NAMESPACES,
    CONFIGMAPS,
    PODS,
    SERVICEACCOUNTS,
    DEPLOYMENTS,
    STATEFULSETS,
    *RBAC_TYPES,
)
BY_GROUP_VERSION_PLURAL: dict[tuple[str, str, str], ResourceType] = {
    (rt.group, rt.version, rt.plural): rt for rt in ALL_TYPES
}
WORKLOAD_TYPES: tuple[ResourceType, ...] = (DEPLOYMENTS, STATEFULSETS)


def resolve(name: str) -> ResourceType:
    """Find a type by kind, plural, singular or short name, case-insensitively (for the in-process API)."""
    wanted = name.lower()
    for rt in ALL_TYPES:
        if wanted in (rt.kind.lower(), rt.plural, rt.singular, *rt.short_names):
            return rt
    raise KeyError(f"unknown resource type {name!r}")
