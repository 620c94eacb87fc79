"""Message handlers: CheckTx-style validation now (a refused tx never reaches a block, like a real node's
mempool), then a signed `PendingTx` whose handler applies the message when its block commits."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from devnet.chain import txs
from devnet.chain.encoding import dec18
from devnet.chain.events import Event
from devnet.chain.keys import module_account
from devnet.chain.state import ACTIVE_PHASES, DENOM, ChainError, ChainState, Consumer, PendingTx, Validator
from devnet.chain.txs import ExecResult, SignedTx

# Description limits of x/staking (bytes, as Go's len counts them).
LIMITS = {"moniker": 70, "identity": 3000, "website": 140, "security_contact": 140, "details": 280}


@dataclass(frozen=True)
class Failure:
    """How a tx should fail when the devnet asks for a failed tx (`fail: true`)."""

    keep_message_events: bool = False


OUT_OF_GAS = (11, "sdk")


def check_description(**fields: str | None) -> None:
    """Description.EnsureLength plus a non-blank moniker, as ValidateBasic checks before the mempool."""
    for name, value in fields.items():
        if value is None or value == txs.DO_NOT_MODIFY:
            continue
        size = len(value.encode())
        if size > LIMITS[name]:
            raise ChainError(f"invalid {name} length; got: {size}, max: {LIMITS[name]}")
    moniker = fields.get("moniker")
    if moniker is not None and not moniker.strip():
        raise ChainError("empty description: moniker cannot be blank")


def _sign(state: ChainState, validator: Validator, message: Message) -> SignedTx:
    return txs.sign_tx(
        [message],
        validator.keys,
        validator.addr.account,
        state.chain_id,
        validator.account_number,
        state.next_sequence(validator),
    )


def _failed(signed: SignedTx, module_events: list[Event], failure: Failure, what: str) -> ExecResult:
    gas_used = txs.GAS_LIMIT + 311
    events = txs.message_events(signed, module_events) if failure.keep_message_events else []
    return ExecResult(
        code=OUT_OF_GAS[0],
        codespace=OUT_OF_GAS[1],
        log=f"out of gas in location: {what}; gasWanted: {txs.GAS_LIMIT}, gasUsed: {gas_used}: out of gas",
        gas_used=gas_used,
        events=events,
    )


def _commission_string(validator: Validator) -> str:
    """Commission.String(): gogoproto's compact text format in SDK 0.50 (measured on interchain-security-pd
    v7.0.1: `commission_rates:<rate:"100000000000000000" ...> update_time:<seconds:... nanos:... > `, the
    LegacyDecs as their raw integer with 18 implied digits). Clients must treat it as opaque."""
    seconds, nanos = divmod(validator.created_ns, 1_000_000_000)
    time_text = f"seconds:{seconds} " + (f"nanos:{nanos} " if nanos else "")
    rates = " ".join(
        f'{name}:"{_raw_dec(value)}"'
        for name, value in (("rate", "0.1"), ("max_rate", "0.2"), ("max_change_rate", "0.01"))
    )
    return f"commission_rates:<{rates} > update_time:<{time_text}> "


def _raw_dec(text: str) -> str:
    """A LegacyDec's integer representation (value * 10^18) without leading zeros."""
    return str(int(dec18(text).replace(".", "")))


def edit_validator(
    state: ChainState,
    validator: Validator,
    *,
    moniker: str | None = None,
    identity: str | None = None,
    website: str | None = None,
    security_contact: str | None = None,
    details: str | None = None,
    fail: Failure | None = None,
) -> PendingTx:
    fields = {
        "moniker": moniker,
        "identity": identity,
        "website": website,
        "security_contact": security_contact,
        "details": details,
    }
    check_description(**fields)
    signed = _sign(state, validator, txs.edit_validator_msg(validator.operator, **fields))

    def apply() -> ExecResult:
        module_events = [
            Event.of(
                "edit_validator",
                ("commission_rate", _commission_string(validator)),
                ("min_self_delegation", "1"),
            )
        ]
        if fail is not None:
            return _failed(signed, module_events, fail, "WriteFlat")
        for name, value in fields.items():
            if value is not None and value != txs.DO_NOT_MODIFY:
                setattr(validator.description, name, value)
        validator.touch()
        return ExecResult(
            data=txs.msg_response_data(txs.EDIT_VALIDATOR),
            gas_used=txs.gas_used_for(signed),
            events=txs.message_events(signed, module_events),
        )

    return PendingTx(signed, apply)


