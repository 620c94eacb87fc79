"""CometBFT RPC over HTTP: URI GET and JSON-RPC POST, shapes and errors of a real 0.38 node."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Devnet

EDIT = "message.action='/cosmos.staking.v1beta1.MsgEditValidator'"
UPPER_HEX_64 = re.compile(r"^[0-9A-F]{64}$")


def quoted(text: str) -> str:
    return f'"{text}"'


def post(devnet: Devnet, method: str, params: Any = None, request_id: Any = 1) -> Any:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    response = devnet.session.post(devnet.rpc, json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def edits(devnet: Devnet, count: int) -> list[int]:
    return [
        devnet.admin("edit_validator", {"validator": "bob", "details": f"p2p={devnet.ip(100 + i)}"})["height"]
        for i in range(count)
    ]


def test_status_shape(devnet: Devnet) -> None:
    body = devnet.rpc_get("status").json()
    assert body["jsonrpc"] == "2.0" and body["id"] == -1
    result = body["result"]
    info, sync, validator = result["node_info"], result["sync_info"], result["validator_info"]
    assert info["network"] == "provider"
    assert re.fullmatch(r"[0-9a-f]{40}", info["id"])
    assert info["protocol_version"] == {"p2p": "8", "block": "11", "app": "0"}
    assert isinstance(sync["latest_block_height"], str) and int(sync["latest_block_height"]) >= 1
    assert sync["earliest_block_height"] == "1"
    assert UPPER_HEX_64.match(sync["latest_block_hash"]) and UPPER_HEX_64.match(sync["latest_app_hash"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", sync["latest_block_time"])
    assert sync["catching_up"] is False
    assert validator["pub_key"]["type"] == "tendermint/PubKeyEd25519"
    assert validator["voting_power"] == "0"
    assert re.fullmatch(r"[0-9A-F]{40}", validator["address"])
    assert devnet.rpc_get("health").json() == {"jsonrpc": "2.0", "id": -1, "result": {}}


def test_each_admin_tx_commits_one_block(devnet: Devnet) -> None:
    start = int(devnet.rpc_get("status").json()["result"]["sync_info"]["latest_block_height"])
    heights = edits(devnet, 3)
    assert heights == [start + 1, start + 2, start + 3]
    assert devnet.rpc_get("status").json()["result"]["sync_info"]["latest_block_height"] == str(start + 3)


def test_tx_search_uri_paging_and_order(devnet: Devnet) -> None:
    heights = edits(devnet, 5)
    page1 = devnet.rpc_get("tx_search", query=quoted(EDIT), per_page="2", page="1", order_by=quoted("desc"))
    assert page1.status_code == 200
    result = page1.json()["result"]
    assert result["total_count"] == "5"
    assert [t["height"] for t in result["txs"]] == [str(heights[4]), str(heights[3])]
    tx = result["txs"][0]
    assert list(tx) == ["hash", "height", "index", "tx_result", "tx"]
    assert tx["index"] == 0 and UPPER_HEX_64.match(tx["hash"])
    assert hashlib.sha256(base64.b64decode(tx["tx"])).hexdigest().upper() == tx["hash"]
    # HTTP keeps every ExecTxResult field (jsonpb EmitDefaults).
    assert (
        tx["tx_result"]["code"] == 0 and tx["tx_result"]["log"] == "" and tx["tx_result"]["codespace"] == ""
    )
    assert tx["tx_result"]["gas_wanted"] == "200000"
    page3 = devnet.rpc_get("tx_search", query=quoted(EDIT), per_page="2", page="3").json()["result"]
    assert [t["height"] for t in page3["txs"]] == [str(heights[4])]  # asc by default
    bare_ints_ok = devnet.rpc_get("tx_search", query=quoted(f"tx.height>{heights[2]}"), order_by='""').json()
    assert [t["height"] for t in bare_ints_ok["result"]["txs"]] == [str(h) for h in heights[3:]]


def test_tx_search_errors_over_uri(devnet: Devnet) -> None:
    edits(devnet, 1)
    out_of_range = devnet.rpc_get("tx_search", query=quoted(EDIT), page="2")
    assert out_of_range.status_code == 500
    assert out_of_range.json() == {
        "jsonrpc": "2.0",
        "id": -1,
        "error": {
            "code": -32603,
            "message": "Internal error",
            "data": "page should be within [1, 1] range, given 2",
        },
    }
    bad_order = devnet.rpc_get("tx_search", query=quoted(EDIT), order_by=quoted("newest")).json()
    assert bad_order["error"]["data"] == "expected order_by to be either `asc` or `desc` or empty"
    unquoted = devnet.rpc_get("tx_search", query=EDIT)
    assert unquoted.status_code == 500
    assert unquoted.json()["error"]["code"] == -32602
    assert unquoted.json()["error"]["message"] == "Invalid params"
    broken = devnet.rpc_get("tx_search", query=quoted("tx.height >")).json()
    assert broken["error"]["code"] == -32603 and broken["error"]["data"].startswith("offset")


def test_tx_search_json_rpc_post(devnet: Devnet) -> None:
    heights = edits(devnet, 3)
    params = {"query": EDIT, "page": "1", "per_page": "2", "order_by": "desc"}
    body = post(devnet, "tx_search", params, request_id="abc")
    assert body["id"] == "abc"
    assert [t["height"] for t in body["result"]["txs"]] == [str(heights[2]), str(heights[1])]
    as_array = post(devnet, "tx_search", [EDIT, False, "2", "2", "desc"])
    assert [t["height"] for t in as_array["result"]["txs"]] == [str(heights[0])]


def test_bare_int_in_post_is_refused(devnet: Devnet) -> None:
    body = post(devnet, "tx_search", {"query": EDIT, "page": 1, "per_page": "30"}, request_id=7)
    assert body["id"] == 7
    assert body["error"]["code"] == -32602
    assert body["error"]["message"] == "Invalid params"
    assert "invalid 64-bit integer encoding" in body["error"]["data"]


def test_tx_by_hash(devnet: Devnet) -> None:
    edits(devnet, 1)
    found = devnet.rpc_get("tx_search", query=quoted(EDIT)).json()["result"]["txs"][0]
    by_hash = devnet.rpc_get("tx", hash="0x" + found["hash"]).json()["result"]
    assert by_hash == found
    via_post = post(devnet, "tx", {"hash": base64.b64encode(bytes.fromhex(found["hash"])).decode()})
    assert via_post["result"]["hash"] == found["hash"]
    missing = devnet.rpc_get("tx", hash="0x" + "00" * 32)
    assert missing.status_code == 500
    assert missing.json()["error"]["data"] == f"tx ({'00' * 32}) not found"


def test_block_and_block_results(devnet: Devnet) -> None:
    height = edits(devnet, 1)[0]
    block = devnet.rpc_get("block", height=str(height)).json()["result"]
    header = block["block"]["header"]
    assert header["height"] == str(height) and header["chain_id"] == "provider"
    assert len(block["block"]["data"]["txs"]) == 1
    results = devnet.rpc_get("block_results", height=str(height)).json()["result"]
    assert results["height"] == str(height)
    assert results["txs_results"][0]["code"] == 0
    future = devnet.rpc_get("block", height=str(height + 100)).json()
    assert "must be less than or equal to the current blockchain height" in future["error"]["data"]


def test_subscribe_over_http_is_method_not_found(devnet: Devnet) -> None:
    response = devnet.rpc_get("subscribe", query=quoted("tm.event='Tx'"))
    assert response.status_code == 404
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": -1,
        "error": {"code": -32601, "message": "Method not found"},
    }
    body = post(devnet, "subscribe", {"query": "tm.event='Tx'"})
    assert body["error"]["code"] == -32601


def test_unknown_route_and_malformed_post(devnet: Devnet) -> None:
    unknown = devnet.rpc_get("no_such_method")
    assert unknown.status_code == 404 and unknown.text == "404 page not found\n"
    garbage = devnet.session.post(devnet.rpc, data=b"{not json", timeout=10)
    assert garbage.status_code == 500
    assert garbage.json()["error"]["code"] == -32700
    notification = devnet.session.post(devnet.rpc, json={"jsonrpc": "2.0", "method": "status"}, timeout=10)
    assert notification.status_code == 200 and notification.text == ""
    batch = devnet.session.post(
        devnet.rpc,
        json=[{"jsonrpc": "2.0", "id": 1, "method": "health"}, {"jsonrpc": "2.0", "id": 2, "method": "nope"}],
        timeout=10,
    ).json()
    assert batch[0] == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert batch[1]["error"]["code"] == -32601


def test_per_page_defaults_to_30_and_caps_at_100(devnet: Devnet) -> None:
    edits(devnet, 105)
    default = devnet.rpc_get("tx_search", query=quoted(EDIT)).json()["result"]
    assert len(default["txs"]) == 30 and default["total_count"] == "105"
    assert len(devnet.rpc_get("tx_search", query=quoted(EDIT), per_page="0").json()["result"]["txs"]) == 30
    capped = devnet.rpc_get("tx_search", query=quoted(EDIT), per_page="500", page="2").json()["result"]
    assert len(capped["txs"]) == 5


def test_query_language_through_tx_search(devnet: Devnet) -> None:
    first, second = edits(devnet, 2)
    devnet.admin("opt_in", {"validator": "bob", "consumer": "consumer-3"})
    bob = devnet.validator("bob")
    cases = {
        "tm.event='Tx'": 3,
        EDIT: 2,
        f"tx.height={second}": 1,
        f"tx.height>={first} AND tx.height<={second}": 2,
        "opt_in.consumer_id='2'": 1,
        "opt_in EXISTS": 1,
        "edit_validator.commission_rate CONTAINS 'rate'": 2,
        f"message.sender='{bob['account_address']}' AND message.module='staking'": 2,
        "message.action='/nope'": 0,
    }
    for query, expected in cases.items():
        result = post(devnet, "tx_search", {"query": query})["result"]
        assert result["total_count"] == str(expected), query


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(
        alphabet=st.sampled_from(list("tm.event='Tx' AND<>=1x.yEXISTSCONTAINSTIMEDATE 2024-01-01")),
        max_size=40,
    )
)
def test_any_query_text_gets_a_json_rpc_answer(devnet: Devnet, text: str) -> None:
    body = post(devnet, "tx_search", {"query": text})
    assert ("result" in body) != ("error" in body)
    if "error" in body:
        assert body["error"]["code"] == -32603 and body["error"]["message"] == "Internal error"
