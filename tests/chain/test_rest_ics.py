"""ICS provider REST: consumer chains by phase, one consumer, opted-in set, consumer valset, errors."""

from __future__ import annotations

import base64
import json

import pytest
from cosmpy.common.rest_client import RestClient

from core.addresses import valcons_address

from .conftest import Devnet

PROVIDER = "/interchain_security/ccv/provider"


def test_consumer_chains_by_phase_name_or_number(devnet: Devnet) -> None:
    devnet.admin("create_consumer", {"chain_id": "pending-1"})
    by_name = devnet.rest_get(f"{PROVIDER}/consumer_chains/CONSUMER_PHASE_LAUNCHED").json()
    by_number = devnet.rest_get(f"{PROVIDER}/consumer_chains/3").json()
    assert by_name == by_number
    assert [c["chain_id"] for c in by_name["chains"]] == ["consumer-1", "consumer-2", "consumer-3"]
    assert by_name["pagination"] == {"next_key": None, "total": "3"}
    everything = devnet.rest_get(f"{PROVIDER}/consumer_chains/0").json()
    assert [c["phase"] for c in everything["chains"]] == ["CONSUMER_PHASE_LAUNCHED"] * 3 + [
        "CONSUMER_PHASE_REGISTERED"
    ]
    assert devnet.rest_get(f"{PROVIDER}/consumer_chains/CONSUMER_PHASE_UNSPECIFIED").json() == everything
    registered = devnet.rest_get(f"{PROVIDER}/consumer_chains/CONSUMER_PHASE_REGISTERED").json()
    assert [c["chain_id"] for c in registered["chains"]] == ["pending-1"]
    assert registered["chains"][0]["client_id"] == ""


def test_chain_json_is_snake_case_with_defaults(devnet: Devnet) -> None:
    chain = devnet.rest_get(f"{PROVIDER}/consumer_chains/3").json()["chains"][0]
    assert list(chain) == [
        "chain_id", "client_id", "top_N", "min_power_in_top_N", "validators_power_cap", "validator_set_cap",
        "allowlist", "denylist", "phase", "metadata", "min_stake", "allow_inactive_vals", "consumer_id",
        "allowlisted_reward_denoms", "prioritylist", "infraction_parameters",
    ]  # fmt: skip
    assert chain["top_N"] == 0 and chain["min_power_in_top_N"] == "-1" and chain["consumer_id"] == "0"
    assert chain["client_id"].startswith("07-tendermint-")


def test_consumer_chains_pagination(devnet: Devnet) -> None:
    first = devnet.rest_get(f"{PROVIDER}/consumer_chains/0", **{"pagination.limit": "2"}).json()
    assert len(first["chains"]) == 2 and first["pagination"]["total"] == "0"
    rest = devnet.rest_get(
        f"{PROVIDER}/consumer_chains/0", **{"pagination.key": first["pagination"]["next_key"]}
    )
    assert [c["chain_id"] for c in rest.json()["chains"]] == ["consumer-3"]


def test_bad_phase_is_invalid_argument(devnet: Devnet) -> None:
    response = devnet.rest_get(f"{PROVIDER}/consumer_chains/LAUNCHED")
    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert response.json()["message"].startswith("type mismatch, parameter: phase")


def test_one_consumer_chain(devnet: Devnet) -> None:
    body = json_get(devnet, f"{PROVIDER}/consumer_chain/1")
    assert body["chain_id"] == "consumer-2"
    assert body["phase"] == "CONSUMER_PHASE_LAUNCHED"
    assert body["init_params"]["unbonding_period"] == "1728000s"
    assert body["power_shaping_params"]["top_N"] == 0
    missing = devnet.rest_get(f"{PROVIDER}/consumer_chain/99")
    assert missing.status_code == 400
    assert missing.json() == {
        "code": 3,
        "message": "cannot retrieve chain id for consumer id: 99",
        "details": [],
    }
    not_a_number = devnet.rest_get(f"{PROVIDER}/consumer_chain/abc")
    assert not_a_number.status_code == 400
    assert "cannot be parsed" in not_a_number.json()["message"]


def json_get(devnet: Devnet, path: str) -> dict:
    """Through cosmpy's generic REST client, which raises on any non-200."""
    return json.loads(RestClient(devnet.rest).get(path))


def test_opted_in_validators_follow_opt_in_and_opt_out(devnet: Devnet) -> None:
    keys = {
        v["description"]["moniker"]: valcons_address(base64.b64decode(v["consensus_pubkey"]["key"]))
        for v in devnet.rest_get("/cosmos/staking/v1beta1/validators").json()["validators"]
    }
    opted = json_get(devnet, f"{PROVIDER}/opted_in_validators/2")["validators_provider_addresses"]
    assert sorted(opted) == sorted([keys["alice"], keys["dave"]])
    devnet.admin("opt_in", {"validator": "bob", "consumer": "consumer-3"})
    devnet.admin("opt_out", {"validator": "alice", "consumer": "2"})
    opted = json_get(devnet, f"{PROVIDER}/opted_in_validators/2")["validators_provider_addresses"]
    assert sorted(opted) == sorted([keys["bob"], keys["dave"]])


@pytest.mark.parametrize("phase", ["stopped", "deleted"])
def test_opted_in_validators_refuse_inactive_consumers(devnet: Devnet, phase: str) -> None:
    devnet.admin("consumer_phase", {"consumer": "consumer-3", "phase": phase})
    response = devnet.rest_get(f"{PROVIDER}/opted_in_validators/2")
    assert response.status_code == 400
    assert response.json() == {"code": 3, "message": "unknown consumer chain: 2", "details": []}
    assert devnet.rest_get(f"{PROVIDER}/opted_in_validators/77").status_code == 400


def test_registered_consumer_answers_opted_in(devnet: Devnet) -> None:
    created = devnet.admin("create_consumer", {"chain_id": "fresh-1"})
    devnet.admin("opt_in", {"validator": "carol", "consumer": "fresh-1"})
    opted = devnet.rest_get(f"{PROVIDER}/opted_in_validators/{created['consumer_id']}").json()
    assert len(opted["validators_provider_addresses"]) == 1


def test_consumer_validators_carry_description_and_operator(devnet: Devnet) -> None:
    devnet.admin("edit_validator", {"validator": "dave", "details": f"p2p={devnet.ip(44)}"})
    body = json_get(devnet, f"{PROVIDER}/consumer_validators/2")
    by_operator = {v["provider_operator_address"]: v for v in body["validators"]}
    dave = devnet.validator("dave")
    entry = by_operator[dave["operator_address"]]
    assert entry["description"]["details"] == f"p2p={devnet.ip(44)}"
    assert entry["provider_address"] == dave["valcons"]
    # "power" is deprecated in ICS v7 and "0" on the real chain (tests/real/test_chain_fidelity.py).
    assert entry["power"] == "0" and entry["consumer_power"] == "100"
    assert entry["provider_tokens"] == "100000000"
    assert set(entry["consumer_key"]) == {"ed25519"}
    assert entry["status"] == "BOND_STATUS_BONDED"
    unknown = devnet.rest_get(f"{PROVIDER}/consumer_validators/42")
    assert unknown.status_code == 400 and unknown.json()["code"] == 3
