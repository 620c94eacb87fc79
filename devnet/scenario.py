"""The world a devnet starts with: validators, consumer chains, opt-ins and each operator's cluster.

One YAML file (``peersync devnet --scenario FILE``) or the default of DESIGN.md. Keys are derived
deterministically from ``seed`` and the moniker, so addresses are stable across runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

BondStatus = Literal[
    "BOND_STATUS_BONDED", "BOND_STATUS_UNBONDING", "BOND_STATUS_UNBONDED", "BOND_STATUS_UNSPECIFIED"
]
ConsumerPhase = Literal[
    "CONSUMER_PHASE_REGISTERED",
    "CONSUMER_PHASE_INITIALIZED",
    "CONSUMER_PHASE_LAUNCHED",
    "CONSUMER_PHASE_STOPPED",
    "CONSUMER_PHASE_DELETED",
]
WorkloadKind = Literal["deployment", "statefulset"]
PeersFormat = Literal["config.toml", "init.sh", "key"]
Strategy = Literal["restart", "live", "live-then-restart"]
UpdateStrategy = Literal["Recreate", "RollingUpdate"]
Signer = Literal["local", "remote", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ValidatorSpec(_Strict):
    moniker: str = Field(min_length=1, max_length=70)
    endpoint: str | None = Field(
        default=None,
        description="host[:port] published as `p2p=<endpoint>` in details; also where its nodes listen",
    )
    details: str | None = Field(default=None, description="verbatim details; overrides `endpoint` when set")
    status: BondStatus = "BOND_STATUS_BONDED"
    tokens: int = Field(default=100_000_000, ge=0)
    jailed: bool = False

    def published_details(self) -> str:
        if self.details is not None:
            return self.details
        return f"p2p={self.endpoint}" if self.endpoint else ""


class ConsumerSpec(_Strict):
    chain_id: str = Field(min_length=1, max_length=50)
    consumer_id: str | None = Field(default=None, pattern=r"^[0-9]+$")
    phase: ConsumerPhase = "CONSUMER_PHASE_LAUNCHED"
    opted_in: list[str] = Field(default_factory=list, description="monikers")


class NamespaceSpec(_Strict):
    consumer: str = Field(description="chain id of the consumer this namespace runs")
    name: str | None = Field(default=None, description="default: <cluster>-<chain id>")
    workload: WorkloadKind = "deployment"
    workload_name: str | None = Field(default=None, description="default: the chain id")
    replicas: int = Field(default=1, ge=0, le=50)
    peers_format: PeersFormat = "config.toml"
    configmap: str | None = Field(default=None, description="default: <chain id>-config")
    managed: bool = Field(default=True, description="labelled for this cluster")
    strategy: Strategy = Field(default="restart", description="peersync.io/strategy of the namespace")
    update_strategy: UpdateStrategy = Field(
        default="Recreate",
        description="a Deployment's strategy.type; RollingUpdate (Kubernetes' default, maxSurge 25%) runs the "
        "new pod beside the old one, so peersync refuses to restart it unless the signer is remote or none",
    )
    signer: Signer = Field(default="local", description="peersync.io/signer of the namespace")


class ClusterSpec(_Strict):
    id: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")
    validator: str = Field(description="moniker of the validator this cluster runs")
    namespaces: list[NamespaceSpec] | None = Field(
        default=None, description="default: one per launched consumer the validator opted in to"
    )


class Scenario(_Strict):
    seed: str = "peersync-devnet"
    chain_id: str = "provider"
    bech32_prefix: str = "cosmos"
    block_time: float = Field(default=1.0, gt=0, description="seconds between empty blocks")
    allow_cidrs: list[str] = Field(default_factory=lambda: ["127.0.10.0/24"])
    validators: list[ValidatorSpec]
    consumers: list[ConsumerSpec] = Field(default_factory=list)
    clusters: list[ClusterSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> Scenario:
        monikers = [v.moniker for v in self.validators]
        if len(set(monikers)) != len(monikers):
            raise ValueError(
                "scenario monikers must be unique (the chain allows duplicates; the scenario keys by them)"
            )
        chain_ids = [c.chain_id for c in self.consumers]
        if len(set(chain_ids)) != len(chain_ids):
            raise ValueError("consumer chain ids must be unique")
        for index, consumer in enumerate(self.consumers):
            if consumer.consumer_id is None:
                consumer.consumer_id = str(index)
            unknown = set(consumer.opted_in) - set(monikers)
            if unknown:
                raise ValueError(f"consumer {consumer.chain_id} opts in unknown validators {sorted(unknown)}")
        for cluster in self.clusters:
            if cluster.validator not in monikers:
                raise ValueError(f"cluster {cluster.id} runs unknown validator {cluster.validator}")
            for ns in cluster.namespaces or []:
                if ns.consumer not in chain_ids:
                    raise ValueError(
                        f"cluster {cluster.id} has a namespace for unknown consumer {ns.consumer}"
                    )
        return self

    def consumer(self, chain_id: str) -> ConsumerSpec:
        return next(c for c in self.consumers if c.chain_id == chain_id)

    def namespaces(self, cluster: ClusterSpec) -> list[NamespaceSpec]:
        """The namespaces of `cluster`, defaulted and with every name filled in."""
        specs = cluster.namespaces
        if specs is None:
            specs = [
                NamespaceSpec(consumer=c.chain_id)
                for c in self.consumers
                if c.phase == "CONSUMER_PHASE_LAUNCHED" and cluster.validator in c.opted_in
            ]
        return [
            ns.model_copy(
                update={
                    "name": ns.name or f"{cluster.id}-{ns.consumer}",
                    "workload_name": ns.workload_name or ns.consumer,
                    "configmap": ns.configmap or f"{ns.consumer}-config",
                }
            )
            for ns in specs
        ]

    def key_seed(self, purpose: str, moniker: str) -> bytes:
        """32 deterministic bytes for a validator's `purpose` key (consensus, operator)."""
        return hashlib.sha256(f"{self.seed}/{purpose}/{moniker}".encode()).digest()


