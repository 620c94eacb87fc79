"""A picture of the running devnet, read the way any client would: chain over REST, clusters over the
Kubernetes API. Used by `make demo` to show the world it brought up."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from pydantic import BaseModel
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from activities.workload_safety import restart_refusal
from core.addresses import valcons_address
from core.peer_formats import ConsumerLayout, LayoutError, read_peers
from core.upstream import upstream_node_id
from devnet.files import ClusterInfo, DevnetManifest

ICS = "/interchain_security/ccv/provider"


class ValidatorRow(BaseModel):
    operator_address: str
    moniker: str
    details: str
    status: str
    valcons: str


class ConsumerRow(BaseModel):
    consumer_id: str
    chain_id: str
    phase: str
    opted_in: list[str]


class NamespaceRow(BaseModel):
    cluster: str
    namespace: str
    chain_id: str
    workload: str
    peers: list[str]
    problems: list[str]
    restart: str = "allowed"  # or "refused: <why>" (two pods could sign with one key)


class WorldView(BaseModel):
    height: int
    validators: list[ValidatorRow]
    consumers: list[ConsumerRow]
    namespaces: list[NamespaceRow]


async def _get(session: aiohttp.ClientSession, url: str) -> dict:
    async with session.get(url) as resp:
        resp.raise_for_status()
        return await resp.json()


async def read_chain(manifest: DevnetManifest) -> tuple[int, list[ValidatorRow], list[ConsumerRow]]:
    rest = manifest.chain_rest_url
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        status = await _get(session, f"{manifest.chain_rpc_url}/status")
        validators, key = [], None
        while True:
            page = f"{rest}/cosmos/staking/v1beta1/validators?pagination.limit=200"
            page += f"&pagination.key={key}" if key else ""
            body = await _get(session, page)
            for v in body["validators"]:
                pubkey = base64.b64decode(v["consensus_pubkey"]["key"])
                validators.append(
                    ValidatorRow(
                        operator_address=v["operator_address"],
                        moniker=v["description"]["moniker"],
                        details=v["description"]["details"],
                        status=v["status"].removeprefix("BOND_STATUS_").lower(),
                        valcons=valcons_address(pubkey, manifest.bech32_prefix),
                    )
                )
            key = body["pagination"]["next_key"]
            if not key:
                break
        by_valcons = {v.valcons: v.moniker for v in validators}
        consumers = []
        for chain in (await _get(session, f"{rest}{ICS}/consumer_chains/0"))["chains"]:
            opted: list[str] = []
            if chain["phase"] == "CONSUMER_PHASE_LAUNCHED":
                addrs = await _get(session, f"{rest}{ICS}/opted_in_validators/{chain['consumer_id']}")
                opted = [by_valcons.get(a, a) for a in addrs["validators_provider_addresses"]]
            consumers.append(
                ConsumerRow(
                    consumer_id=chain["consumer_id"],
                    chain_id=chain["chain_id"],
                    phase=chain["phase"].removeprefix("CONSUMER_PHASE_").lower(),
                    opted_in=sorted(opted),
                )
            )
    return int(status["result"]["sync_info"]["latest_block_height"]), validators, consumers


def read_cluster(info: ClusterInfo, monikers: list[str]) -> list[NamespaceRow]:
    api = k8s_config.new_client_from_config(config_file=str(info.kubeconfig))
    core = k8s.CoreV1Api(api)
    apps = k8s.AppsV1Api(api)
    rows = []
    for ns in core.list_namespace(label_selector=f"peersync.io/cluster={info.id}").items:
        notes = ns.metadata.annotations or {}
        chain_id = (ns.metadata.labels or {}).get("peersync.io/chain-id", "?")
        cm = core.read_namespaced_config_map(notes["peersync.io/configmap"], ns.metadata.name)
        text = (cm.data or {}).get(notes["peersync.io/peers-key"], "")
        found = read_peers(notes["peersync.io/peers-format"], text)
        names = {upstream_node_id(m, chain_id): m for m in monikers}
        restart = _restart(apps, chain_id, ns.metadata.name, notes)
        rows.append(
            NamespaceRow(
                cluster=info.id,
                namespace=ns.metadata.name,
                chain_id=chain_id,
                workload=notes.get("peersync.io/workload", "?"),
                peers=[f"{names.get(p.node_id, '?')} {p.host}:{p.port}" for p in found.peers],
                problems=[str(p) for p in found.problems],
                restart=restart,
            )
        )
    api.close()
    return rows


def _restart(apps: k8s.AppsV1Api, chain_id: str, namespace: str, notes: dict[str, str]) -> str:
    """Whether peersync would restart this workload (activities/workload_safety), as the worker judges it."""
    try:
        layout = ConsumerLayout.from_annotations(chain_id, notes)
    except LayoutError as exc:
        return f"refused: {exc}"
    read = (
        apps.read_namespaced_deployment
        if layout.workload_kind == "deployment"
        else apps.read_namespaced_stateful_set
    )
    spec = apps.api_client.sanitize_for_serialization(read(layout.workload_name, namespace)).get("spec") or {}
    refusal = restart_refusal(layout.workload_kind, layout.workload_name, spec, layout.signer)
    return "allowed" if refusal is None else f"refused: {refusal}"


async def read_world(manifest: DevnetManifest) -> WorldView:
    height, validators, consumers = await read_chain(manifest)
    monikers = [v.moniker for v in validators]
    namespaces = []
    for info in manifest.clusters:
        namespaces += await asyncio.to_thread(read_cluster, info, monikers)
    return WorldView(height=height, validators=validators, consumers=consumers, namespaces=namespaces)


def render(view: WorldView, limit: int = 20) -> Group:
    vals = Table(title=f"Provider chain validators (height {view.height})", expand=True)
    for col in ("moniker", "operator address", "details", "status"):
        vals.add_column(col, overflow="fold")
    for v in view.validators[:limit]:
        vals.add_row(v.moniker, v.operator_address, v.details, v.status)
    cons = Table(title="Consumer chains", expand=True)
    for col in ("id", "chain id", "phase", "opted in"):
        cons.add_column(col)
    for c in view.consumers[:limit]:
        cons.add_row(c.consumer_id, c.chain_id, c.phase, ", ".join(c.opted_in))
    nss = Table(title="Managed consumer namespaces", expand=True)
    for col in ("cluster", "namespace", "chain", "workload", "persistent_peers", "restart"):
        nss.add_column(col, overflow="fold")
    for n in view.namespaces[:limit]:
        nss.add_row(
            n.cluster,
            n.namespace,
            n.chain_id,
            n.workload,
            "\n".join(n.peers + n.problems) or "(none)",
            escape(n.restart),
        )
    return Group(vals, cons, nss)
