"""Emulated consumer nodes: TCP listeners at the validators' endpoints and their CometBFT RPC."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
import requests

from activities.p2p_identity import prove_node_id
from core.upstream import upstream_node_id, upstream_ports

from .conftest import Devnet

C1 = upstream_ports("consumer-1")
C3 = upstream_ports("consumer-3")


def connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def node_rpc(host: str, chain_id: str, method: str, **params: str) -> requests.Response:
    return requests.get(f"http://{host}:{upstream_ports(chain_id).rpc}/{method}", params=params, timeout=5)


def peer(moniker: str, host: str, chain_id: str = "consumer-1") -> str:
    return f"{upstream_node_id(moniker, chain_id)}@{host}:{upstream_ports(chain_id).p2p}"


def dial(
    host: str, peers: list[str], persistent: bool = True, chain_id: str = "consumer-1"
) -> requests.Response:
    params = {"persistent": "true" if persistent else "false", "peers": json.dumps(peers)}
    return node_rpc(host, chain_id, "dial_peers", **params)


def net_peers(host: str, chain_id: str = "consumer-1") -> list[str]:
    """Sorted node ids of the node's connections."""
    result = node_rpc(host, chain_id, "net_info").json()["result"]
    assert result["n_peers"] == str(len(result["peers"]))
    return sorted(p["node_info"]["id"] for p in result["peers"])


def ids(*monikers: str) -> list[str]:
    return sorted(upstream_node_id(m, "consumer-1") for m in monikers)


def test_every_opted_in_validator_listens_on_its_consumers(devnet: Devnet) -> None:
    for last, moniker in enumerate(["alice", "bob", "carol", "dave"], start=1):
        assert connects(devnet.ip(last), C1.p2p), moniker
    assert connects(devnet.ip(4), C3.p2p)  # dave runs consumer-3 ...
    assert not connects(devnet.ip(2), C3.p2p)  # ... bob does not
    nodes = devnet.state()["nodes"]
    assert len(nodes) == 4 + 3 + 2
    assert all(n["listening"] and n["rpc_listening"] and not n["errors"] for n in nodes)


def test_node_status_identifies_the_upstream_node(devnet: Devnet) -> None:
    body = node_rpc(devnet.ip(1), "consumer-1", "status").json()
    assert body["id"] == -1
    info = body["result"]["node_info"]
    assert info["id"] == upstream_node_id("alice", "consumer-1") == "738aadf42c14e9f8ed81d8c3f3c82ce9f53f3eb5"
    assert info["network"] == "consumer-1"
    assert info["listen_addr"] == f"tcp://{devnet.ip(1)}:{C1.p2p}"  # the bound address, as a real node
    assert body["result"]["sync_info"]["catching_up"] is False
    devnet.admin("node", {"validator": "alice", "consumer": "consumer-1", "catching_up": True})
    assert node_rpc(devnet.ip(1), "consumer-1", "status").json()["result"]["sync_info"]["catching_up"] is True
    assert (
        node_rpc(devnet.ip(1), "consumer-2", "status").json()["result"]["sync_info"]["catching_up"] is False
    )


def test_each_node_proves_its_upstream_key_in_the_p2p_handshake(devnet: Devnet) -> None:
    """The SecretConnection handshake a real node answers (tests/real/test_p2p_identity.py), with the private
    key behind the node's id; then the connection closes (no NodeInfo, no peer)."""
    for last, moniker in enumerate(["alice", "bob", "carol", "dave"], start=1):
        proven = asyncio.run(prove_node_id(devnet.ip(last), C1.p2p, timeout=5))
        assert proven == upstream_node_id(moniker, "consumer-1"), moniker
    assert asyncio.run(prove_node_id(devnet.ip(4), C3.p2p, timeout=5)) == upstream_node_id(
        "dave", "consumer-3"
    )
    assert net_peers(devnet.ip(1)) == ids("bob", "carol", "dave")  # the probes never became peers
    # A rename does not change the key a running node proves (its node_key.json was written at deploy).
    devnet.admin("edit_validator", {"validator": "carol", "moniker": "carol-2"})
    assert asyncio.run(prove_node_id(devnet.ip(3), C1.p2p, timeout=5)) == upstream_node_id(
        "carol", "consumer-1"
    )


