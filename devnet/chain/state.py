"""The provider chain's state: validators, consumer chains, opt-ins, blocks and indexed txs. Pure (no I/O).

Mutations happen only inside `commit`, which runs each pending tx's handler, records the block and indexes
its txs, so every observer (RPC, REST, websocket) sees a state that matches some committed height.
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cosmpy.protos.cosmos.tx.v1beta1 import tx_pb2 as txv1

from devnet.chain.encoding import now_ns, upper_hex
from devnet.chain.events import Event, flatten
from devnet.chain.keys import AddressBook, ValidatorKeys, addresses, derive_keys
from devnet.chain.txs import ExecResult, SignedTx, ante_events
from devnet.scenario import Scenario

PHASES = (
    "CONSUMER_PHASE_UNSPECIFIED",
    "CONSUMER_PHASE_REGISTERED",
    "CONSUMER_PHASE_INITIALIZED",
    "CONSUMER_PHASE_LAUNCHED",
    "CONSUMER_PHASE_STOPPED",
    "CONSUMER_PHASE_DELETED",
)
ACTIVE_PHASES = frozenset(
    {"CONSUMER_PHASE_REGISTERED", "CONSUMER_PHASE_INITIALIZED", "CONSUMER_PHASE_LAUNCHED"}
)
BOND_STATUSES = (
    "BOND_STATUS_UNSPECIFIED",
    "BOND_STATUS_UNBONDED",
    "BOND_STATUS_UNBONDING",
    "BOND_STATUS_BONDED",
)
DENOM = "stake"
POWER_REDUCTION = 1_000_000


class ChainError(ValueError):
    """A request the chain refuses (bad reference, invalid field); the message is shown to the caller."""


@dataclass
class Description:
    moniker: str
    identity: str = ""
    website: str = ""
    security_contact: str = ""
    details: str = ""


@dataclass(eq=False)
class Validator:
    keys: ValidatorKeys
    addr: AddressBook
    description: Description
    status: str
    tokens: int
    jailed: bool
    account_number: int
    created_ns: int
    sequence: int = 0
    # Devnet: where this operator's consumer nodes really run (moves only on a valid devnet endpoint).
    node_host: str | None = None
    reachable: bool = True
    endpoint_note: str = ""
    # Gateway JSON of this validator, rebuilt lazily after any change.
    rest_json: str | None = None

    @property
    def operator(self) -> str:
        return self.addr.operator

    @property
    def moniker(self) -> str:
        return self.description.moniker

    @property
    def store_key(self) -> bytes:
        """The staking store key under ValidatorsKey: length-prefixed operator address bytes."""
        return bytes([len(self.keys.account_bytes)]) + self.keys.account_bytes

    @property
    def power(self) -> int:
        return self.tokens // POWER_REDUCTION

    def touch(self) -> None:
        self.rest_json = None


@dataclass(eq=False)
class Consumer:
    consumer_id: str
    chain_id: str
    phase: str
    owner: str
    name: str
    description: str = ""
    metadata: str = ""
    client_id: str = ""
    spawn_ns: int = 0
    opted_in: set[str] = field(default_factory=set)  # operator addresses
    rest_json: str | None = None

    @property
    def store_key(self) -> bytes:
        """ICS StringIdWithLenKey without the prefix byte: 8-byte big-endian length, then the id."""
        return struct.pack(">Q", len(self.consumer_id)) + self.consumer_id.encode()

    def touch(self) -> None:
        self.rest_json = None


@dataclass(eq=False)
class TxRecord:
    signed: SignedTx
    height: int
    index: int
    time_ns: int
    result: ExecResult
    events_map: dict[str, list[str]]
    event_types: frozenset[str]
    hash_hex: str
    # Lazily rendered JSON fragments (HTTP /tx_search entry, REST TxResponse, REST Tx).
    cache: dict[str, str] = field(default_factory=dict)

    @property
    def raw(self) -> bytes:
        return self.signed.raw

    @property
    def tx(self) -> txv1.Tx:
        return self.signed.tx


@dataclass(eq=False)
class Block:
    height: int
    time_ns: int
    hash: bytes
    app_hash: bytes
    last_block_hash: bytes
    txs: list[TxRecord]
    events: list[Event]
    proposer: bytes


# A pending tx: the signed bytes plus the handler that applies it when its block commits.
Handler = Callable[[], ExecResult]


@dataclass
class PendingTx:
    signed: SignedTx
    handler: Handler


class ChainState:
    def __init__(self, scenario: Scenario, initial_height: int = 1) -> None:
        self.scenario = scenario
        # A devnet restarted beside a kept Temporal history continues above its old heights, as a real
        # chain would, so height-keyed workflow ids never repeat.
        self._base_height = max(initial_height, 1) - 1
        self.chain_id = scenario.chain_id
        self.prefix = scenario.bech32_prefix
        self.validators: dict[str, Validator] = {}
        self._ordered: list[Validator] = []  # staking store order
        self._ordered_keys: list[bytes] = []
        self._by_consensus: dict[bytes, Validator] = {}
        self.consumers: dict[str, Consumer] = {}
        self._ordered_consumers: list[Consumer] = []
        self.blocks: list[Block] = []
        self.txs: list[TxRecord] = []
        self.tx_by_hash: dict[bytes, TxRecord] = {}
        self._next_account_number = 0
        self._next_client = 0
        self._app_version = 0
        genesis_ns = now_ns()
        genesis_operators: dict[str, str] = {}
        for spec in scenario.validators:
            v = self.add_validator(
                spec.moniker, spec.published_details(), spec.tokens, spec.status, genesis_ns
            )
            v.jailed = spec.jailed
            # A genesis validator entered through its gentx, which spent its account's sequence 0: its
            # first tx is signed with sequence 1 (`tx.acc_seq` ".../1"), as measured on the real chain.
            v.sequence = 1
            genesis_operators[spec.moniker] = v.operator
        # A consumer always has an owner on the real chain (the account that sent MsgCreateConsumer; measured
        # on interchain-security-pd v7.0.1): genesis consumers are owned by the first validator's account.
        creator = next(iter(self.validators.values())).addr.account if self.validators else ""
        for spec in scenario.consumers:
            consumer = self.add_consumer(
                spec.consumer_id or str(len(self.consumers)),
                spec.chain_id,
                spec.phase,
                owner=creator,
                ns=genesis_ns,
            )
            consumer.opted_in = {genesis_operators[m] for m in spec.opted_in}
        self.commit([], [], genesis_ns)

    # ---- validators --------------------------------------------------------------------------------------

    def add_validator(
        self,
        moniker: str,
        details: str,
        tokens: int,
        status: str,
        ns: int,
        consensus_pubkey: bytes | None = None,
    ) -> Validator:
        validator = self.new_validator(moniker, details, tokens, status, ns, consensus_pubkey)
        self.register_validator(validator)
        return validator

    def new_validator(
        self,
        moniker: str,
        details: str,
        tokens: int,
        status: str,
        ns: int,
        consensus_pubkey: bytes | None = None,
    ) -> Validator:
        """A validator object with its keys and account, not yet in the staking store."""
        keys = derive_keys(self.scenario, moniker, consensus_pubkey)
        validator = Validator(
            keys=keys,
            addr=addresses(keys, self.prefix),
            description=Description(moniker=moniker, details=details),
            status=status,
            tokens=tokens,
            jailed=False,
            account_number=self._next_account_number,
            created_ns=ns,
        )
        self.check_unique(validator)
        self._next_account_number += 1
        return validator

    def check_unique(self, validator: Validator) -> None:
        if validator.operator in self.validators:
            raise ChainError(
                "validator already exist for this operator address; must use new validator operator address"
            )
        if validator.keys.consensus_pubkey in self._by_consensus:
            raise ChainError("validator already exist for this pubkey; must use new validator pubkey")

    def register_validator(self, validator: Validator) -> None:
        self.check_unique(validator)
        self.validators[validator.operator] = validator
        self._by_consensus[validator.keys.consensus_pubkey] = validator
        position = bisect.bisect(self._ordered_keys, validator.store_key)
        self._ordered_keys.insert(position, validator.store_key)
        self._ordered.insert(position, validator)

    def ordered_validators(self) -> list[Validator]:
        return self._ordered

    def validator_index_after(self, store_key: bytes) -> int:
        """Position of the first validator whose store key is >= `store_key` (pagination.key semantics)."""
        return bisect.bisect_left(self._ordered_keys, store_key)

    def by_moniker(self, moniker: str) -> Validator:
        matches = [v for v in self._ordered if v.moniker == moniker]
        if not matches:
            raise ChainError(f"no validator with moniker {moniker!r}")
        if len(matches) > 1:
            raise ChainError(
                f"moniker {moniker!r} is ambiguous ({len(matches)} validators); use the operator address"
            )
        return matches[0]

    def validator(self, ref: str) -> Validator:
        """By operator address (the identity) or, as a devnet convenience, by unique moniker."""
        found = self.validators.get(ref)
        return found if found is not None else self.by_moniker(ref)

    def next_sequence(self, validator: Validator) -> int:
        sequence = validator.sequence
        validator.sequence += 1
        return sequence

    # ---- consumers ---------------------------------------------------------------------------------------

    def add_consumer(self, consumer_id: str, chain_id: str, phase: str, owner: str, ns: int) -> Consumer:
        if consumer_id in self.consumers:
            raise ChainError(f"consumer id {consumer_id} already exists")
        consumer = Consumer(
            consumer_id=consumer_id,
            chain_id=chain_id,
            phase="CONSUMER_PHASE_REGISTERED",
            owner=owner,
            name=chain_id,
            spawn_ns=ns,
        )
        self.consumers[consumer_id] = consumer
        position = bisect.bisect([c.store_key for c in self._ordered_consumers], consumer.store_key)
        self._ordered_consumers.insert(position, consumer)
        self.set_phase(consumer, phase)
        return consumer

    def next_consumer_id(self) -> str:
        return str(max((int(c) for c in self.consumers), default=-1) + 1)

    def ordered_consumers(self) -> list[Consumer]:
        return self._ordered_consumers

    def consumer(self, ref: str) -> Consumer:
        """By consumer id or, as a devnet convenience, by chain id."""
        found = self.consumers.get(ref)
        if found is not None:
            return found
        for consumer in self._ordered_consumers:
            if consumer.chain_id == ref:
                return consumer
        raise ChainError(f"no consumer chain with id or chain id {ref!r}")

    def set_phase(self, consumer: Consumer, phase: str) -> list[Event]:
        """Move a consumer to `phase`; returns the block events that transition emits (launch only)."""
        if phase not in PHASES[1:]:
            raise ChainError(f"unknown consumer phase {phase!r}; one of {', '.join(PHASES[1:])}")
        events: list[Event] = []
        if phase == "CONSUMER_PHASE_LAUNCHED" and not consumer.client_id:
            consumer.client_id = f"07-tendermint-{self._next_client}"
            self._next_client += 1
            events.append(
                Event.of(
                    "consumer_client_created",
                    ("consumer_id", consumer.consumer_id),
                    ("consumer_chain_id", consumer.chain_id),
                    ("client_id", consumer.client_id),
                )
            )
        consumer.phase = phase
        consumer.touch()
        return events

    def active_consumers_of(self, validator: Validator) -> list[Consumer]:
        return [
            c
            for c in self._ordered_consumers
            if validator.operator in c.opted_in and c.phase in ACTIVE_PHASES
        ]

    # ---- blocks ------------------------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self.blocks[-1].height if self.blocks else self._base_height

    @property
    def latest(self) -> Block:
        return self.blocks[-1]

    def block(self, height: int) -> Block | None:
        if self.blocks and self.blocks[0].height <= height <= self.blocks[-1].height:
            return self.blocks[height - self.blocks[0].height]
        return None

    def commit(self, pending: Iterable[PendingTx], block_events: list[Event], ns: int | None = None) -> Block:
        """Run `pending` in order and commit one block holding them."""
        ns = ns if ns is not None else max(now_ns(), (self.blocks[-1].time_ns + 1) if self.blocks else 0)
        height = self.height + 1
        records: list[TxRecord] = []
        for index, item in enumerate(pending):
            result = item.handler()
            result.events = [*ante_events(item.signed), *result.events]
            hash_hex = upper_hex(item.signed.hash)
            events_map: dict[str, list[str]] = {
                "tm.event": ["Tx"],
                "tx.hash": [hash_hex],
                "tx.height": [str(height)],
            }
            flatten(result.events, events_map)
            record = TxRecord(
                signed=item.signed,
                height=height,
                index=index,
                time_ns=ns,
                result=result,
                events_map=events_map,
                event_types=frozenset(k.rpartition(".")[0] for k in events_map),
                hash_hex=hash_hex,
            )
            records.append(record)
        self._app_version += 1
        last_hash = self.blocks[-1].hash if self.blocks else b""
        header = b"|".join(
            [self.chain_id.encode(), str(height).encode(), str(ns).encode(), last_hash]
            + [r.signed.hash for r in records]
        )
        block = Block(
            height=height,
            time_ns=ns,
            hash=hashlib.sha256(header).digest(),
            app_hash=hashlib.sha256(f"app/{self._app_version}".encode()).digest(),
            last_block_hash=last_hash,
            txs=records,
            events=block_events,
            proposer=self._ordered[0].keys.consensus_address if self._ordered else b"\x00" * 20,
        )
        self.blocks.append(block)
        for record in records:
            self.txs.append(record)
            self.tx_by_hash[record.signed.hash] = record
        return block
