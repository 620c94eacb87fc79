"""Inputs and outputs of the activities: one model each, importable from workflow code."""

from __future__ import annotations

from pydantic import Field

from workflows.contracts import ConsumerRef, Contract, EndpointChangeRequest, SyncRequest, ValidatorRecord
from workflows.registry_state import ChangeEvent


class RefreshInput(Contract):
    known: dict[str, str] = Field(description="bucket -> fingerprint the registry already holds")


class RefreshOutput(Contract):
    height: int
    buckets: dict[str, list[ValidatorRecord]]
    edit_heights: dict[str, int]


class ValidateInput(Contract):
    request: EndpointChangeRequest


class DiscoverInput(Contract):
    operator_address: str


class ProbeInput(Contract):
    endpoint: str
    ports: list[int]


class ProbeOutput(Contract):
    reachable: bool
    summary: str


class ProbePeersInput(Contract):
    peers: list[str] = Field(description="canonical peer strings whose host:port to dial")


class ProbePeersOutput(Contract):
    unreachable: dict[str, str] = Field(description="peer -> why it did not answer")


class ConsumerInput(Contract):
    consumer: ConsumerRef


class DesiredPeers(Contract):
    peers: list[str]
    by_validator: dict[str, str] = Field(description="operator address -> peer string")
    missing: list[str] = Field(
        default_factory=list, description="opted-in validators with no endpoint in effect"
    )
    refused: dict[str, str] = Field(
        default_factory=dict, description="operator address -> a pinned endpoint the policy refuses, and why"
    )


class AppliedPeersOut(Contract):
    peers: list[str]
    problems: list[str]
    peers_hash: str
    workload_hash: str | None = Field(None, description="peer-set hash the workload's pods run")
    strategy: str = Field("restart", description="restart | live | live-then-restart (peersync.io/strategy)")


class WriteInput(Contract):
    consumer: ConsumerRef
    peers: list[str]


class WriteOutput(Contract):
    written: bool
    peers_hash: str


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
    peers: list[str]
    peers_hash: str
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