def test_edit_validator_moves_the_nodes(devnet: Devnet) -> None:
    new_host = devnet.ip(101)
    assert not connects(new_host, C1.p2p)
    reply = devnet.admin("edit_validator", {"validator": "alice", "details": f"p2p={new_host}:26656"})
    assert reply["height"] > 1 and len(reply["txhash"]) == 64
    assert connects(new_host, C1.p2p) and connects(new_host, C3.p2p)
    assert not connects(devnet.ip(1), C1.p2p)
    status = node_rpc(new_host, "consumer-3", "status").json()["result"]
    assert status["node_info"]["id"] == upstream_node_id("alice", "consumer-3")
    assert devnet.validator("alice")["endpoint"] == new_host


def test_json_details_move_the_nodes_too(devnet: Devnet) -> None:
    new_host = devnet.ip(102)
    devnet.admin("edit_validator", {"validator": "bob", "details": json.dumps({"p2p": f"{new_host}:26656"})})
    assert connects(new_host, C1.p2p)


def test_unreachable_endpoint_leaves_nothing_listening(devnet: Devnet) -> None:
    new_host = devnet.ip(103)
    devnet.admin("edit_validator", {"validator": "carol", "details": f"p2p={new_host}", "reachable": False})
    assert not connects(new_host, C1.p2p)
    assert not connects(devnet.ip(3), C1.p2p)
    carol = devnet.validator("carol")
    assert carol["endpoint"] == new_host and carol["reachable"] is False
    devnet.admin("node", {"validator": "carol", "reachable": True})
    assert connects(new_host, C1.p2p)


@pytest.mark.parametrize(
    "details",
    ["p2p=8.8.8.8:26656", "p2p=127.0.0.1;rm -rf /", "no endpoint at all", "p2p=999.1.1.1"],
)
def test_invalid_endpoints_do_not_move_the_nodes(devnet: Devnet, details: str) -> None:
    devnet.admin("edit_validator", {"validator": "dave", "details": details})
    assert connects(devnet.ip(4), C1.p2p)
    dave = devnet.validator("dave")
    assert dave["details"] == details and dave["endpoint"] == devnet.ip(4)
    assert dave["note"]


def test_dial_peers_replaces_the_persistent_list(devnet: Devnet) -> None:
    bob_host = devnet.ip(2)
    # A node starts connected to its consumer's other validators.
    assert net_peers(bob_host) == ids("alice", "carol", "dave")
    reply = dial(bob_host, [peer("carol", devnet.ip(3))])
    assert reply.status_code == 200
    assert reply.json() == {
        "jsonrpc": "2.0",
        "id": -1,
        "result": {"log": "Dialing peers in progress. See /net_info for details"},
    }
    # As on a real node, nobody is disconnected: the list only decides whom bob redials.
    assert net_peers(bob_host) == ids("alice", "carol", "dave")
    both = [peer("alice", devnet.ip(1)), peer("dave", devnet.ip(4))]
    dial(bob_host, both)
    bob = next(n for n in devnet.state()["nodes"] if n["moniker"] == "bob" and n["chain_id"] == "consumer-1")
    assert bob["persistent_peers"] == both


def test_a_peer_left_out_of_a_persistent_dial_is_lost_at_its_restart(devnet: Devnet) -> None:
    """dave, dropped from bob's list while connected, stays; the connection keeps its persistent flag, so
    bob redials him after his restart once more, and no longer after the next one (dave's own list must
    not name bob, or dave would dial bob back)."""
    bob_host, dave_host = devnet.ip(2), devnet.ip(4)
    dial(dave_host, [peer("alice", devnet.ip(1))])  # dave stops dialing bob: bob's dial is the only link
    dial(bob_host, [peer("alice", devnet.ip(1)), peer("carol", devnet.ip(3))])
    assert net_peers(bob_host) == ids("alice", "carol", "dave")
    fleet = devnet.emulator.nodes
    assert fleet.restarted(dave_host, "consumer-1") is not None
    assert net_peers(bob_host) == ids("alice", "carol", "dave")
    fleet.restarted(dave_host, "consumer-1")
    assert net_peers(bob_host) == ids("alice", "carol")
    dial(bob_host, [peer("dave", dave_host)], persistent=False)  # a one-off dial connects ...
    assert net_peers(bob_host) == ids("alice", "carol", "dave")
    fleet.restarted(dave_host, "consumer-1")  # ... until dave's next restart
    assert net_peers(bob_host) == ids("alice", "carol")


