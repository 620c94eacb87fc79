"""The test World (devnet.testbed.World) on the real testbed: the same methods, answered by the real provider,
the real cometbft nodes and the real kube-apiserver (devnet.real.stack.RealDevnet). What only an emulator can
do (admin faults, its in-memory state, its store's write log) raises EmulatorOnly, with the reason, so a test
that needs it says so in its marker instead of passing on a fake."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

from devnet.chain.endpoints import EndpointRejected, bindable, devnet_endpoint
from devnet.real.stack import RealDevnet
from devnet.scenario import Scenario
from devnet.stack import Devnet, DevnetOptions
from devnet.testbed import KubeLog, World

CHAIN_LABEL = "peersync.io/chain-id"
CONTROL_PLANE_USERS = (
    "system:kube-",
    "system:node",
    "system:serviceaccount:kube-system:",
    "system:apiserver",
)
API_VERSIONS = {
    "ClusterRole": "rbac.authorization.k8s.io/v1",
    "Role": "rbac.authorization.k8s.io/v1",
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Pod": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
}
POD_GRACE_SECONDS = 1  # each restart waits out the old pod's grace period on the real controllers


class EmulatorOnly(NotImplementedError):
    pass


class RealKubeObjects:
    """The kube emulator's object API (get/apply/list/delete) over a real apiserver, as the cluster admin."""

    step_seconds = 0.0  # the emulator's rollout pace; the real controllers keep their own (tests may set it)

    def __init__(self, kubeconfig: Path, audit_log: Path) -> None:
        self.dynamic = DynamicClient(k8s_config.new_client_from_config(config_file=str(kubeconfig)))
        self.audit_log = audit_log

    def denials(self) -> list[dict[str, Any]]:
        """The requests the real authorizer refused (from the apiserver's audit log), oldest first, as the
        emulator reports them. The control plane's own components (system:kube-*, system:node*, kube-system
        ServiceAccounts) are left out: they may be refused while the RBAC bootstrap runs."""
        found = []
        for line in self.audit_log.read_text().splitlines():
            event = json.loads(line)
            code = (event.get("responseStatus") or {}).get("code")
            user = (event.get("user") or {}).get("username", "")
            if (
                code not in (401, 403)
                or user.startswith(CONTROL_PLANE_USERS)
                or event["stage"] != "ResponseComplete"
            ):
                continue
            ref = event.get("objectRef") or {}
            found.append(
                {
                    "user": user or None,
                    "verb": event.get("verb"),
                    "group": ref.get("apiGroup", ""),
                    "resource": ref.get("resource"),
                    "subresource": ref.get("subresource"),
                    "namespace": ref.get("namespace"),
                    "name": ref.get("name"),
                    "code": code,
                    "path": event.get("requestURI"),
                }
            )
        return found

    @property
    def resource_version(self) -> str:
        """What the emulator's store revision tells a test ("nothing was written"), over what peersync may
        write: the resourceVersions of the consumer namespaces and their ConfigMaps and workloads. (The
        cluster-wide revision moves on its own: kwok's heartbeats, leases, events.)"""
        namespaces = self.list("Namespace", label_selector=CHAIN_LABEL)
        versions = [ns["metadata"]["resourceVersion"] for ns in namespaces]
        for ns in namespaces:
            for kind in ("ConfigMap", "Deployment", "StatefulSet"):
                versions += [
                    o["metadata"]["resourceVersion"] for o in self.list(kind, ns["metadata"]["name"])
                ]
        return ",".join(versions)

    @property
    def requests_denied(self) -> int:
        return len(self.denials())

    def _resource(self, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=API_VERSIONS[kind], kind=kind)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = self._resource(kind).get(name=name, namespace=namespace or None)
        except NotFoundError:
            return None
        return dict(found.to_dict())

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create `obj`, or replace it unconditionally (no resourceVersion: last writer wins, as the
        emulator's apply)."""
        body = copy.deepcopy(obj)
        body["metadata"].pop("resourceVersion", None)
        resource = self._resource(body["kind"])
        namespace = body["metadata"].get("namespace")
        try:
            return dict(resource.replace(body=body, namespace=namespace).to_dict())
        except NotFoundError:
            return dict(resource.create(body=body, namespace=namespace).to_dict())

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        found = self._resource(kind).get(namespace=namespace, label_selector=label_selector)
        return [dict(item) for item in found.to_dict()["items"]]

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        try:
            self._resource(kind).delete(name=name, namespace=namespace or None)
        except NotFoundError:
            return False
        return True


WRITES = {"create": "ADDED", "update": "MODIFIED", "patch": "MODIFIED", "delete": "DELETED"}
KINDS = {"configmaps": "ConfigMap", "deployments": "Deployment", "statefulsets": "StatefulSet"}


class AuditKubeLog(KubeLog):
    """The kube emulator's write log (devnet.testbed.KubeLog) read back from the real apiserver's audit log:
    every successful write of a ConfigMap, Deployment or StatefulSet since this log was made, with the object
    it left (the audit policy records those at RequestResponse level, devnet.real.kube)."""

    def __init__(self, audit_log: Path, objects: RealKubeObjects) -> None:
        self._path = audit_log
        self._offset = audit_log.stat().st_size
        self._before = {
            (kind, o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
            for kind in KINDS.values()
            for o in objects.list(kind)
        }

    def _read(self) -> tuple[list[tuple[str, str, str, str, dict[str, Any]]], list[dict[str, Any] | None]]:
        with self._path.open("rb") as f:
            f.seek(self._offset)
            lines = f.read().decode().splitlines()
        events, olds, last = [], [], dict(self._before)
        for line in lines:
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            kind, verb = KINDS.get(ref.get("resource", "")), WRITES.get(event.get("verb", ""))
            code = (event.get("responseStatus") or {}).get("code", 0)
            if kind is None or verb is None or ref.get("subresource") or not 200 <= code < 300:
                continue
            if event.get("stage") != "ResponseComplete":
                continue
            key = (kind, ref.get("namespace", ""), ref.get("name", ""))
            obj = event.get("responseObject") or {}
            if verb == "MODIFIED" and obj.get("metadata", {}).get("resourceVersion") == (
                last.get(key) or {}
            ).get("metadata", {}).get("resourceVersion"):
                continue  # a write that changed nothing is no event (as in the emulator's store)
            events.append((verb, kind, key[1], key[2], obj))
            olds.append(last.get(key))
            last[key] = obj
        return events, olds

    @property  # type: ignore[override]
    def events(self) -> list[tuple[str, str, str, str, dict[str, Any]]]:
        return self._read()[0]

    @property  # type: ignore[override]
    def olds(self) -> list[dict[str, Any] | None]:
        return self._read()[1]


class RealWorld(World):
    testbed = "real"

    def _make_devnet(self, scenario: Scenario, opts: DevnetOptions) -> Devnet:
        # Tests place the nodes themselves (edit_validator), so an unreachable endpoint stays unreachable.
        return RealDevnet(scenario, opts, pod_grace_seconds=POD_GRACE_SECONDS, follow_endpoints=False)

    @property
    def real(self) -> RealDevnet:
        assert isinstance(self.devnet, RealDevnet)
        return self.devnet

    def _moniker(self, validator: str) -> str:
        assert self.real.provider is not None
        keys = self.real.provider.info.validators
        return next((m for m, k in keys.items() if validator in (m, k.operator)), validator)

    async def edit_validator(self, validator: str, details: str, reachable: bool = True, **extra: Any) -> int:
        """A real `tx staking edit-validator`, signed with the validator's key; when the details name a new
        loopback endpoint and `reachable`, the validator's real nodes move there first, as an operator
        moves the node before publishing it."""
        if extra:
            raise EmulatorOnly(
                f"edit_validator {sorted(extra)}: only the chain emulator can fake a tx's outcome"
            )
        assert self.real.provider is not None
        moniker = self._moniker(validator)
        if reachable:
            try:
                host = devnet_endpoint(details, self.scenario.allow_cidrs).host
            except EndpointRejected:
                host = None
            if host is not None and bindable(host):
                await self.real.move_nodes(moniker, host)
        return (await self.real.provider.edit_validator(moniker, details)).height

    def operator(self, moniker: str) -> str:
        assert self.real.provider is not None
        return self.real.provider.info.validators[moniker].operator

    def account(self, moniker: str) -> str:
        assert self.real.provider is not None
        return self.real.provider.info.validators[moniker].account

    async def admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        raise EmulatorOnly(f"/devnet/{path}: the chain emulator's admin API (faults, node settings)")

    async def chain_state(self) -> dict[str, Any]:
        raise EmulatorOnly("/devnet/state: the chain emulator's in-memory state")

    def kube(self, cluster_id: str = "alice") -> Any:
        cache: dict[str, RealKubeObjects] = self.__dict__.setdefault("_kubes", {})
        if cluster_id not in cache:
            audit_log = self.real.real_kubes[cluster_id].audit_log
            cache[cluster_id] = RealKubeObjects(self.cluster(cluster_id).kubeconfig, audit_log)
        return cache[cluster_id]

    def record_kube(self, cluster_id: str = "alice") -> KubeLog:
        """From now on, every write of the cluster's ConfigMaps and workloads (from its audit log)."""
        return AuditKubeLog(self.real.real_kubes[cluster_id].audit_log, self.kube(cluster_id))


def make_world(testbed: str, tmp: Path, scenario: Scenario, **kwargs: Any) -> World:
    """The World of `testbed` ("emulated" or "real")."""
    if testbed == "real":
        return RealWorld(tmp, scenario, **kwargs)
    if testbed != "emulated":
        raise ValueError(f"unknown testbed {testbed!r}")
    return World(tmp, scenario, **kwargs)
