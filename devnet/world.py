"""Seed one operator's cluster from the scenario: a namespace per consumer chain it runs, labelled and
annotated the way peersync expects, with a ConfigMap holding today's correct peer list and the workload
whose pods read it."""

from __future__ import annotations

from typing import Any

from core.endpoint import parse_endpoint, parse_endpoint_syntax
from core.peer_formats import write_peers
from core.peers import Peer, peer_for, peer_set_hash
from core.policy import EndpointPolicy
from core.upstream import upstream_ports
from devnet import shipped_rbac
from devnet.kube.pods import POD_IP_ANNOTATION
from devnet.kube.server import KubeEmulator
from devnet.scenario import ClusterSpec, NamespaceSpec, Scenario

DOMAIN = "peersync.io"
IMAGE = "consumerd:devnet"

CONFIG_TOML = """# CometBFT config overlay, merged into config.toml by the init container
proxy_app = "tcp://127.0.0.1:26658"
moniker = "{moniker}"

[p2p]
laddr = "tcp://0.0.0.0:{p2p}"
persistent_peers = ""
addr_book_strict = false  # devnet peers live on loopback
max_num_inbound_peers = 40

[rpc]
laddr = "tcp://0.0.0.0:{rpc}"
"""

INIT_SH = """#!/bin/sh
# Renders config.toml for {chain_id}, then starts the node.
set -eu
persistent_peers=""
sed -i "s|^persistent_peers = .*|persistent_peers = \\"$persistent_peers\\"|" "$HOME/config/config.toml"
exec consumerd start --home "$HOME"
"""

TEMPLATES = {
    "config.toml": ("config.toml", CONFIG_TOML),
    "init.sh": ("init.sh", INIT_SH),
    "key": ("persistent_peers", ""),
}


def desired_peers(scenario: Scenario, cluster: ClusterSpec, chain_id: str) -> list[Peer]:
    """Peers a node of `cluster` on `chain_id` should have: every other opted-in validator with an endpoint."""
    policy = EndpointPolicy.from_setting(scenario.allow_cidrs)
    consumer = scenario.consumer(chain_id)
    by_moniker = {v.moniker: v for v in scenario.validators}
    peers = []
    for moniker in consumer.opted_in:
        endpoint = by_moniker[moniker].endpoint
        if moniker == cluster.validator or not endpoint:
            continue
        peers.append(peer_for(moniker, parse_endpoint(endpoint, policy), chain_id))
    return peers


def namespace_objects(scenario: Scenario, cluster: ClusterSpec, ns: NamespaceSpec) -> list[dict[str, Any]]:
    assert ns.name and ns.workload_name and ns.configmap
    consumer = scenario.consumer(ns.consumer)
    peers = desired_peers(scenario, cluster, ns.consumer)
    key, template = TEMPLATES[ns.peers_format]
    ports = upstream_ports(ns.consumer)
    text = write_peers(
        ns.peers_format,
        template.format(moniker=cluster.validator, chain_id=ns.consumer, p2p=ports.p2p, rpc=ports.rpc),
        peers,
    )
    labels = {f"{DOMAIN}/chain-id": ns.consumer, f"{DOMAIN}/consumer-id": str(consumer.consumer_id)}
    if ns.managed:
        labels[f"{DOMAIN}/cluster"] = cluster.id
    annotations = {
        f"{DOMAIN}/configmap": ns.configmap,
        f"{DOMAIN}/peers-format": ns.peers_format,
        f"{DOMAIN}/peers-key": key,
        f"{DOMAIN}/workload": f"{ns.workload}/{ns.workload_name}",
        # The emulated nodes serve CometBFT RPC on the consumer's upstream-derived port, not 26657.
        f"{DOMAIN}/rpc-port": str(ports.rpc),
    }
    if ns.strategy != "restart":
        annotations[f"{DOMAIN}/strategy"] = ns.strategy
    if ns.signer != "local":
        annotations[f"{DOMAIN}/signer"] = ns.signer
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns.name, "labels": labels, "annotations": annotations},
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": ns.configmap,
            "namespace": ns.name,
            # The seeded pods run these peers: recorded as peersync records it after a rollout.
            "annotations": {
                f"{DOMAIN}/peers-hash": peer_set_hash(peers),
                f"{DOMAIN}/rolled-hash": peer_set_hash(peers),
            },
        },
        "data": {key: text},
    }
    node_host = _node_host(scenario, cluster)
    return [namespace, configmap, workload_object(ns, peer_set_hash(peers), key, node_host)]


def _node_host(scenario: Scenario, cluster: ClusterSpec) -> str | None:
    """Where the chain emulator runs this cluster's validator nodes: the pods' IP in the kube emulator."""
    validator = next(v for v in scenario.validators if v.moniker == cluster.validator)
    if not validator.endpoint:
        return None
    return parse_endpoint_syntax(validator.endpoint).host


def workload_object(
    ns: NamespaceSpec, peers_hash: str, config_key: str, node_host: str | None = None
) -> dict[str, Any]:
    instance = {"app.kubernetes.io/instance": ns.workload_name}
    labels = {**instance, "app.kubernetes.io/name": "consumerd", "app.kubernetes.io/component": "validator"}
    pod_notes = {f"{DOMAIN}/peers-hash": peers_hash}
    if node_host:
        pod_notes[POD_IP_ANNOTATION] = node_host
    template = {
        "metadata": {"labels": labels, "annotations": pod_notes},
        "spec": {
            "containers": [
                {
                    "name": "node",
                    "image": IMAGE,
                    "args": ["start", "--home", "/home/node"],
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/consumer", "readOnly": True}],
                }
            ],
            "volumes": [
                {
                    "name": "config",
                    "configMap": {"name": ns.configmap, "items": [{"key": config_key, "path": config_key}]},
                }
            ],
        },
    }
    spec: dict[str, Any] = {
        "replicas": ns.replicas,
        "selector": {"matchLabels": instance},
        "template": template,
    }
    kind = "Deployment"
    if ns.workload == "statefulset":
        kind = "StatefulSet"
        spec["serviceName"] = ns.workload_name
    else:
        # Recreate stops the old pod before the new one starts: one signer at a time (activities/workload_safety).
        spec["strategy"] = {"type": ns.update_strategy}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": ns.workload_name, "namespace": ns.name, "labels": labels},
        "spec": spec,
    }


def seed_cluster(kube: KubeEmulator, scenario: Scenario, cluster: ClusterSpec) -> list[str]:
    """Create the cluster's namespaces and their objects; return the namespace names."""
    names = []
    for ns in scenario.namespaces(cluster):
        for obj in namespace_objects(scenario, cluster, ns):
            kube.apply(obj)
        names.append(str(ns.name))
    return names


def grant_shipped_rbac(kube: KubeEmulator, scenario: Scenario, cluster: ClusterSpec) -> str:
    """Provision the cluster as the operator guide says (deploy/kubernetes base, plus the consumer RoleBinding
    in each managed namespace) and return a token of the worker's ServiceAccount."""
    for obj in shipped_rbac.base_objects():
        kube.apply(obj)
    for ns in scenario.namespaces(cluster):
        if ns.managed:
            kube.apply(shipped_rbac.consumer_binding(str(ns.name)))
    return kube.issue_token(shipped_rbac.NAMESPACE, shipped_rbac.WORKER_ACCOUNT)
