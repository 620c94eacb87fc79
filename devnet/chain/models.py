"""Pydantic models of the admin API: request bodies (strict: unknown keys are refused) and the
`GET /devnet/state` view that the devnet summary and tests read."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from devnet.scenario import BondStatus

Target = Literal["rpc", "rest", "nodes", "both", "all"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EditValidatorBody(_Body):
    validator: str = Field(description="operator address or (unique) moniker")
    details: str | None = Field(default=None, description="new details; omitted = [do-not-modify]")
    moniker: str | None = None
    identity: str | None = None
    website: str | None = None
    security_contact: str | None = None
    reachable: bool | None = Field(default=None, description="false: nothing listens at the (new) endpoint")
    fail: bool = Field(default=False, description="commit a failed tx (code 11, out of gas), no state change")
    fail_keeps_message_events: bool = Field(
        default=False,
        description="a failed tx normally carries only ante events (SDK 0.50); true keeps message.action etc.",
    )


class CreateValidatorBody(_Body):
    moniker: str = Field(min_length=1, max_length=70)
    details: str | None = None
    endpoint: str | None = Field(default=None, description="shorthand for details 'p2p=<endpoint>'")
    tokens: int = Field(default=100_000_000, ge=0)
    status: BondStatus = "BOND_STATUS_BONDED"
    consensus_pubkey: str | None = Field(
        default=None, description="base64 ed25519 key (32 bytes); default derived"
    )
    reachable: bool = True
    fail: bool = False


class CreateConsumerBody(_Body):
    chain_id: str = Field(min_length=1, max_length=50)
    consumer_id: str | None = Field(default=None, pattern=r"^[0-9]+$")
    name: str | None = None
    description: str = ""
    metadata: str = ""
    submitter: str | None = Field(
        default=None, description="validator signing the tx; default: the first one"
    )
    phase: str = Field(default="CONSUMER_PHASE_REGISTERED", description="phase to reach (e.g. LAUNCHED)")


class ConsumerPhaseBody(_Body):
    consumer: str = Field(description="consumer id or chain id")
    phase: str = Field(description="CONSUMER_PHASE_* name, its number, or a short name like 'launched'")


class OptBody(_Body):
    validator: str
    consumer: str = Field(description="consumer id or chain id")
    fail: bool = False


class NodeBody(_Body):
    validator: str
    consumer: str | None = Field(default=None, description="consumer id or chain id; omitted = all its nodes")
    catching_up: bool | None = None
    unsafe_rpc: bool | None = Field(default=None, description="serve the unsafe routes (dial_peers)")
    reachable: bool | None = Field(default=None, description="validator-wide: do its nodes listen at all")


class ValidatorStatusBody(_Body):
    validator: str
    status: BondStatus | None = None
    jailed: bool | None = None
    tokens: int | None = Field(default=None, ge=0)


class BlockTimeBody(_Body):
    seconds: float = Field(gt=0, le=3600)


class BlocksBody(_Body):
    count: int = Field(default=1, ge=1, le=1000)


class FaultsBody(_Body):
    target: Target = Field(default="both", description="both = rpc and rest; all = rpc, rest and nodes")
    fail_next: int | None = Field(default=None, ge=0, le=1_000_000)
    fail_status: int | None = Field(default=None, ge=500, le=599)
    slow_next: int | None = Field(default=None, ge=0, le=1_000_000)
    delay: float = Field(default=0.5, ge=0, le=60)
    drop_websockets: bool = False
    pause_blocks: bool | None = Field(default=None, description="true pauses block production, false resumes")
    clear: bool = False


# ---- responses ------------------------------------------------------------------------------------------


class TxSubmitted(BaseModel):
    height: int | None = Field(description="None while block production is paused (tx waits in the mempool)")
    txhash: str
    code: int | None = None
    pending: bool = False


class ValidatorView(BaseModel):
    operator_address: str
    account_address: str
    valcons: str
    moniker: str
    details: str
    status: str
    tokens: str
    jailed: bool
    endpoint: str | None = Field(description="host its consumer nodes run on")
    reachable: bool
    note: str = ""


class ConsumerView(BaseModel):
    consumer_id: str
    chain_id: str
    phase: str
    client_id: str
    opted_in: list[str] = Field(description="monikers")
    opted_in_operators: list[str]
    p2p_port: int
    rpc_port: int


class NodeView(BaseModel):
    validator: str
    moniker: str
    consumer_id: str
    chain_id: str
    node_id: str
    host: str | None
    p2p_port: int
    rpc_port: int
    listening: bool
    rpc_listening: bool
    catching_up: bool
    persistent_peers: list[str]
    dialed_peers: list[str]
    connected_peers: list[str]
    errors: list[str]


class DevnetState(BaseModel):
    chain_id: str
    rpc_url: str
    rest_url: str
    ws_url: str
    height: int
    latest_block_time: str
    block_time: float
    paused: bool
    mempool: int
    websocket_clients: int
    subscriptions: int
    validators: list[ValidatorView]
    consumers: list[ConsumerView]
    nodes: list[NodeView]
    bind_errors: list[str]
    faults: dict[str, dict[str, float | int | None]]