def create_validator(
    state: ChainState,
    validator: Validator,
    *,
    fail: Failure | None = None,
    status: str = "BOND_STATUS_BONDED",
) -> PendingTx:
    """`validator` comes from `state.new_validator`; it enters the staking store when the tx commits."""
    message = txs.create_validator_msg(
        validator.operator,
        validator.keys.consensus_pubkey,
        validator.moniker,
        validator.description.details,
        validator.tokens,
        DENOM,
    )
    signed = _sign(state, validator, message)
    amount = f"{validator.tokens}{DENOM}"
    pool = module_account("bonded_tokens_pool", state.prefix)

    def apply() -> ExecResult:
        module_events = [
            Event.of("coin_spent", ("spender", validator.addr.account), ("amount", amount)),
            Event.of("coin_received", ("receiver", pool), ("amount", amount)),
            Event.of("transfer", ("recipient", pool), ("sender", validator.addr.account), ("amount", amount)),
            Event.of("create_validator", ("validator", validator.operator), ("amount", amount)),
        ]
        duplicate = validator.operator in state.validators  # a twin can race in while blocks are paused
        if fail is not None or duplicate:
            return _failed(signed, module_events, fail or Failure(), "WriteFlat")
        validator.status = status
        state.register_validator(validator)
        return ExecResult(
            data=txs.msg_response_data(txs.CREATE_VALIDATOR),
            gas_used=txs.gas_used_for(signed) + 60_000,
            events=txs.message_events(signed, module_events),
        )

    return PendingTx(signed, apply)


def _ics_events(kind: str, consumer: Consumer, validator: Validator, signer: str) -> list[Event]:
    return [
        Event.of(
            kind,
            ("consumer_id", consumer.consumer_id),
            ("consumer_chain_id", consumer.chain_id),
            ("provider_validator_address", validator.operator),
            ("consumer_consensus_pub_key", ""),
            ("submitter_address", signer),
        ),
        # ICS emits its own message{module}, which makes baseapp skip adding one.
        Event.of("message", ("module", "provider"), ("sender", signer)),
    ]


def opt_in(
    state: ChainState, validator: Validator, consumer: Consumer, *, fail: Failure | None = None
) -> PendingTx:
    if consumer.phase not in ACTIVE_PHASES:
        raise ChainError(
            f"cannot opt in to a consumer chain that is not in the registered, initialized, or launched phase: "
            f"{consumer.consumer_id}"
        )
    signer = validator.addr.account
    signed = _sign(state, validator, txs.opt_in_msg(validator.operator, signer, consumer.consumer_id))

    def apply() -> ExecResult:
        module_events = _ics_events("opt_in", consumer, validator, signer)
        if fail is not None:
            return _failed(signed, module_events, fail, "ReadFlat")
        consumer.opted_in.add(validator.operator)
        return ExecResult(
            data=txs.msg_response_data(txs.OPT_IN),
            gas_used=txs.gas_used_for(signed),
            events=txs.message_events(signed, module_events),
        )

    return PendingTx(signed, apply)


def opt_out(
    state: ChainState, validator: Validator, consumer: Consumer, *, fail: Failure | None = None
) -> PendingTx:
    if consumer.phase not in ACTIVE_PHASES:
        raise ChainError(f"cannot opt out of a consumer chain that is not active: {consumer.consumer_id}")
    if validator.operator not in consumer.opted_in:
        raise ChainError(f"validator {validator.operator} is not opted in to consumer {consumer.consumer_id}")
    signer = validator.addr.account
    signed = _sign(state, validator, txs.opt_out_msg(validator.operator, signer, consumer.consumer_id))

    def apply() -> ExecResult:
        module_events = _ics_events("opt_out", consumer, validator, signer)
        if fail is not None:
            return _failed(signed, module_events, fail, "ReadFlat")
        consumer.opted_in.discard(validator.operator)
        return ExecResult(
            data=txs.msg_response_data(txs.OPT_OUT),
            gas_used=txs.gas_used_for(signed),
            events=txs.message_events(signed, module_events),
        )

    return PendingTx(signed, apply)


def create_consumer(
    state: ChainState,
    submitter: Validator,
    *,
    consumer_id: str,
    chain_id: str,
    name: str,
    description: str = "",
    metadata: str = "",
    fail: Failure | None = None,
) -> PendingTx:
    """MsgCreateConsumer: the consumer appears in phase REGISTERED when the tx commits."""
    if consumer_id in state.consumers:
        raise ChainError(f"consumer id {consumer_id} already exists")
    signer = submitter.addr.account
    signed = _sign(state, submitter, txs.create_consumer_msg(signer, chain_id, name, description, metadata))

    def apply() -> ExecResult:
        module_events = [
            Event.of(
                "create_consumer",
                ("consumer_id", consumer_id),
                ("consumer_chain_id", chain_id),
                ("consumer_name", name),
                ("submitter_address", signer),
                ("consumer_owner", signer),
            ),
            Event.of("message", ("module", "provider"), ("sender", signer)),
        ]
        if (
            fail is not None or consumer_id in state.consumers
        ):  # a duplicate can race in while blocks are paused
            return _failed(signed, module_events, fail or Failure(), "WriteFlat")
        consumer = state.add_consumer(
            consumer_id, chain_id, "CONSUMER_PHASE_REGISTERED", signer, state.latest.time_ns
        )
        consumer.name, consumer.description, consumer.metadata = name, description, metadata
        return ExecResult(
            data=txs.msg_response_data(txs.CREATE_CONSUMER),
            gas_used=txs.gas_used_for(signed),
            events=txs.message_events(signed, module_events),
        )

    return PendingTx(signed, apply)
