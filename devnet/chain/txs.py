"""Real-shaped, really signed transactions and the events SDK 0.50 emits for them (wire-formats §1).

A TxRaw here is what `gaiad tx staking edit-validator` would broadcast: SIGN_MODE_DIRECT over a SignDoc with
the operator's secp256k1 key, zero fee, the account's sequence. Events follow baseapp: ante events first
(`tx{fee,fee_payer}`, `tx{acc_seq}`, `tx{signature}`), then `message{action,sender[,module]}` and the module's
own events, each message-scoped event carrying `msg_index`. A failed message keeps only the ante events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from cosmpy.protos.cosmos.base.abci.v1beta1.abci_pb2 import TxMsgData
from cosmpy.protos.cosmos.base.v1beta1.coin_pb2 import Coin
from cosmpy.protos.cosmos.crypto.ed25519.keys_pb2 import PubKey as Ed25519PubKey
from cosmpy.protos.cosmos.crypto.secp256k1.keys_pb2 import PubKey as Secp256k1PubKey
from cosmpy.protos.cosmos.staking.v1beta1 import staking_pb2, tx_pb2
from cosmpy.protos.cosmos.tx.signing.v1beta1.signing_pb2 import SignMode
from cosmpy.protos.cosmos.tx.v1beta1 import tx_pb2 as txv1
from google.protobuf import any_pb2
from google.protobuf.message import Message

from devnet.chain import ics_protos
from devnet.chain.encoding import b64
from devnet.chain.events import Event
from devnet.chain.keys import ValidatorKeys

DO_NOT_MODIFY = "[do-not-modify]"
GAS_LIMIT = 200_000
EDIT_VALIDATOR = "/cosmos.staking.v1beta1.MsgEditValidator"
CREATE_VALIDATOR = "/cosmos.staking.v1beta1.MsgCreateValidator"
OPT_IN = "/interchain_security.ccv.provider.v1.MsgOptIn"
OPT_OUT = "/interchain_security.ccv.provider.v1.MsgOptOut"
CREATE_CONSUMER = "/interchain_security.ccv.provider.v1.MsgCreateConsumer"


def pack_any(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message, type_url_prefix="/")
    return packed


@dataclass(frozen=True)
class SignedTx:
    raw: bytes
    tx: txv1.Tx
    signer_account: str
    sequence: int
    signature: bytes
    type_url: str

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self.raw).digest()


@dataclass
class ExecResult:
    """What DeliverTx/FinalizeBlock reports for one tx (abci ExecTxResult)."""

    code: int = 0
    codespace: str = ""
    log: str = ""
    data: bytes = b""
    gas_wanted: int = GAS_LIMIT
    gas_used: int = 0
    events: list[Event] = field(default_factory=list)


def sign_tx(
    messages: Sequence[Message],
    keys: ValidatorKeys,
    signer_account: str,
    chain_id: str,
    account_number: int,
    sequence: int,
) -> SignedTx:
    body = txv1.TxBody(messages=[pack_any(m) for m in messages])
    auth_info = txv1.AuthInfo(
        signer_infos=[
            txv1.SignerInfo(
                public_key=pack_any(Secp256k1PubKey(key=keys.operator_pubkey)),
                mode_info=txv1.ModeInfo(single=txv1.ModeInfo.Single(mode=SignMode.SIGN_MODE_DIRECT)),
                sequence=sequence,
            )
        ],
        fee=txv1.Fee(gas_limit=GAS_LIMIT),
    )
    body_bytes = body.SerializeToString()
    auth_bytes = auth_info.SerializeToString()
    sign_doc = txv1.SignDoc(
        body_bytes=body_bytes, auth_info_bytes=auth_bytes, chain_id=chain_id, account_number=account_number
    )
    signature = keys.operator_key.sign(sign_doc.SerializeToString(), deterministic=True, canonicalise=True)
    raw = txv1.TxRaw(body_bytes=body_bytes, auth_info_bytes=auth_bytes, signatures=[signature])
    tx = txv1.Tx(body=body, auth_info=auth_info, signatures=[signature])
    return SignedTx(
        raw=raw.SerializeToString(),
        tx=tx,
        signer_account=signer_account,
        sequence=sequence,
        signature=signature,
        type_url="/" + messages[0].DESCRIPTOR.full_name,
    )


# ---- messages -------------------------------------------------------------------------------------------


def edit_validator_msg(
    operator: str,
    *,
    moniker: str | None,
    identity: str | None,
    website: str | None,
    security_contact: str | None,
    details: str | None,
) -> tx_pb2.MsgEditValidator:
    def field_value(value: str | None) -> str:
        return DO_NOT_MODIFY if value is None else value

    return tx_pb2.MsgEditValidator(
        description=staking_pb2.Description(
            moniker=field_value(moniker),
            identity=field_value(identity),
            website=field_value(website),
            security_contact=field_value(security_contact),
            details=field_value(details),
        ),
        validator_address=operator,
    )


def create_validator_msg(
    operator: str, consensus_pubkey: bytes, moniker: str, details: str, tokens: int, denom: str
) -> tx_pb2.MsgCreateValidator:
    return tx_pb2.MsgCreateValidator(
        description=staking_pb2.Description(moniker=moniker, details=details),
        commission=staking_pb2.CommissionRates(
            rate="100000000000000000", max_rate="200000000000000000", max_change_rate="10000000000000000"
        ),
        min_self_delegation="1",
        validator_address=operator,
        pubkey=pack_any(Ed25519PubKey(key=consensus_pubkey)),
        value=Coin(denom=denom, amount=str(tokens)),
    )


def opt_in_msg(operator: str, signer: str, consumer_id: str) -> Message:
    return ics_protos.MsgOptIn(provider_addr=operator, signer=signer, consumer_id=consumer_id)


def opt_out_msg(operator: str, signer: str, consumer_id: str) -> Message:
    return ics_protos.MsgOptOut(provider_addr=operator, signer=signer, consumer_id=consumer_id)


def create_consumer_msg(submitter: str, chain_id: str, name: str, description: str, metadata: str) -> Message:
    return ics_protos.MsgCreateConsumer(
        submitter=submitter,
        chain_id=chain_id,
        metadata=ics_protos.ConsumerMetadata(name=name, description=description, metadata=metadata),
    )


# ---- events ---------------------------------------------------------------------------------------------


def ante_events(signed: SignedTx) -> list[Event]:
    """Zero-fee ante events, in the order a real 0.50 chain emits them."""
    return [
        Event.of("tx", ("fee", ""), ("fee_payer", signed.signer_account)),
        Event.of("tx", ("acc_seq", f"{signed.signer_account}/{signed.sequence}")),
        Event.of("tx", ("signature", b64(signed.signature))),
    ]


def message_events(signed: SignedTx, module_events: Sequence[Event]) -> list[Event]:
    """baseapp createEvents + msg_index (single-message txs, so msg_index is always 0)."""
    message = Event.of("message", ("action", signed.type_url), ("sender", signed.signer_account))
    has_module = any(a.key == "module" for e in module_events for a in e.attributes)
    if not has_module and signed.type_url.startswith("/cosmos"):
        message = message.with_attribute("module", signed.type_url.split(".")[1])
    return [e.with_attribute("msg_index", "0") for e in (message, *module_events)]


def msg_response_data(type_url: str, response: Message | None = None) -> bytes:
    """TxMsgData carrying the message's `…Response`, the `data` of a successful tx."""
    packed = any_pb2.Any(
        type_url=f"{type_url}Response", value=response.SerializeToString() if response else b""
    )
    return TxMsgData(msg_responses=[packed]).SerializeToString()


def gas_used_for(signed: SignedTx) -> int:
    # Deterministic and plausible (edit-validator costs ~50-60k gas on a real chain).
    return 48_000 + 10 * len(signed.raw)
