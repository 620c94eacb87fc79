"""Issue 12 item 2: node-id sources per consumer namespace (`peersync.io/node-ids`): `upstream` (derived),
`published` (the validator's `details` carry `p2p-ids=`), `discovered` (proved at the published endpoint and
kept by the registry). Each has a clear failure reason, and a peer with no valid id is never written."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.contracts import DETAILS_MAX, EndpointSnapshot, ProvedNodeId
from core.desired import desired_peers
from core.node_ids import (
    NodeIdError,
    node_id_source,
    parse_published,
    proof_fingerprint,
    proved_at,
    published_node,
)
from core.peer_formats import ConsumerLayout, LayoutError
from core.policy import EndpointPolicy
from core.registry_state import RegistryState, changed_buckets
from core.upstream import upstream_node_id, upstream_ports
from tests.workflows.test_registry_state import rec

POLICY = EndpointPolicy.from_setting("")
CHAIN = "consumer-1"
ID_A, ID_B = "a" * 40, "0123456789abcdef0123456789abcdef01234567"
node_ids = st.text("0123456789abcdef", min_size=40, max_size=40)
chain_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
ports = st.integers(1, 65535)


def bob(details: str) -> list:
    record = rec("op-bob", "bob", "8.8.8.2").model_copy(update={"details": details})
    return [record]


# ---- the published grammar -----------------------------------------------------------------------------


@given(node_ids, chain_ids, ports)
def test_a_per_chain_entry_round_trips(node_id: str, chain_id: str, port: int) -> None:
    found = parse_published(f"{chain_id}={node_id}@8.8.8.2:{port}")
    assert found.default is None
    assert found.for_chain(chain_id) is not None
    assert (found.chains[chain_id].node_id, found.chains[chain_id].port) == (node_id, port)


@given(node_ids, st.lists(chain_ids, min_size=1, max_size=3, unique=True))
def test_the_default_serves_every_chain_a_chain_entry_wins(node_id: str, chains: list[str]) -> None:
    token = ";".join([f"{ID_A}@8.8.8.2", *(f"{c}={node_id}@8.8.8.2:26656" for c in chains)])
    found = parse_published(token)
    assert all(found.for_chain(c).node_id == node_id for c in chains)  # type: ignore[union-attr]
    assert found.for_chain("not-" + chains[0] + "-x").node_id == ID_A  # type: ignore[union-attr]


@given(st.text(string.printable, max_size=60))
def test_anything_else_is_refused_with_a_reason_never_accepted_loosely(junk: str) -> None:
    try:
        found = parse_published(junk)
    except NodeIdError as exc:
        assert exc.reason and "\n" not in exc.reason
        return
    # What parses is exactly the grammar: every node id 40 lower-case hex, every entry has a host.
    for node in [found.default, *found.chains.values()]:
        assert node is None or (len(node.node_id) == 40 and node.host)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "is empty"),
        (f"{ID_A.upper()}@8.8.8.2", "40 lower-case hex"),
        (f"{ID_A[:39]}@8.8.8.2", "40 lower-case hex"),
        (f"{ID_A}", "not [<chain-id>=]<node-id>@<host>[:<port>]"),
        (f"{ID_A}@8.8.8.2;{ID_B}@8.8.8.2", "two entries without a chain id"),
        (f"c={ID_A}@8.8.8.2;c={ID_B}@8.8.8.2", "names chain 'c' twice"),
        (f"-c={ID_A}@8.8.8.2", "chain id '-c'"),
        (f"c={ID_A}@8.8.8.2:0", "outside"),
        (f"c={ID_A}@8.8.8.2:26656;", "not [<chain-id>=]"),
        (f"c={ID_A}@host$(reboot).example", "not allowed"),
    ],
)
def test_bad_tokens_say_what_is_wrong(token: str, reason: str) -> None:
    with pytest.raises(NodeIdError, match=None) as refused:
        parse_published(token)
    assert reason in refused.value.reason


def test_the_map_for_three_chains_fits_in_details_with_the_endpoint() -> None:
    entries = ";".join(f"consumer-{i}={ID_A}@203.0.113.77:2{i}656" for i in range(1, 4))
    details = f"p2p=203.0.113.77 p2p-ids={entries}"
    assert len(details) <= DETAILS_MAX
    assert published_node(details, "consumer-3", "203.0.113.77").port == 23656


def test_published_node_failures_name_the_chain_or_host() -> None:
    with pytest.raises(NodeIdError, match="no node id published for chain consumer-1"):
        published_node("p2p=8.8.8.2", CHAIN, "8.8.8.2")
    with pytest.raises(NodeIdError, match=re.escape("is for host 9.9.9.9, but p2p= names 8.8.8.2")):
        published_node(f"p2p=8.8.8.2 p2p-ids={ID_A}@9.9.9.9", CHAIN, "8.8.8.2")
    with pytest.raises(NodeIdError, match="2 p2p-ids= tokens"):
        published_node(f"p2p-ids={ID_A}@8.8.8.2 p2p-ids={ID_A}@8.8.8.2", CHAIN, "8.8.8.2")


# ---- the namespace annotation --------------------------------------------------------------------------


def test_the_annotation_chooses_the_source_and_refuses_anything_else() -> None:
    assert ConsumerLayout.from_annotations(CHAIN, None).node_ids == "upstream"
    notes = {"peersync.io/node-ids": "published"}
    assert ConsumerLayout.from_annotations(CHAIN, notes).node_ids == "published"
    with pytest.raises(
        LayoutError, match=re.escape("peersync.io/node-ids: 'Published' is not one of upstream")
    ):
        ConsumerLayout.from_annotations(CHAIN, {"peersync.io/node-ids": "Published"})
    assert node_id_source("discovered") == "discovered"


# ---- desired peers under each source -------------------------------------------------------------------


def desired(records: list, source: str, pinned: EndpointSnapshot | None = None):
    opted = [r.valcons for r in records]
    return desired_peers(records, opted, pinned or EndpointSnapshot(), None, CHAIN, POLICY, source=source)


def test_upstream_is_the_default_and_unchanged() -> None:
    want = desired_peers(bob("p2p=8.8.8.2"), ["valcons-op-bob"], EndpointSnapshot(), None, CHAIN, POLICY)
    assert want.peers == [f"{upstream_node_id('bob', CHAIN)}@8.8.8.2:{upstream_ports(CHAIN).p2p}"]


def test_published_writes_the_published_id_and_port() -> None:
    want = desired(bob(f"p2p=8.8.8.2 p2p-ids={CHAIN}={ID_B}@8.8.8.2:26656"), "published")
    assert want.peers == [f"{ID_B}@8.8.8.2:26656"]
    default = desired(bob(f"p2p=8.8.8.2 p2p-ids={ID_B}@8.8.8.2"), "published")
    assert default.peers == [f"{ID_B}@8.8.8.2:{upstream_ports(CHAIN).p2p}"]


def test_published_without_an_id_writes_nothing_and_keeps_what_is_applied() -> None:
    want = desired(bob("p2p=8.8.8.2"), "published")
    assert want.peers == [] and want.refused["op-bob"].startswith("no node id published for chain consumer-1")
    applied = [f"{ID_A}@8.8.8.2:26656"]
    assert want.keeping(applied).peers == applied  # never dropped for want of an id, never rewritten


def test_discovered_uses_the_proved_id_and_waits_for_one() -> None:
    none_yet = desired(bob("p2p=8.8.8.2"), "discovered")
    assert none_yet.peers == [] and "has not proved its id" in none_yet.refused["op-bob"]
    pinned = EndpointSnapshot(discovered={"op-bob": {CHAIN: ID_B}})
    proved = desired(bob("p2p=8.8.8.2"), "discovered", pinned)
    assert proved.peers == [f"{ID_B}@8.8.8.2:{upstream_ports(CHAIN).p2p}"]


def test_collisions_only_matter_under_upstream() -> None:
    squatter = rec("op-carol", "bob", "8.8.8.3")
    pair = [*bob(f"p2p=8.8.8.2 p2p-ids={ID_B}@8.8.8.2"), squatter]
    assert desired(pair, "upstream").peers == []
    assert desired(pair, "published").peers == [f"{ID_B}@8.8.8.2:{upstream_ports(CHAIN).p2p}"]


# ---- the registry keeps what was proved ----------------------------------------------------------------


def test_the_registry_keeps_proofs_shares_ids_and_reports_only_changes() -> None:
    state = RegistryState(cluster_id="alice")
    records = bob("p2p=8.8.8.2")
    state.apply_refresh(1, changed_buckets(records, {}), {})
    failed = ProvedNodeId(endpoint="8.8.8.2:26656", reason="the node at 8.8.8.2:26656 did not answer")
    assert not state.apply_discovered({"op-bob": {CHAIN: failed}})  # no id: the snapshot does not move
    version = state.version
    proof = ProvedNodeId(endpoint="8.8.8.2:26656", node_id=ID_B)
    assert state.apply_discovered({"op-bob": {CHAIN: proof}})
    assert state.version == version + 1 and state.pinned().discovered == {"op-bob": {CHAIN: ID_B}}
    known = state.discovered_fingerprints()["op-bob"][CHAIN]
    assert known == proof_fingerprint(proof) and proved_at(known, "8.8.8.2:26656")
    assert not proved_at(known, "8.8.8.9:26656")  # the endpoint moved: probed again
    assert state.view()[0].discovered[CHAIN].node_id == ID_B
    moved = [records[0].model_copy(update={"details": "p2p=8.8.8.9", "canonical": "8.8.8.9"})]
    state.apply_refresh(2, changed_buckets(moved, state.fingerprints()), {})
    assert state.entries["op-bob"].discovered[CHAIN].node_id == ID_B  # kept until the new proof comes back