def test_connections_are_outbound_at_one_end_only(devnet: Devnet) -> None:
    entries = [
        (host, p)
        for host in (devnet.ip(1), devnet.ip(2))
        for p in node_rpc(host, "consumer-1", "net_info").json()["result"]["peers"]
    ]
    alice, bob = upstream_node_id("alice", "consumer-1"), upstream_node_id("bob", "consumer-1")
    [at_alice] = [p for h, p in entries if h == devnet.ip(1) and p["node_info"]["id"] == bob]
    [at_bob] = [p for h, p in entries if h == devnet.ip(2) and p["node_info"]["id"] == alice]
    assert at_alice["is_outbound"] != at_bob["is_outbound"]
    inbound = at_bob if at_alice["is_outbound"] else at_alice
    assert inbound["remote_ip"] == "127.0.0.1"  # the kernel's source address on loopback


def test_a_moved_peer_dials_back_but_is_lost_where_it_lists_nobody(devnet: Devnet) -> None:
    """A moved node dials its own persistent peers from its new address, so they see it again (inbound)
    without any dial_peers; a node it does not list loses it until someone dials the new address."""
    bob_host, carol_host, new_alice = devnet.ip(2), devnet.ip(3), devnet.ip(104)
    dial(devnet.ip(1), [peer("bob", bob_host), peer("dave", devnet.ip(4))])  # alice drops carol ...
    dial(carol_host, [peer("bob", bob_host)])  # ... and carol alice
    devnet.admin("edit_validator", {"validator": "alice", "details": f"p2p={new_alice}"})
    alice_id = upstream_node_id("alice", "consumer-1")
    assert alice_id in net_peers(bob_host)
    assert alice_id not in net_peers(carol_host)
    dial(carol_host, [peer("bob", bob_host), peer("alice", new_alice)])
    assert alice_id in net_peers(carol_host)


def test_a_wrong_node_id_never_connects(devnet: Devnet) -> None:
    bob_host = devnet.ip(2)
    impostor = f"{upstream_node_id('mallory', 'consumer-1')}@{devnet.ip(3)}:{C1.p2p}"
    upper = peer("carol", devnet.ip(3)).upper().replace(devnet.ip(3).upper(), devnet.ip(3))
    for host in (devnet.ip(1), devnet.ip(3), devnet.ip(4)):  # nobody dials bob ...
        dial(host, [peer("alice", devnet.ip(1))])
    assert dial(bob_host, [impostor, upper]).status_code == 200
    devnet.emulator.nodes.restarted(bob_host, "consumer-1")  # drops the connections made before the dials
    assert net_peers(bob_host) == []  # ... and bob's dials reach nobody


@pytest.mark.parametrize(
    "peers, error",
    [
        ([], "no peers provided"),
        (["127.0.0.1:26656"], "address (127.0.0.1:26656) does not contain ID"),
        ([f"{'a' * 40}@@127.0.0.1:1"], f"address ({'a' * 40}@@127.0.0.1:1) does not contain ID"),
        ([f"{'x' * 40}@127.0.0.1:1"], "invalid address"),
        ([f"{'ab' * 10}@127.0.0.1:1"], "invalid hex length - got 10, expected 20"),
        ([f"{'a' * 40}@127.0.0.1"], "missing port in address"),
        ([f"{'a' * 40}@127.0.0.1:99999"], "value out of range"),
    ],
)
def test_dial_peers_errors(devnet: Devnet, peers: list[str], error: str) -> None:
    response = dial(devnet.ip(1), peers)
    assert response.status_code == 500
    body: dict[str, Any] = response.json()
    assert body["id"] == -1 and body["error"]["code"] == -32603
    assert error in body["error"]["data"]


def test_unresolvable_hostnames_are_skipped(devnet: Devnet) -> None:
    good = peer("bob", devnet.ip(2))
    response = dial(devnet.ip(1), [f"{'a' * 40}@no-such-host.invalid:26656", good])
    assert response.status_code == 200
    alice = next(
        n for n in devnet.state()["nodes"] if n["moniker"] == "alice" and n["chain_id"] == "consumer-1"
    )
    assert alice["persistent_peers"] == [good]


