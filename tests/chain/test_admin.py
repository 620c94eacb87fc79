"""The admin API: its contract (DESIGN.md "Chain emulator admin") and its refusals."""

from __future__ import annotations

import re

import pytest

from .conftest import Devnet


def test_edit_validator_contract(devnet: Devnet) -> None:
    alice = devnet.validator("alice")
    by_operator = devnet.admin("edit_validator", {"validator": alice["operator_address"], "details": "hello"})
    assert set(by_operator) >= {"height", "txhash"}
    assert isinstance(by_operator["height"], int) and re.fullmatch(r"[0-9A-F]{64}", by_operator["txhash"])
    by_moniker = devnet.admin("edit_validator", {"validator": "alice", "details": "again"})
    assert by_moniker["height"] == by_operator["height"] + 1
    assert devnet.validator("alice")["details"] == "again"


def test_rename_keeps_the_operator_identity(devnet: Devnet) -> None:
    operator = devnet.validator("bob")["operator_address"]
    devnet.admin("edit_validator", {"validator": "bob", "moniker": "robert"})
    assert devnet.validator("robert")["operator_address"] == operator
    assert devnet.validator("robert")["details"] == f"p2p={devnet.ip(2)}"  # [do-not-modify]


def test_squatted_moniker_is_ambiguous(devnet: Devnet) -> None:
    devnet.admin("create_validator", {"moniker": "mallory", "endpoint": devnet.ip(66)})
    devnet.admin("edit_validator", {"validator": "mallory", "moniker": "alice"})
    refused = devnet.admin("edit_validator", {"validator": "alice", "details": "x"}, expect=400)
    assert "ambiguous" in refused["error"]


@pytest.mark.parametrize(
    "path, body, fragment",
    [
        ("edit_validator", {"validator": "nobody", "details": "x"}, "no validator with moniker"),
        ("edit_validator", {"validator": "alice", "details": "x" * 281}, "invalid details length; got: 281"),
        ("edit_validator", {"validator": "alice", "detials": "typo"}, "detials"),
        ("edit_validator", {"details": "x"}, "validator"),
        ("edit_validator", {"validator": "alice", "moniker": "  "}, "moniker cannot be blank"),
        ("opt_in", {"validator": "alice", "consumer": "nope"}, "no consumer chain"),
        ("opt_out", {"validator": "bob", "consumer": "consumer-3"}, "is not opted in"),
        ("consumer_phase", {"consumer": "consumer-1", "phase": "flying"}, "unknown consumer phase"),
        ("create_validator", {"moniker": "alice"}, "already exist"),
        ("create_validator", {"moniker": "k", "consensus_pubkey": "AAAA"}, "32 bytes"),
        ("create_consumer", {"chain_id": "x", "consumer_id": "0"}, "already exists"),
        ("block_time", {"seconds": 0}, "greater than 0"),
        ("faults", {"target": "everything"}, "target"),
    ],
)
def test_bad_admin_input_is_a_400_with_a_reason(devnet: Devnet, path: str, body: dict, fragment: str) -> None:
    reply = devnet.admin(path, body, expect=400)
    assert fragment in reply["error"]


def test_malformed_and_unknown_admin_requests(devnet: Devnet) -> None:
    garbage = devnet.session.post(f"{devnet.rpc}/devnet/edit_validator", data=b"{oops", timeout=5)
    assert garbage.status_code == 400 and "not JSON" in garbage.json()["error"]
    unknown = devnet.session.post(f"{devnet.rpc}/devnet/launch_rockets", json={}, timeout=5)
    assert unknown.status_code == 404 and "no admin endpoint" in unknown.json()["error"]


def test_create_validator_then_consumer_lifecycle(devnet: Devnet) -> None:
    created = devnet.admin(
        "create_validator", {"moniker": "erin", "endpoint": devnet.ip(5), "tokens": 5_000_000}
    )
    assert created["operator_address"].startswith("cosmosvaloper1")
    erin = devnet.validator("erin")
    assert erin["status"] == "BOND_STATUS_BONDED" and erin["tokens"] == "5000000"
    txs = devnet.rest_get(
        "/cosmos/tx/v1beta1/txs", query="message.action='/cosmos.staking.v1beta1.MsgCreateValidator'"
    ).json()
    message = txs["txs"][0]["body"]["messages"][0]
    assert message["commission"]["rate"] == "0.100000000000000000"
    launched = devnet.admin("create_consumer", {"chain_id": "erin-chain", "phase": "CONSUMER_PHASE_LAUNCHED"})
    assert launched["phase_height"] == launched["height"] + 1
    devnet.admin("opt_in", {"validator": "erin", "consumer": "erin-chain"})
    consumer = next(c for c in devnet.state()["consumers"] if c["chain_id"] == "erin-chain")
    assert consumer["phase"] == "CONSUMER_PHASE_LAUNCHED" and consumer["opted_in"] == ["erin"]
    assert consumer["client_id"].startswith("07-tendermint-")


def test_failed_create_validator_leaves_no_validator(devnet: Devnet) -> None:
    reply = devnet.admin("create_validator", {"moniker": "ghost", "fail": True})
    assert reply["code"] == 11
    assert all(v["moniker"] != "ghost" for v in devnet.state()["validators"])


def test_state_view(devnet: Devnet) -> None:
    state = devnet.state()
    assert state["chain_id"] == "provider"
    assert (
        state["rpc_url"] == devnet.rpc and state["rest_url"] == devnet.rest and state["ws_url"] == devnet.ws
    )
    assert [v["moniker"] for v in state["validators"]] != []
    alice = devnet.validator("alice")
    assert alice["endpoint"] == devnet.ip(1) and alice["reachable"] is True
    assert alice["account_address"].startswith("cosmos1") and alice["valcons"].startswith("cosmosvalcons1")
    consumers = {c["chain_id"]: c for c in state["consumers"]}
    assert consumers["consumer-3"]["opted_in"] == ["alice", "dave"]
    assert consumers["consumer-1"]["p2p_port"] == 28746 and consumers["consumer-1"]["rpc_port"] == 28747
    assert state["paused"] is False and state["bind_errors"] == []


def test_validator_status_changes_commit_a_block(devnet: Devnet) -> None:
    changed = devnet.admin(
        "validator_status", {"validator": "dave", "status": "BOND_STATUS_UNBONDING", "jailed": True}
    )
    assert changed == {"height": changed["height"], "status": "BOND_STATUS_UNBONDING", "jailed": True}
    bonded = devnet.rest_get("/cosmos/staking/v1beta1/validators", status="BOND_STATUS_BONDED").json()
    assert "dave" not in [v["description"]["moniker"] for v in bonded["validators"]]
    dave = devnet.rest_get(
        f"/cosmos/staking/v1beta1/validators/{devnet.validator('dave')['operator_address']}"
    )
    assert dave.json()["validator"]["jailed"] is True
