"""Seed a real cluster (devnet.real.kube) the way an operator would, with the kubectl built by `make testbed`:

1. the scenario's consumer namespaces, ConfigMaps and workloads: the objects the emulated devnet seeds
   (devnet.world.namespace_objects), written as YAML manifests and applied with `kubectl apply -f`;
2. peersync's RBAC as shipped: `kubectl apply -k deploy/kubernetes/overlays/example`, then, per managed
   namespace, the guide's copy of overlays/example/consumer-neutron (deploy/kubernetes/README.md, "Add a
   consumer namespace"), applied with `kubectl apply -k`;
3. a token of the worker's ServiceAccount from the TokenRequest API (`kubectl create token`) and a kubeconfig
   for it, shaped like the emulated devnet's `kubeconfig-worker`.

Nothing here talks to the emulator; every file written stays under `out_dir`.
"""

from __future__ import annotations

import asyncio
import copy
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from devnet import shipped_rbac
from devnet.kube.kubeconfig import write_kubeconfig
from devnet.real.kube import RealKubeInfo
from devnet.scenario import ClusterSpec, Scenario
from devnet.world import namespace_objects

OVERLAY = shipped_rbac.MANIFESTS / "overlays" / "example"
CONSUMER_NAMESPACE_DIR = shipped_rbac.MANIFESTS / "consumer-namespace"
# The one consumer namespace overlays/example binds; an operator's namespace exists before it is bound
# (the RoleBinding's namespace must exist, or `apply -k` fails on it).
EXAMPLE_CONSUMER_NAMESPACE = "consumer-neutron"
TOKEN_SECONDS = 86400  # a devnet left running for a day keeps its worker authenticated
KUBECTL_TIMEOUT = 60.0


class KubectlError(RuntimeError):
    pass


class SeededCluster(BaseModel):
    cluster_id: str
    namespaces: list[str]  # the scenario's, in scenario order
    managed: list[str]  # those labelled for the cluster (each has the worker's RoleBinding)
    manifests: list[Path]  # what `kubectl apply -f` was given, one file per namespace
    worker_user: str  # system:serviceaccount:peersync:peersync-worker
    worker_kubeconfig: Path
    applied: dict[str, str]  # kubectl's own output per apply, for a reader of the test log


async def run_kubectl(kubectl: Path, kubeconfig: Path, cache_dir: Path, *args: str) -> str:
    """The built kubectl with `kubeconfig`; its discovery cache and HOME stay under `cache_dir`."""
    proc = await asyncio.create_subprocess_exec(
        str(kubectl),
        f"--kubeconfig={kubeconfig}",
        f"--cache-dir={cache_dir}",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(cache_dir)},  # kubectl never writes to the real ~/.kube
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), KUBECTL_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise KubectlError(f"kubectl {' '.join(args)}: no answer in {KUBECTL_TIMEOUT} s") from None
    if proc.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args)} exited {proc.returncode}: {err.decode().strip()}")
    return out.decode()


class Kubectl:
    """The built kubectl as the cluster admin (or as `kubeconfig`'s user)."""

    def __init__(self, info: RealKubeInfo, cache_dir: Path) -> None:
        self.info = info
        self.cache_dir = cache_dir

    async def __call__(self, *args: str, kubeconfig: Path | None = None) -> str:
        return await run_kubectl(self.info.kubectl, kubeconfig or self.info.kubeconfig, self.cache_dir, *args)


def operator_objects(
    scenario: Scenario, cluster: ClusterSpec, grace_seconds: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Per namespace, the emulated devnet's objects as an operator's manifests.

    The pod template keeps POD_IP_ANNOTATION: kwok reports it as the pod IP (devnet.real.kwok_stages), so the
    pods sit on their validator's real consumer nodes, as in the emulator. `grace_seconds`, when given, sets
    the pods' terminationGracePeriodSeconds: a real (kwok) pod really waits out the default 30 s on each
    restart, where the emulator counts grace in ticks of 15 s (devnet.kube.pods.grace_ticks)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for ns in scenario.namespaces(cluster):
        objects = copy.deepcopy(namespace_objects(scenario, cluster, ns))
        for obj in objects:
            template = (obj.get("spec") or {}).get("template")
            if template is not None and grace_seconds is not None:
                template["spec"]["terminationGracePeriodSeconds"] = grace_seconds
        out[str(ns.name)] = objects
    return out


def write_manifests(objects: dict[str, list[dict[str, Any]]], folder: Path) -> list[Path]:
    """One multi-document YAML file per namespace, the Namespace first: kubectl applies documents in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, docs in objects.items():
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        paths.append(path)
    return paths


def consumer_binding_kustomization(out_dir: Path, namespace: str) -> Path:
    """The guide's step 2: overlays/example/consumer-neutron copied to a directory named after `namespace`,
    with its namespace set. kustomize refuses absolute resource paths, hence the relative one."""
    folder = out_dir / "consumer-bindings" / namespace
    folder.mkdir(parents=True, exist_ok=True)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "resources": [os.path.relpath(CONSUMER_NAMESPACE_DIR, folder)],
    }
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return folder


async def seed_real_cluster(
    info: RealKubeInfo,
    scenario: Scenario,
    cluster: ClusterSpec,
    out_dir: Path,
    grace_seconds: int | None = None,
) -> SeededCluster:
    """Namespaces, ConfigMaps, workloads and the shipped RBAC on a real cluster; a kubeconfig of the worker."""
    kubectl = Kubectl(info, out_dir / "kubectl-cache")
    applied: dict[str, str] = {}
    manifests = write_manifests(operator_objects(scenario, cluster, grace_seconds), out_dir / "manifests")
    for path in manifests:
        applied[str(path)] = await kubectl("apply", "-f", str(path))
    specs = {str(ns.name): ns for ns in scenario.namespaces(cluster)}

    await kubectl("create", "namespace", EXAMPLE_CONSUMER_NAMESPACE)
    applied[str(OVERLAY)] = await kubectl("apply", "-k", str(OVERLAY))
    managed = [name for name, ns in specs.items() if ns.managed]
    for name in managed:
        folder = consumer_binding_kustomization(out_dir, name)
        applied[str(folder)] = await kubectl("apply", "-k", str(folder))

    token = (
        await kubectl(
            "create",
            "token",
            shipped_rbac.WORKER_ACCOUNT,
            f"--namespace={shipped_rbac.NAMESPACE}",
            f"--duration={TOKEN_SECONDS}s",
        )
    ).strip()
    worker_kubeconfig = write_kubeconfig(
        out_dir / "kubeconfig-worker",
        info.url,
        context=f"real-{cluster.id}-worker",
        token=token,
        certificate_authority=info.ca_file.read_bytes(),
    )
    return SeededCluster(
        cluster_id=cluster.id,
        namespaces=list(specs),
        managed=managed,
        manifests=manifests,
        worker_user=f"system:serviceaccount:{shipped_rbac.NAMESPACE}:{shipped_rbac.WORKER_ACCOUNT}",
        worker_kubeconfig=worker_kubeconfig,
        applied=applied,
    )