def test_without_unsafe_rpc_dial_peers_does_not_exist(devnet: Devnet) -> None:
    """`[rpc] unsafe = false`: CometBFT registers no unsafe route, so the answer is its plain-text 404."""
    devnet.admin("node", {"validator": "alice", "consumer": "consumer-1", "unsafe_rpc": False})
    response = dial(devnet.ip(1), [peer("bob", devnet.ip(2))])
    assert (response.status_code, response.text) == (404, "404 page not found\n")
    url = f"http://{devnet.ip(1)}:{C1.rpc}/"
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "dial_peers",
        "params": {"peers": [peer("bob", devnet.ip(2))]},
    }
    over_post = requests.post(url, json=call, timeout=5)  # JSON-RPC: not an HTTP error, a -32601
    assert over_post.status_code == 200
    assert over_post.json() == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": -32601, "message": "Method not found"},
    }
    assert net_peers(devnet.ip(1))  # the safe routes still answer
    devnet.admin("node", {"validator": "alice", "consumer": "consumer-1", "unsafe_rpc": True})
    assert dial(devnet.ip(1), [peer("bob", devnet.ip(2))]).status_code == 200


def test_dial_peers_bad_params(devnet: Devnet) -> None:
    response = node_rpc(devnet.ip(1), "consumer-1", "dial_peers", peers="not-json", persistent="true")
    assert response.status_code == 500 and response.json()["error"] == {
        "code": -32602,
        "message": "Invalid params",
        "data": "error converting http params to arguments: invalid character 'o' in literal null (expecting 'u')",
    }  # the text real cometbft v0.38.26 answers


def test_opt_in_out_and_phases_add_and_remove_nodes(devnet: Devnet) -> None:
    bob_host = devnet.ip(2)
    devnet.admin("opt_in", {"validator": "bob", "consumer": "consumer-3"})
    assert connects(bob_host, C3.p2p)
    devnet.admin("opt_out", {"validator": "bob", "consumer": "consumer-3"})
    assert not connects(bob_host, C3.p2p)
    devnet.admin("consumer_phase", {"consumer": "consumer-3", "phase": "CONSUMER_PHASE_STOPPED"})
    assert not connects(devnet.ip(1), C3.p2p)
    created = devnet.admin("create_consumer", {"chain_id": "consumer-9"})
    devnet.admin("opt_in", {"validator": "dave", "consumer": created["consumer_id"]})
    c9 = upstream_ports("consumer-9")
    assert not connects(devnet.ip(4), c9.p2p)  # registered, not launched
    devnet.admin("consumer_phase", {"consumer": "consumer-9", "phase": "launched"})
    assert connects(devnet.ip(4), c9.p2p)


def test_bind_conflicts_are_reported_not_fatal(make_devnet: Any, net: str) -> None:
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((f"{net}.1", C1.p2p))
        squatter.listen()
        devnet = make_devnet()
        state = devnet.state()
    assert any("consumer-1" in e and "in use" in e for e in state["bind_errors"]), state["bind_errors"]
    assert connects(devnet.ip(2), C1.p2p)
    assert devnet.rpc_get("health").status_code == 200


def test_a_rename_does_not_change_a_running_nodes_identity(devnet: Devnet) -> None:
    devnet.admin("edit_validator", {"validator": "bob", "moniker": "alice-2"})
    info = node_rpc(devnet.ip(2), "consumer-1", "status").json()["result"]["node_info"]
    assert info["id"] == upstream_node_id("bob", "consumer-1")
    assert info["moniker"] == "bob"


def test_moving_an_unreachable_validator_brings_its_nodes_up(devnet: Devnet) -> None:
    devnet.admin(
        "edit_validator", {"validator": "dave", "details": f"p2p={devnet.ip(120)}", "reachable": False}
    )
    assert not connects(devnet.ip(120), C1.p2p)
    devnet.admin("edit_validator", {"validator": "dave", "details": f"p2p={devnet.ip(121)}"})
    assert connects(devnet.ip(121), C1.p2p)
