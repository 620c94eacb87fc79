"""Inputs and outputs of the activities: one model each, importable from workflow code."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.contracts import (
    ConsumerRef,
    Contract,
    DesiredPeers,
    EndpointChangeRequest,
    EndpointSnapshot,
    ProvedNodeId,
    SyncRequest,
    ValidatorRecord,
)
from core.registry_state import ChangeEvent


class RefreshInput(Contract):
    known: dict[str, str] = Field(description="bucket -> fingerprint the registry already holds")
    discovered: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="operator -> chain id -> fingerprint of the node-id proof the registry holds (node_ids.py)",
    )


class RefreshOutput(Contract):
    height: int
    buckets: dict[str, list[ValidatorRecord]]
    edit_heights: dict[str, int]
    discovered: dict[str, dict[str, ProvedNodeId]] = Field(
        default_factory=dict,
        description="node-id proofs (source `discovered`) that differ from the known ones",
    )


class ValidateInput(Contract):
    request: EndpointChangeRequest


class DiscoverInput(Contract):
    operator_address: str


class ProbeInput(Contract):
    endpoint: str
    ports: list[int]
    # Optional so the previous release's histories and inputs still validate.
    expected_ids: (
        dict[Annotated[int, Field(ge=1, le=65535)], Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]] | None
    ) = Field(
        None,
        description="port -> the node id the node there must prove (the authenticated probe, issue 12); "
        "a port without one is checked by a TCP connect",
    )


class ProbeOutput(Contract):
    reachable: bool
    summary: str


class ProbePeersInput(Contract):
    peers: list[str] = Field(description="canonical peer strings whose host:port to dial")


class ProbePeersOutput(Contract):
    unreachable: dict[str, str] = Field(description="peer -> why it did not answer")


class ConsumerInput(Contract):
    consumer: ConsumerRef
    pins: EndpointSnapshot | None = Field(
        None, description="the registry's snapshot to apply; None only from the previous release's workflows"
    )


class CheckDriftInput(Contract):
    dry_run: bool = False
    pins: EndpointSnapshot | None = Field(
        None, description="the registry's snapshot to compare with; None only from the previous release"
    )


class ReadAppliedInput(ConsumerInput):
    desired: list[str] = Field(
        default_factory=list,
        description="the peers wanted now: entries with their node ids are peersync's (the rest is the operator's)",
    )


class AppliedPeersOut(Contract):
    peers: list[str] = Field(description="peersync's entries (desired or recorded node ids)")
    problems: list[str]
    peers_hash: str
    kept: list[str] = Field(default_factory=list, description="the operator's entries, kept byte for byte")
    workload_hash: str | None = Field(None, description="peer-set hash the workload's pods run")
    strategy: str = Field("restart", description="restart | live | live-then-restart (peersync.io/strategy)")


class WriteInput(Contract):
    consumer: ConsumerRef
    peers: list[str]


class WriteOutput(Contract):
    written: bool
    peers_hash: str
    all_peers: list[str] = Field(
        default_factory=list, description="the whole resulting list (the operator's entries too) that parses"
    )


class RestartInput(Contract):
    consumer: ConsumerRef
    peers_hash: str
    restarted_at: str = Field(description="RFC 3339, taken once from workflow time")


class RestartOutput(Contract):
    restarted: bool
    generation: int
    message: str


class WaitInput(Contract):
    consumer: ConsumerRef
    peers_hash: str | None = Field(None, description="recorded on the ConfigMap once the rollout is done")
    deadline_seconds: float = Field(
        900.0, gt=0, description="give up (RolloutFailed) when the rollout is not done by then"
    )


class WaitOutput(Contract):
    message: str
    seconds: float | None = Field(
        None, description="how long the rollout took; None when a worker restart hid its end"
    )


class DialInput(Contract):
    consumer: ConsumerRef
    peers: list[str] = Field(description="the node's whole persistent list: dial_peers replaces it")
    peers_hash: str
    verify: list[str] | None = Field(
        None, description="the peers whose connection is checked (peersync's own); None: all of `peers`"
    )
    record: bool = Field(description="record on the ConfigMap that the pods run this set (strategy live)")


class DialOutput(Contract):
    nodes: int
    message: str


class StartChangesInput(Contract):
    changes: list[ChangeEvent]


class SyncCallInput(Contract):
    consumer: ConsumerRef
    request: SyncRequest


class OverrideInput(Contract):
    operator_address: str
    endpoint: str | None


class SlotCallInput(Contract):
    holder: str = Field(description="workflow id that gets the `slot_granted` signal")


class CatchUpInput(Contract):
    """After a restart: wait until every ready pod's CometBFT /status says caught up and its height advances."""

    consumer: ConsumerRef
    deadline_seconds: float = Field(
        600.0, gt=0, description="give up (CatchUpFailed) when the nodes have not caught up by then"
    )


class CatchUpOutput(Contract):
    message: str = Field(description="e.g. '1 node(s) caught up at height 1234 after 12.3s'")
    seconds: float | None = Field(None, description="restart end -> caught up; None when unknown")


class PlanInput(ConsumerInput):
    """A sync's reads in one step: the desired peers, the applied ones, and a probe of the new ones."""

    forced_hosts: list[str] = Field(
        default_factory=list, description="hosts an operator approved past a failed probe: not probed"
    )


class PlanOutput(Contract):
    desired: DesiredPeers = Field(description="kept applied entries included (DesiredPeers.keeping)")
    applied: AppliedPeersOut
    unreachable: dict[str, str] = Field(default_factory=dict, description="new peer -> why it did not answer")


class RestartWaitInput(Contract):
    """After a restart, in one activity: the rollout done, then every node caught up (each as its own)."""

    rollout: WaitInput
    catch_up: CatchUpInput


class RestartWaitOutput(Contract):
    rollout: WaitOutput
    caught_up: CatchUpOutput
