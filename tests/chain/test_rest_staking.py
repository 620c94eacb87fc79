"""Cosmos REST (staking, txs) through cosmpy, the official Python client, and raw gateway JSON."""

from __future__ import annotations

import base64
import json

import pytest
from cosmpy.aerial.client import LedgerClient, NetworkConfig
from cosmpy.protos.cosmos.base.query.v1beta1.pagination_pb2 import PageRequest
from cosmpy.protos.cosmos.base.tendermint.v1beta1.query_pb2 import GetNodeInfoRequest
from cosmpy.protos.cosmos.crypto.ed25519.keys_pb2 import PubKey as Ed25519PubKey
from cosmpy.protos.cosmos.staking.v1beta1.query_pb2 import QueryValidatorRequest, QueryValidatorsRequest
from cosmpy.protos.cosmos.staking.v1beta1.tx_pb2 import MsgEditValidator
from cosmpy.protos.cosmos.tx.v1beta1.service_pb2 import GetTxsEventRequest, OrderBy

from core.addresses import decode, valcons_address, valoper_address, valoper_to_account

from .conftest import Devnet

EDIT_ACTION = "message.action='/cosmos.staking.v1beta1.MsgEditValidator'"
VECTOR_KEY = "9tK9IT+FPdf2qm+5c2qaxi10sWP+3erWTKgftn2PaQM="
VECTOR_VALCONS = "cosmosvalcons1qqqqrezrl53hujmpdch6d805ac75n220ku09rl"


def ledger(devnet: Devnet) -> LedgerClient:
    config = NetworkConfig(
        chain_id="provider",
        fee_minimum_gas_price=0,
        fee_denomination="stake",
        staking_denomination="stake",
        url=f"rest+{devnet.rest}",
    )
    return LedgerClient(config)


def test_cosmpy_pages_through_all_validators_with_next_key(big_devnet: Devnet) -> None:
    client = ledger(big_devnet)
    seen = []
    key = b""
    pages = 0
    while True:
        response = client.staking.Validators(
            QueryValidatorsRequest(pagination=PageRequest(limit=100, key=key))
        )
        pages += 1
        seen.extend(response.validators)
        key = response.pagination.next_key
        if not key:
            break
    assert pages == 3
    assert len(seen) == 300
    operators = [v.operator_address for v in seen]
    assert len(set(operators)) == 300
    # Store order: operator address bytes (bech32's alphabet does not sort like the bytes).
    assert operators == sorted(operators, key=lambda a: decode(a, "cosmosvaloper"))
    state = {v["operator_address"]: v for v in big_devnet.state()["validators"]}
    for validator in seen:
        index = int(validator.description.moniker.removeprefix("val-"))
        published = f"{big_devnet.net}.{index + 1}" if index < 4 else f"203.0.113.{index % 250 + 1}"
        assert validator.description.details == f"p2p={published}"
        pubkey = Ed25519PubKey()
        assert validator.consensus_pubkey.type_url == "/cosmos.crypto.ed25519.PubKey"
        assert validator.consensus_pubkey.Unpack(pubkey) and len(pubkey.key) == 32
        assert valcons_address(pubkey.key) == state[validator.operator_address]["valcons"]


def test_status_filter_and_totals(big_devnet: Devnet) -> None:
    client = ledger(big_devnet)
    bonded = client.staking.Validators(QueryValidatorsRequest(status="BOND_STATUS_BONDED"))
    assert {v.status for v in bonded.validators} == {3}  # BOND_STATUS_BONDED
    # Limit omitted: default 100 and a counted total.
    assert len(bonded.validators) == 100
    assert bonded.pagination.total == 270
    limited = client.staking.Validators(QueryValidatorsRequest(pagination=PageRequest(limit=5)))
    assert limited.pagination.total == 0  # only counted when asked
    counted = client.staking.Validators(
        QueryValidatorsRequest(pagination=PageRequest(limit=5, count_total=True))
    )
    assert counted.pagination.total == 300
    unbonded = big_devnet.rest_get("/cosmos/staking/v1beta1/validators", status="BOND_STATUS_UNBONDED").json()
    assert len(unbonded["validators"]) == 30
    assert unbonded["pagination"] == {"next_key": None, "total": "30"}


def test_offset_pagination_and_reverse(big_devnet: Devnet) -> None:
    path = "/cosmos/staking/v1beta1/validators"
    everything = big_devnet.rest_get(path, **{"pagination.limit": "300"}).json()["validators"]
    window = big_devnet.rest_get(path, **{"pagination.offset": "10", "pagination.limit": "5"}).json()
    assert [v["operator_address"] for v in window["validators"]] == [
        v["operator_address"] for v in everything[10:15]
    ]
    assert window["pagination"]["next_key"] is not None
    reverse = big_devnet.rest_get(path, **{"pagination.reverse": "true", "pagination.limit": "3"}).json()
    assert [v["operator_address"] for v in reverse["validators"]] == [
        v["operator_address"] for v in everything[::-1][:3]
    ]


