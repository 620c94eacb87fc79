"""Gateway JSON (gogo JSONPb, EmitDefaults, OrigName) of staking validators, txs and ICS provider types.

Field order is proto order. Validators and consumers cache their rendering until they change, so paging
through hundreds of validators is string joins, not re-encoding.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from devnet.chain.encoding import b64, dec18, dumps, rfc3339_nano, rfc3339_seconds, upper_hex
from devnet.chain.events import events_jsonpb
from devnet.chain.state import ChainState, Consumer, TxRecord, Validator

ZERO_TIME = "1970-01-01T00:00:00Z"
COMMISSION_RATES = {"rate": dec18("0.1"), "max_rate": dec18("0.2"), "max_change_rate": dec18("0.01")}


def validator_json(v: Validator) -> str:
    if v.rest_json is None:
        d = v.description
        v.rest_json = dumps(
            {
                "operator_address": v.operator,
                "consensus_pubkey": {
                    "@type": "/cosmos.crypto.ed25519.PubKey",
                    "key": b64(v.keys.consensus_pubkey),
                },
                "jailed": v.jailed,
                "status": v.status,
                "tokens": str(v.tokens),
                "delegator_shares": dec18(v.tokens),
                "description": {
                    "moniker": d.moniker,
                    "identity": d.identity,
                    "website": d.website,
                    "security_contact": d.security_contact,
                    "details": d.details,
                },
                "unbonding_height": "0",
                "unbonding_time": ZERO_TIME,
                "commission": {
                    "commission_rates": COMMISSION_RATES,
                    "update_time": rfc3339_nano(v.created_ns),
                },
                "min_self_delegation": "1",
                "unbonding_on_hold_ref_count": "0",
                "unbonding_ids": [],
            }
        )
    return v.rest_json


# ---- txs ------------------------------------------------------------------------------------------------


def _legacy_dec(raw: str) -> str:
    """A LegacyDec's proto form is its 18-decimal integer; JSON shows the decimal."""
    if not raw:
        return raw
    digits = raw.rjust(19, "0")
    return f"{int(digits[:-18])}.{digits[-18:]}"


def _fix_message(message: dict[str, Any]) -> None:
    kind = message.get("@type")
    if kind == "/cosmos.staking.v1beta1.MsgEditValidator":
        # Nullable customtypes: gogo prints an unset LegacyDec / Int as null.
        for name in ("commission_rate", "min_self_delegation"):
            if not message.get(name):
                message[name] = None
    elif kind == "/cosmos.staking.v1beta1.MsgCreateValidator":
        rates = message.get("commission", {})
        for name in ("rate", "max_rate", "max_change_rate"):
            if name in rates:
                rates[name] = _legacy_dec(rates[name])


