"""CometBFT 0.38 JSON shapes (cmtjson): blocks, headers, tx results, event payloads (wire-formats §0, §1).

Two renderings of ExecTxResult exist on a real node and both are reproduced: jsonpb with EmitDefaults for
HTTP (`/tx_search`, `/tx`, `/block_results`: every field, `"data":null` when empty) and cmtjson with
omitempty inside websocket events (success omits code/log/info/codespace). Rendered fragments are cached
on the tx record: a tx never changes once committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from devnet.chain.encoding import b64, dumps, rfc3339_nano, upper_hex
from devnet.chain.events import events_jsonpb, flatten
from devnet.chain.state import Block, TxRecord
from devnet.chain.txs import ExecResult

BLOCK_PROTOCOL = "11"
P2P_PROTOCOL = "8"
COMETBFT_VERSION = "0.38.17"
EMPTY_HASH = hashlib.sha256(b"").digest()


def exec_result_jsonpb(result: ExecResult) -> dict[str, Any]:
    return {
        "code": result.code,
        "data": b64(result.data) if result.data else None,
        "log": result.log,
        "info": "",
        "gas_wanted": str(result.gas_wanted),
        "gas_used": str(result.gas_used),
        "events": events_jsonpb(result.events),
        "codespace": result.codespace,
    }


def exec_result_omitempty(result: ExecResult) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if result.code:
        out["code"] = result.code
    if result.data:
        out["data"] = b64(result.data)
    if result.log:
        out["log"] = result.log
    if result.gas_wanted:
        out["gas_wanted"] = str(result.gas_wanted)
    if result.gas_used:
        out["gas_used"] = str(result.gas_used)
    if result.events:
        out["events"] = events_jsonpb(result.events)
    if result.codespace:
        out["codespace"] = result.codespace
    return out


def tx_search_entry(record: TxRecord) -> str:
    """One element of `/tx_search` `txs` (ResultTx without proof): index always printed."""
    cached = record.cache.get("rpc")
    if cached is None:
        cached = dumps(
            {
                "hash": record.hash_hex,
                "height": str(record.height),
                "index": record.index,
                "tx_result": exec_result_jsonpb(record.result),
                "tx": b64(record.raw),
            }
        )
        record.cache["rpc"] = cached
    return cached


def ws_tx_payload(record: TxRecord) -> str:
    """`"data":…,"events":…` of a websocket Tx notification (shared by every subscriber).

    Settled against a real 0.38 node (interchain-security-pd v7.0.1, tests/real/test_ws_fidelity.py; the
    reference notes had it as [D], from a 0.34 capture): `TxResult` omits `index` when 0 and, on success,
    `result` holds only `data`, `gas_wanted`, `gas_used` and `events` (attributes keep `index`); with zero
    fees the ante events are exactly tx{fee:"",fee_payer}, tx{acc_seq}, tx{signature} ([U] before), and
    `edit_validator.commission_rate` is Commission.String(), gogoproto text with a trailing space.
    """
    cached = record.cache.get("ws")
    if cached is None:
        tx_result: dict[str, Any] = {"height": str(record.height)}
        if record.index:
            tx_result["index"] = record.index
        tx_result["tx"] = b64(record.raw)
        tx_result["result"] = exec_result_omitempty(record.result)
        data = {"type": "tendermint/event/Tx", "value": {"TxResult": tx_result}}
        cached = f'{dumps(data)},"events":{dumps(record.events_map)}'
        record.cache["ws"] = cached
    return cached


def _block_id(block_hash: bytes) -> dict[str, Any]:
    if not block_hash:
        return {"hash": "", "parts": {"total": 0, "hash": ""}}
    return {
        "hash": upper_hex(block_hash),
        "parts": {"total": 1, "hash": upper_hex(hashlib.sha256(block_hash).digest())},
    }


def header(block: Block, chain_id: str, validators_hash: bytes) -> dict[str, Any]:
    data_hash = (
        hashlib.sha256(b"".join(t.signed.hash for t in block.txs)).digest() if block.txs else EMPTY_HASH
    )
    return {
        "version": {"block": BLOCK_PROTOCOL},  # app 0 is omitted (omitempty; real /block, measured)
        "chain_id": chain_id,
        "height": str(block.height),
        "time": rfc3339_nano(block.time_ns),
        "last_block_id": _block_id(block.last_block_hash),
        "last_commit_hash": upper_hex(hashlib.sha256(b"commit" + block.last_block_hash).digest()),
        "data_hash": upper_hex(data_hash),
        "validators_hash": upper_hex(validators_hash),
        "next_validators_hash": upper_hex(validators_hash),
        "consensus_hash": upper_hex(hashlib.sha256(b"consensus-params").digest()),
        "app_hash": upper_hex(block.app_hash),
        "last_results_hash": upper_hex(EMPTY_HASH),
        "evidence_hash": upper_hex(EMPTY_HASH),
        "proposer_address": upper_hex(block.proposer),
    }


ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, what an absent CommitSig carries


def block_json(
    block: Block, chain_id: str, validators_hash: bytes, validator_set: Sequence[bytes] = ()
) -> dict[str, Any]:
    """`/block` result: block_id plus the block; the last commit lists EVERY validator of `validator_set`
    (consensus addresses in set order), the proposer signing and the others absent.

    Settled against the real chain (interchain-security-pd v7.0.1 / CometBFT 0.38.17, one node signing for
    four validators, tests/real/test_chain_fidelity.py): an absent validator is still listed, as
    `{"block_id_flag": 1, "validator_address": "", "timestamp": "0001-01-01T00:00:00Z", "signature": null}`.
    """
    signature = hashlib.sha512(block.last_block_hash + block.proposer).digest()
    signed = {
        "block_id_flag": 2,
        "validator_address": upper_hex(block.proposer),
        "timestamp": rfc3339_nano(block.time_ns),
        "signature": b64(signature),
    }
    absent = {"block_id_flag": 1, "validator_address": "", "timestamp": ZERO_TIME, "signature": None}
    members = list(validator_set) or [block.proposer]
    last_commit = {
        "height": str(max(block.height - 1, 0)),
        "round": 0,
        "block_id": _block_id(block.last_block_hash),
        "signatures": [signed if address == block.proposer else dict(absent) for address in members]
        if block.height > 1
        else [],
    }
    return {
        "block_id": _block_id(block.hash),
        "block": {
            "header": header(block, chain_id, validators_hash),
            "data": {"txs": [b64(t.raw) for t in block.txs]},
            "evidence": {"evidence": []},
            "last_commit": last_commit,
        },
    }


def block_results(block: Block) -> dict[str, Any]:
    return {
        "height": str(block.height),
        "txs_results": [exec_result_jsonpb(t.result) for t in block.txs] or None,
        "finalize_block_events": events_jsonpb(block.events),
        "validator_updates": None,
        "consensus_param_updates": None,
        "app_hash": b64(block.app_hash),
    }


def block_events_map(kind: str, block: Block) -> dict[str, list[str]]:
    events: dict[str, list[str]] = {"tm.event": [kind], "block.height": [str(block.height)]}
    return flatten(block.events, events)


def new_block_payload(
    block: Block, chain_id: str, validators_hash: bytes, validator_set: Sequence[bytes] = ()
) -> str:
    rendered = block_json(block, chain_id, validators_hash, validator_set)
    value = {
        "block": rendered["block"],
        "block_id": rendered["block_id"],
        "result_finalize_block": {
            **({"events": events_jsonpb(block.events)} if block.events else {}),
            **({"tx_results": [exec_result_omitempty(t.result) for t in block.txs]} if block.txs else {}),
            "app_hash": b64(block.app_hash),
        },
    }
    data = {"type": "tendermint/event/NewBlock", "value": value}
    return f'{dumps(data)},"events":{dumps(block_events_map("NewBlock", block))}'


def new_block_header_payload(block: Block, chain_id: str, validators_hash: bytes) -> str:
    data = {
        "type": "tendermint/event/NewBlockHeader",
        "value": {"header": header(block, chain_id, validators_hash)},
    }
    return f'{dumps(data)},"events":{dumps(block_events_map("NewBlockHeader", block))}'


def new_block_events_payload(block: Block) -> str:
    value = {
        "height": str(block.height),
        "events": events_jsonpb(block.events),
        "num_txs": str(len(block.txs)),
    }
    data = {"type": "tendermint/event/NewBlockEvents", "value": value}
    return f'{dumps(data)},"events":{dumps(block_events_map("NewBlockEvents", block))}'