def test_validator_json_is_gateway_shaped(devnet: Devnet) -> None:
    body = devnet.rest_get("/cosmos/staking/v1beta1/validators").json()
    validator = body["validators"][0]
    assert list(validator) == [
        "operator_address", "consensus_pubkey", "jailed", "status", "tokens", "delegator_shares", "description",
        "unbonding_height", "unbonding_time", "commission", "min_self_delegation", "unbonding_on_hold_ref_count",
        "unbonding_ids",
    ]  # fmt: skip
    assert validator["tokens"] == "100000000"
    assert validator["delegator_shares"] == "100000000.000000000000000000"
    assert validator["unbonding_height"] == "0"
    assert validator["consensus_pubkey"]["@type"] == "/cosmos.crypto.ed25519.PubKey"
    assert set(validator["description"]) == {"moniker", "identity", "website", "security_contact", "details"}
    assert body["pagination"] == {"next_key": None, "total": "4"}


def test_valcons_of_consensus_key_matches_the_address_function(devnet: Devnet) -> None:
    """REST consensus_pubkey -> valcons (core.addresses) is exactly the ICS opted-in address set."""
    validators = devnet.rest_get("/cosmos/staking/v1beta1/validators").json()["validators"]
    by_valcons = {
        valcons_address(base64.b64decode(v["consensus_pubkey"]["key"])): v["description"]["moniker"]
        for v in validators
    }
    opted = devnet.rest_get("/interchain_security/ccv/provider/opted_in_validators/0").json()
    assert sorted(by_valcons[a] for a in opted["validators_provider_addresses"]) == [
        "alice",
        "bob",
        "carol",
        "dave",
    ]
    state_valcons = {v["valcons"] for v in devnet.state()["validators"]}
    assert state_valcons == set(by_valcons)


def test_known_consensus_key_gives_the_cosmoshub_vector(devnet: Devnet) -> None:
    created = devnet.admin(
        "create_validator", {"moniker": "vector", "consensus_pubkey": VECTOR_KEY, "endpoint": devnet.ip(20)}
    )
    devnet.admin("opt_in", {"validator": created["operator_address"], "consumer": "consumer-1"})
    one = devnet.rest_get(f"/cosmos/staking/v1beta1/validators/{created['operator_address']}").json()
    assert one["validator"]["consensus_pubkey"]["key"] == VECTOR_KEY
    opted = devnet.rest_get("/interchain_security/ccv/provider/opted_in_validators/0").json()
    assert VECTOR_VALCONS in opted["validators_provider_addresses"]


def test_single_validator_and_its_errors(devnet: Devnet) -> None:
    client = ledger(devnet)
    operator = devnet.validator("bob")["operator_address"]
    response = client.staking.Validator(QueryValidatorRequest(validator_addr=operator))
    assert response.validator.description.moniker == "bob"
    unknown = valoper_address(b"\x01" * 20)
    not_found = devnet.rest_get(f"/cosmos/staking/v1beta1/validators/{unknown}")
    assert not_found.status_code == 404
    assert not_found.json() == {"code": 5, "message": f"validator {unknown} not found", "details": []}
    garbage = devnet.rest_get("/cosmos/staking/v1beta1/validators/cosmosvaloper1notanaddress")
    assert garbage.status_code == 500
    assert garbage.json()["code"] == 2


def test_bad_status_and_bad_pagination(devnet: Devnet) -> None:
    bad = devnet.rest_get("/cosmos/staking/v1beta1/validators", status="BONDED")
    assert bad.status_code == 400
    assert bad.json() == {"code": 3, "message": "invalid validator status BONDED", "details": []}
    bad_limit = devnet.rest_get("/cosmos/staking/v1beta1/validators", **{"pagination.limit": "ten"})
    assert bad_limit.status_code == 400
    assert bad_limit.json()["message"].startswith("type mismatch, parameter: pagination.limit")
    both = devnet.rest_get(
        "/cosmos/staking/v1beta1/validators", **{"pagination.offset": "1", "pagination.key": "FAAA"}
    )
    assert both.status_code == 500
    assert both.json()["code"] == 13


def test_unknown_path_is_not_implemented(devnet: Devnet) -> None:
    response = devnet.rest_get("/cosmos/bank/v1beta1/balances/cosmos1xyz")
    assert response.status_code == 501
    assert response.json() == {"code": 12, "message": "Not Implemented", "details": []}