def default_scenario(subnet: str = "127.0.10", block_time: float = 1.0) -> Scenario:
    """DESIGN.md's devnet: four validators, three launched consumers, alice's cluster. Tests move it to a
    subnet of their own (`127.x.y`) so parallel worlds never collide."""
    names = ["alice", "bob", "carol", "dave"]
    return Scenario(
        allow_cidrs=[f"{subnet}.0/24"],
        block_time=block_time,
        validators=[ValidatorSpec(moniker=n, endpoint=f"{subnet}.{i}") for i, n in enumerate(names, start=1)],
        consumers=[
            ConsumerSpec(chain_id="consumer-1", opted_in=names),
            ConsumerSpec(chain_id="consumer-2", opted_in=["alice", "bob", "carol"]),
            ConsumerSpec(chain_id="consumer-3", opted_in=["alice", "dave"]),
        ],
        clusters=[
            ClusterSpec(
                id="alice",
                validator="alice",
                # Two replicas sign safely only behind a remote signer (horcrux, tmkms); consumer-3 keeps
                # Kubernetes' default RollingUpdate, so peersync refuses its restarts (visible in `make demo`).
                namespaces=[
                    NamespaceSpec(consumer="consumer-1", workload="deployment", replicas=2, signer="remote"),
                    NamespaceSpec(
                        consumer="consumer-2",
                        workload="statefulset",
                        replicas=2,
                        peers_format="init.sh",
                        signer="remote",
                    ),
                    NamespaceSpec(
                        consumer="consumer-3",
                        workload="deployment",
                        peers_format="key",
                        update_strategy="RollingUpdate",
                    ),
                ],
            )
        ],
    )


def with_clusters(scenario: Scenario, monikers: list[str]) -> Scenario:
    """The same world run by these validators' clusters (cluster id = moniker), one namespace per launched
    consumer each is opted in to."""
    clusters = [ClusterSpec(id=m, validator=m) for m in monikers]
    return Scenario.model_validate({**scenario.model_dump(), "clusters": [c.model_dump() for c in clusters]})


def load_scenario(path: Path | None) -> Scenario:
    if path is None:
        return default_scenario()
    # The C loader reads a 500-consumer benchmark scenario ten times faster than the pure-Python one.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(path.read_text(), Loader=loader)
    return Scenario.model_validate(data)