def tx_dict(record: TxRecord) -> dict[str, Any]:
    rendered = json_format.MessageToDict(
        record.tx, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    body = rendered["body"]
    for newer in ("unordered", "timeout_timestamp"):  # SDK 0.53 fields a 0.50 gateway does not print
        body.pop(newer, None)
    for message in body["messages"]:
        _fix_message(message)
    rendered["auth_info"].setdefault("tip", None)
    return rendered


def tx_json(record: TxRecord) -> str:
    cached = record.cache.get("rest_tx")
    if cached is None:
        cached = dumps(tx_dict(record))
        record.cache["rest_tx"] = cached
    return cached


def tx_response_json(record: TxRecord) -> str:
    cached = record.cache.get("rest_response")
    if cached is None:
        result = record.result
        response = {
            "height": str(record.height),
            "txhash": record.hash_hex,
            "codespace": result.codespace,
            "code": result.code,
            "data": upper_hex(result.data),
            "raw_log": result.log,
            "logs": [],
            "info": "",
            "gas_wanted": str(result.gas_wanted),
            "gas_used": str(result.gas_used),
            "tx": {"@type": "/cosmos.tx.v1beta1.Tx", **tx_dict(record)},
            "timestamp": rfc3339_seconds(record.time_ns),
            "events": events_jsonpb(result.events),
        }
        cached = dumps(response)
        record.cache["rest_response"] = cached
    return cached


# ---- ICS provider ----------------------------------------------------------------------------------------

INFRACTION_PARAMETERS = {
    "double_sign": {
        "slash_fraction": dec18("0.05"),
        "jail_duration": "9223372036.854775807s",
        "tombstone": True,
    },
    "downtime": {"slash_fraction": dec18("0"), "jail_duration": "600s", "tombstone": False},
}


def _metadata(c: Consumer) -> dict[str, str]:
    return {"name": c.name, "description": c.description, "metadata": c.metadata}


def chain_json(c: Consumer) -> str:
    """One element of `consumer_chains/{phase}` (the `Chain` message)."""
    if c.rest_json is None:
        c.rest_json = dumps(
            {
                "chain_id": c.chain_id,
                "client_id": c.client_id,
                "top_N": 0,
                "min_power_in_top_N": "-1",
                "validators_power_cap": 0,
                "validator_set_cap": 0,
                "allowlist": [],
                "denylist": [],
                "phase": c.phase,
                "metadata": _metadata(c),
                "min_stake": "0",
                "allow_inactive_vals": False,
                "consumer_id": c.consumer_id,
                "allowlisted_reward_denoms": {"denoms": []},
                "prioritylist": [],
                "infraction_parameters": INFRACTION_PARAMETERS,
            }
        )
    return c.rest_json


def consumer_chain_json(c: Consumer) -> str:
    """QueryConsumerChainResponse."""
    return dumps(
        {
            "consumer_id": c.consumer_id,
            "chain_id": c.chain_id,
            "owner_address": c.owner,
            "phase": c.phase,
            "metadata": _metadata(c),
            "init_params": {
                "initial_height": {"revision_number": "1", "revision_height": "1"},
                # bytes fields left empty at creation render as null (ICS v7.0.1, measured), not "".
                "genesis_hash": None,
                "binary_hash": None,
                "spawn_time": rfc3339_nano(c.spawn_ns),
                "unbonding_period": "1728000s",
                "ccv_timeout_period": "2419200s",
                "transfer_timeout_period": "3600s",
                "consumer_redistribution_fraction": "0.75",
                "blocks_per_distribution_transmission": "1000",
                "historical_entries": "10000",
                "distribution_transmission_channel": "",
                "connection_id": "",
            },
            "power_shaping_params": {
                "top_N": 0,
                "validators_power_cap": 0,
                "validator_set_cap": 0,
                "allowlist": [],
                "denylist": [],
                "min_stake": "0",
                "allow_inactive_vals": False,
                "prioritylist": [],
            },
            "infraction_parameters": INFRACTION_PARAMETERS,
            "client_id": c.client_id,
        }
    )


def consumer_validator_json(v: Validator) -> dict[str, Any]:
    """QueryConsumerValidatorsValidator; with no key assignment the consumer key is the provider key."""
    d = v.description
    return {
        "provider_address": v.addr.valcons,
        "consumer_key": {"ed25519": b64(v.keys.consensus_pubkey)},
        # Deprecated in ICS v7 and left unset: the real chain answers "0" for both (v7.0.1, measured).
        "power": "0",
        "rate": dec18("0"),
        "consumer_power": str(v.power),
        "consumer_commission_rate": dec18("0.1"),
        "provider_commission_rate": dec18("0.1"),
        "description": {
            "moniker": d.moniker,
            "identity": d.identity,
            "website": d.website,
            "security_contact": d.security_contact,
            "details": d.details,
        },
        "provider_operator_address": v.operator,
        "jailed": v.jailed,
        "status": v.status,
        "provider_tokens": str(v.tokens),
        "provider_power": str(v.power),
        "validates_current_epoch": v.status == "BOND_STATUS_BONDED",
    }


def opted_in_validators(chain: ChainState, c: Consumer) -> list[Validator]:
    """Store order of the opted-in set: provider consensus address bytes."""
    return sorted((chain.validators[o] for o in c.opted_in), key=lambda v: v.keys.consensus_address)


# ---- cosmos.base.tendermint.v1beta1 (what cosmpy's query_height / query_chain_id read) ---------------------

_HEX_FIELDS = (
    "last_commit_hash", "data_hash", "validators_hash", "next_validators_hash", "consensus_hash", "app_hash",
    "last_results_hash", "evidence_hash", "proposer_address",
)  # fmt: skip


def _b64_of_hex(text: str) -> str:
    return b64(bytes.fromhex(text)) if text else ""


def _block_id(cmt_block_id: dict[str, Any]) -> dict[str, Any]:
    parts = cmt_block_id["parts"]
    return {
        "hash": _b64_of_hex(cmt_block_id["hash"]),
        "part_set_header": {"total": parts["total"], "hash": _b64_of_hex(parts["hash"])},
    }


BLOCK_ID_FLAGS = {
    0: "BLOCK_ID_FLAG_UNKNOWN",
    1: "BLOCK_ID_FLAG_ABSENT",
    2: "BLOCK_ID_FLAG_COMMIT",
    3: "BLOCK_ID_FLAG_NIL",
}


def block_response(cmt_block: dict[str, Any], proposer_valcons: str) -> str:
    """GetLatestBlockResponse / GetBlockByHeightResponse from CometBFT's `/block` result.

    Same data, gateway encoding: hashes are base64 instead of upper-case hex, enums are names, and
    `sdk_block` repeats the block with the proposer as a bech32 consensus address.
    """
    cmt = cmt_block["block"]
    header = dict(cmt["header"])
    for name in _HEX_FIELDS:
        header[name] = _b64_of_hex(header[name])
    header["last_block_id"] = _block_id(header["last_block_id"])
    # The gateway renders the proto's zero app version, which CometBFT's JSON omits.
    header["version"] = {"block": header["version"]["block"], "app": header["version"].get("app", "0")}
    last_commit = {
        "height": cmt["last_commit"]["height"],
        "round": cmt["last_commit"]["round"],
        "block_id": _block_id(cmt["last_commit"]["block_id"]),
        "signatures": [
            {
                "block_id_flag": BLOCK_ID_FLAGS[s["block_id_flag"]],
                # an absent signer's empty address is empty bytes, which the gateway renders as null
                "validator_address": _b64_of_hex(s["validator_address"]) if s["validator_address"] else None,
                "timestamp": s["timestamp"],
                "signature": s["signature"],
            }
            for s in cmt["last_commit"]["signatures"]
        ],
    }
    block = {"header": header, "data": cmt["data"], "evidence": cmt["evidence"], "last_commit": last_commit}
    sdk_block = {**block, "header": {**header, "proposer_address": proposer_valcons}}
    return dumps({"block_id": _block_id(cmt_block["block_id"]), "block": block, "sdk_block": sdk_block})


def node_info_response(status: dict[str, Any]) -> str:
    """GetNodeInfoResponse from CometBFT's `/status` node_info."""
    info = status["node_info"]
    return dumps(
        {
            "default_node_info": {
                "protocol_version": info["protocol_version"],
                "default_node_id": info["id"],
                "listen_addr": info["listen_addr"],
                "network": info["network"],
                "version": info["version"],
                "channels": b64(bytes.fromhex(info["channels"])),
                "moniker": info["moniker"],
                "other": info["other"],
            },
            "application_version": {
                "name": "gaia",
                "app_name": "gaiad",
                "version": "v21.0.0",
                "git_commit": "",
                "build_tags": "netgo,ledger",
                "go_version": "go version go1.22.11 linux/amd64",
                "build_deps": [],
                "cosmos_sdk_version": "v0.50.11",
            },
        }
    )