def test_tx_search_needs_a_query(devnet: Devnet) -> None:
    response = devnet.rest_get("/cosmos/tx/v1beta1/txs", events=EDIT_ACTION)
    assert response.status_code == 500
    assert response.json() == {"code": 13, "message": "query cannot be empty", "details": []}


def test_cosmpy_tx_search_decodes_edit_validator_txs(devnet: Devnet) -> None:
    heights = [
        devnet.admin("edit_validator", {"validator": "alice", "details": f"p2p={devnet.ip(30 + i)}"})[
            "height"
        ]
        for i in range(3)
    ]
    devnet.admin("opt_in", {"validator": "dave", "consumer": "consumer-2"})
    client = ledger(devnet)
    response = client.txs.GetTxsEvent(
        GetTxsEventRequest(query=EDIT_ACTION, page=1, limit=2, order_by=OrderBy.ORDER_BY_DESC)
    )
    assert response.total == 3
    assert [r.height for r in response.tx_responses] == [heights[2], heights[1]]
    newest = response.tx_responses[0]
    assert newest.code == 0 and newest.raw_log == ""
    message = MsgEditValidator()
    assert response.txs[0].body.messages[0].Unpack(message)
    assert message.description.details == f"p2p={devnet.ip(32)}"
    assert message.description.moniker == "[do-not-modify]"
    alice = devnet.validator("alice")
    assert message.validator_address == alice["operator_address"]
    senders = [
        a.value for e in newest.events if e.type == "message" for a in e.attributes if a.key == "sender"
    ]
    assert senders == [valoper_to_account(alice["operator_address"])]
    raw = devnet.rest_get(
        "/cosmos/tx/v1beta1/txs", query=EDIT_ACTION, order_by="ORDER_BY_ASC", limit="1"
    ).json()
    assert raw["pagination"] is None and raw["total"] == "3"
    assert raw["tx_responses"][0]["height"] == str(heights[0])
    assert raw["tx_responses"][0]["tx"]["@type"] == "/cosmos.tx.v1beta1.Tx"
    assert raw["txs"][0]["body"]["messages"][0]["commission_rate"] is None
    by_hash = devnet.rest_get(f"/cosmos/tx/v1beta1/txs/{newest.txhash}").json()
    assert by_hash["tx_response"]["txhash"] == newest.txhash
    out_of_range = devnet.rest_get("/cosmos/tx/v1beta1/txs", query=EDIT_ACTION, page="9")
    assert out_of_range.status_code == 500
    assert out_of_range.json()["message"] == "page should be within [1, 1] range, given 9"


@pytest.mark.parametrize("query", ["tx.height>", "message.action=", "'x' = 1"])
def test_rest_tx_search_with_a_broken_query(devnet: Devnet, query: str) -> None:
    response = devnet.rest_get("/cosmos/tx/v1beta1/txs", query=query)
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == 13 and body["message"].startswith("offset")
    assert json.loads(response.text) == body


def test_cosmpy_reads_height_chain_id_and_node_info(devnet: Devnet) -> None:
    committed = devnet.admin("edit_validator", {"validator": "alice", "details": "x"})
    client = ledger(devnet)
    assert client.query_height() == committed["height"]
    assert client.query_chain_id() == "provider"
    block = client.query_block(committed["height"])
    assert block.height == committed["height"] and len(block.tx_hashes) == 1
    assert block.tx_hashes[0].upper() == committed["txhash"]
    info = client.tendermint.GetNodeInfo(GetNodeInfoRequest())
    status = devnet.rpc_get("status").json()["result"]["node_info"]
    assert info.default_node_info.default_node_id == status["id"]
    assert info.default_node_info.network == "provider"
    too_high = devnet.rest_get(f"/cosmos/base/tendermint/v1beta1/blocks/{committed['height'] + 5}")
    assert too_high.status_code == 400 and too_high.json()["code"] == 3


def test_details_survive_verbatim(devnet: Devnet) -> None:
    hostile = 'p2p=1.2.3.4:26656\n"quoted" \\ ünïcødé $(rm -rf /) `id`;,@# {"p2p":"5.6.7.8"}'
    devnet.admin("edit_validator", {"validator": "carol", "details": hostile})
    operator = devnet.validator("carol")["operator_address"]
    via_cosmpy = ledger(devnet).staking.Validator(QueryValidatorRequest(validator_addr=operator))
    assert via_cosmpy.validator.description.details == hostile
    raw = devnet.rest_get(f"/cosmos/staking/v1beta1/validators/{operator}").json()
    assert raw["validator"]["description"]["details"] == hostile
    assert devnet.validator("carol")["endpoint"] == devnet.ip(3)  # 1.2.3.4 is no devnet endpoint
