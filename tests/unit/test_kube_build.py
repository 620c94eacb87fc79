"""The pure builders of activities.kube_build: what peersync sends to a cluster, without a cluster."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from peer_strategies import PROPERTY, PROPERTY_FEW, hostile_text, peers

from activities import kube_build as build
from activities.kube_build import (
    HASH_ANNOTATION,
    MANAGED_ANNOTATION,
    ROLLED_ANNOTATION,
    ManagedNamespace,
    WorkloadRefusedError,
)
from activities.rollout_status import verdict
from core.peer_formats import ConsumerLayout, LayoutError, PeerFormatError
from core.peers import Peer, canonical_peers, parse_peer, peer_set_hash

A = parse_peer("a3258dcbf45dca0df052981870f2d1441a36d145@8.8.8.8:28746")
B = parse_peer("738aadf42c14e9f8ed81d8c3f3c82ce9f53f3eb5@[2606:4700::1]:28746")
SENTRY = "f00dbabef00dbabef00dbabef00dbabef00dbabe@sentry-0.validator.svc:26656"


def _layout(**annotations: str) -> ConsumerLayout:
    return ConsumerLayout.from_annotations("consumer-1", {"peersync.io/peers-format": "key", **annotations})


def _ns(**annotations: str) -> ManagedNamespace:
    return ManagedNamespace(name="ns", chain_id="consumer-1", consumer_id="1", layout=_layout(**annotations))


# ---- namespaces ------------------------------------------------------------------------------------------


def test_managed_namespace_from_labels_and_annotations() -> None:
    labels = {build.CLUSTER_LABEL: "alice", build.CHAIN_LABEL: "consumer-1", build.CONSUMER_LABEL: "7"}
    ns = build.managed_namespace("alice-consumer-1", labels, {"peersync.io/workload": "statefulset/node"})
    assert (ns.name, ns.chain_id, ns.consumer_id) == ("alice-consumer-1", "consumer-1", "7")
    assert ns.layout.workload == "statefulset/node"
    assert build.managed_namespace("x", {build.CHAIN_LABEL: "c"}, None).consumer_id == ""


@pytest.mark.parametrize("labels", [None, {}, {build.CHAIN_LABEL: ""}])
def test_managed_namespace_without_chain_label_is_a_layout_error(labels: dict[str, str] | None) -> None:
    with pytest.raises(LayoutError, match=r"namespace x has no peersync\.io/chain-id label"):
        build.managed_namespace("x", labels, None)


def test_labelled_for_only_this_cluster() -> None:
    assert build.cluster_selector("alice") == "peersync.io/cluster=alice"
    assert build.labelled_for({build.CLUSTER_LABEL: "alice"}, "alice")
    assert not build.labelled_for({build.CLUSTER_LABEL: "bob"}, "alice")
    assert not build.labelled_for(None, "alice")


# ---- the ConfigMap ---------------------------------------------------------------------------------------


def test_configmap_peers_splits_peersyncs_entries_from_the_operators() -> None:
    notes = {HASH_ANNOTATION: "h", MANAGED_ANNOTATION: A.node_id, ROLLED_ANNOTATION: "r"}
    found = build.configmap_peers(_ns(), {"persistent_peers": f"{SENTRY},{A.render()}"}, notes, [B.render()])
    assert found.peers == [A.render()]
    assert found.kept == [SENTRY]
    assert found.all_peers == [SENTRY, A.render()]
    assert (found.peers_hash, found.configmap_hash, found.rolled_hash) == (peer_set_hash([A]), "h", "r")


def test_configmap_never_written_is_adopted_at_its_own_hash() -> None:
    found = build.configmap_peers(_ns(), None, None, [A.render()])
    assert found.peers == [] and found.running_hash == peer_set_hash([])


def test_owned_ids_recorded_legacy_and_unknown() -> None:
    text = f"{A.render()},{B.render()}"
    found = build.configmap_peers(_ns(), {"persistent_peers": text}, {}, []).peers
    assert found == []  # nothing recorded, nothing desired: all the operator's
    legacy = {HASH_ANNOTATION: peer_set_hash([A, B])}  # an earlier version owned the whole value
    assert build.configmap_peers(_ns(), {"persistent_peers": text}, legacy).peers == [A.render(), B.render()]
    recorded = {MANAGED_ANNOTATION: f",{B.node_id},,"}  # empty items of a hand-edited list are ignored
    assert build.configmap_peers(_ns(), {"persistent_peers": text}, recorded).peers == [B.render()]


def test_applied_peers_prefers_rolled_then_template_then_configmap() -> None:
    cm = build.configmap_peers(_ns(), {}, {HASH_ANNOTATION: "cm"})
    workload = {"spec": {"template": {"metadata": {"annotations": {HASH_ANNOTATION: "tpl"}}}}}
    assert build.applied_peers(cm, workload).workload_hash == "tpl"
    assert build.applied_peers(cm, {}).workload_hash is None  # written by peersync, never rolled
    rolled = cm.model_copy(update={"rolled_hash": "rolled"})
    assert build.applied_peers(rolled, workload).workload_hash == "rolled"


def test_rolled_annotations_keep_the_others_and_are_none_when_already_so() -> None:
    assert build.rolled_annotations({"x": "1"}, "h") == {"x": "1", ROLLED_ANNOTATION: "h"}
    assert build.rolled_annotations({ROLLED_ANNOTATION: "h"}, "h") is None
    assert build.rolled_annotations(None, "h") == {ROLLED_ANNOTATION: "h"}


def test_peers_edit_writes_records_and_then_is_a_no_op() -> None:
    layout = _layout()
    data = {"persistent_peers": SENTRY, "other": "kept"}
    edit = build.peers_edit(layout, data, {"x": "1"}, [B, A])
    assert edit.changed
    # peersync's entries after the operator's, in canonical (string) order
    assert edit.data == {"persistent_peers": f"{SENTRY},{B.render()},{A.render()}", "other": "kept"}
    assert edit.annotations == {
        "x": "1",
        HASH_ANNOTATION: peer_set_hash([A, B]),
        MANAGED_ANNOTATION: ",".join(sorted([A.node_id, B.node_id])),
    }
    assert edit.all_peers == [SENTRY, B.render(), A.render()]
    assert data == {"persistent_peers": SENTRY, "other": "kept"}  # the caller's dict is not touched
    again = build.peers_edit(layout, edit.data, edit.annotations, [A, B])
    assert not again.changed and again.data == edit.data and again.annotations == edit.annotations


def test_peers_edit_removes_what_peersync_wrote_and_no_longer_wants() -> None:
    first = build.peers_edit(_layout(), {"persistent_peers": SENTRY}, {}, [A, B])
    second = build.peers_edit(_layout(), first.data, first.annotations, [B])
    assert second.changed and second.data["persistent_peers"] == f"{SENTRY},{B.render()}"
    assert second.annotations[MANAGED_ANNOTATION] == B.node_id


def test_peers_edit_adopts_a_legacy_configmap_without_a_write() -> None:
    """A ConfigMap of an earlier version (no ids recorded, hash of its whole list) already so: no write."""
    data = {"persistent_peers": f"{B.render()},{A.render()}"}
    notes = {HASH_ANNOTATION: peer_set_hash([A, B])}
    assert not build.peers_edit(_layout(), data, notes, [A, B]).changed
    # The same document in another order is not "already so": rewritten once, its ids recorded.
    edit = build.peers_edit(_layout(), {"persistent_peers": f"{A.render()},{B.render()}"}, notes, [A, B])
    assert edit.changed and edit.data == data
    assert not build.peers_edit(_layout(), edit.data, edit.annotations, [A, B]).changed


_peer_lists = st.lists(peers(), max_size=4, unique_by=lambda p: p.node_id)
_hostile_notes = st.dictionaries(
    st.sampled_from([HASH_ANNOTATION, MANAGED_ANNOTATION, ROLLED_ANNOTATION, "x"]),
    hostile_text | st.lists(st.sampled_from([A.node_id, B.node_id, ""]), max_size=3).map(",".join),
)


@PROPERTY_FEW
@given(
    st.sampled_from(["key", "config.toml", "init.sh"]),
    st.text(max_size=120) | hostile_text,
    _hostile_notes,
    _peer_lists,
)
def test_peers_edit_on_hostile_configmaps_refuses_or_converges(
    fmt: str, text: str, notes: dict[str, str], items: list[Peer]
) -> None:
    """Whatever an operator left in the ConfigMap: a clear refusal, or exactly our peers, and then a no-op."""
    layout = _layout(**{"peersync.io/peers-format": fmt})
    data = {layout.key: text}
    try:
        edit = build.peers_edit(layout, data, notes, items)
    except PeerFormatError:
        return
    ns = ManagedNamespace(name="ns", chain_id="consumer-1", consumer_id="", layout=layout)
    found = build.configmap_peers(ns, edit.data, edit.annotations)
    assert found.peers == [p.render() for p in canonical_peers(items)]
    assert edit.annotations[HASH_ANNOTATION] == peer_set_hash(items) == found.peers_hash
    assert not build.peers_edit(layout, edit.data, edit.annotations, items).changed
    assert {k: v for k, v in edit.annotations.items() if k not in (HASH_ANNOTATION, MANAGED_ANNOTATION)} == {
        k: v for k, v in notes.items() if k not in (HASH_ANNOTATION, MANAGED_ANNOTATION)
    }


# ---- the workload ----------------------------------------------------------------------------------------


def test_restart_patch_is_the_bytes_kube_ops_always_sent() -> None:
    body = build.restart_patch("abc", "2026-01-01T00:00:00Z")
    assert json.dumps(body) == (
        '{"spec": {"template": {"metadata": {"annotations": '
        '{"peersync.io/peers-hash": "abc", "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}}'
    )


def _deployment(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "node", "generation": 3}, "spec": {"replicas": 1, **spec}}


@pytest.mark.parametrize(
    ("workload", "annotations", "refusal"),
    [
        (_deployment(strategy={"type": "Recreate"}), {}, None),
        (_deployment(), {}, "two signers with one key"),  # the signer check comes first ...
        (_deployment(paused=True), {}, "two signers with one key"),
        (_deployment(paused=True), {"peersync.io/signer": "remote"}, "is paused"),  # ... then paused
        (_deployment(paused=True, strategy={"type": "Recreate"}), {}, "is paused"),
        (_deployment(updateStrategy={"type": "OnDelete"}), {"peersync.io/signer": "none"}, None),
        (
            _deployment(updateStrategy={"type": "OnDelete"}),
            {"peersync.io/workload": "statefulset/node"},
            "statefulset/node uses updateStrategy OnDelete: it never restarts pods",
        ),
        (_deployment(), {"peersync.io/workload": "statefulset/node"}, None),
    ],
)
def test_restart_refused_in_the_order_a_restart_checks(
    workload: dict[str, Any], annotations: dict[str, str], refusal: str | None
) -> None:
    found = build.restart_refused(_layout(**annotations), workload)
    assert found == refusal if refusal is None else refusal in (found or "")


def test_template_hash_generation_and_replicas() -> None:
    assert build.template_hash({}) is None
    assert (
        build.template_hash({"spec": {"template": {"metadata": {"annotations": {HASH_ANNOTATION: "h"}}}}})
        == "h"
    )
    assert build.generation(_deployment()) == 3 and build.generation({}) == 0
    assert build.replicas({"spec": {}}) == 1 and build.replicas({"spec": {"replicas": 0}}) == 0


def test_pod_selector_is_sorted_and_required() -> None:
    workload = {"spec": {"selector": {"matchLabels": {"b": "2", "a": "1"}}}}
    assert build.pod_selector(_layout(), workload) == "a=1,b=2"
    with pytest.raises(WorkloadRefusedError, match="deployment/consumer-1 has no matchLabels selector"):
        build.pod_selector(_layout(), {"spec": {"selector": {}}})


def _pod(ip: str | None, ready: str = "True", deleting: str | None = None) -> dict[str, Any]:
    metadata = {"deletionTimestamp": deleting} if deleting else {}
    return {"metadata": metadata, "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": ready}]}}


def test_node_rpc_urls_only_ready_running_pods_sorted() -> None:
    pods = [
        _pod("10.0.0.2"),
        _pod("fd00::1"),
        _pod("10.0.0.1"),
        _pod("10.0.0.3", ready="False"),
        _pod("10.0.0.4", deleting="2026-01-01T00:00:00Z"),
        _pod(None),
        {"metadata": {}},
    ]
    assert build.node_rpc_urls(pods, 26657) == [
        "http://10.0.0.1:26657",
        "http://10.0.0.2:26657",
        "http://[fd00::1]:26657",
    ]


@PROPERTY
@given(hostile_text | st.ip_addresses().map(str), st.sampled_from(["", "%eth0", "%@evil", "%a b"]))
def test_a_pod_ip_becomes_a_url_only_when_it_is_a_plain_ip_literal(pod_ip: str, zone: str) -> None:
    pod_ip = f"{pod_ip}{zone}" if ":" in pod_ip else pod_ip
    try:
        urls = build.node_rpc_urls([_pod(pod_ip)], 26657)
    except ValueError:
        assert pod_ip and (not _is_plain_ip(pod_ip) or "%" in pod_ip)
        return
    if not pod_ip:
        assert urls == []  # no IP yet: not a node to dial
        return
    (url,) = urls
    host = url.removeprefix("http://").removesuffix(":26657").removeprefix("[").removesuffix("]")
    assert _is_plain_ip(host) and host == str(ipaddress.ip_address(pod_ip))


def _is_plain_ip(text: str) -> bool:
    try:
        return "%" not in str(ipaddress.ip_address(text))
    except ValueError:
        return False


def test_watched_verdict() -> None:
    layout = _layout()
    with pytest.raises(WorkloadRefusedError, match="deployment/consumer-1 was deleted during the rollout"):
        build.watched_verdict(layout, "DELETED", {})
    assert build.watched_verdict(layout, "BOOKMARK", {}) is None
    obj = {"metadata": {"name": "consumer-1", "generation": 1}, "spec": {"replicas": 1}, "status": {}}
    assert build.watched_verdict(layout, "MODIFIED", obj) == verdict("deployment", obj)


_counts = st.integers(min_value=0, max_value=4)


@PROPERTY
@given(
    st.sampled_from(["deployment", "statefulset"]),
    st.fixed_dictionaries(
        {"generation": _counts, "replicas": _counts, "partition": _counts},
    ),
    st.dictionaries(
        st.sampled_from(
            ["observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas"]
        ),
        _counts,
    ),
    st.sampled_from([None, "r1"]),
)
def test_a_verdict_is_never_done_and_failed(
    kind: str, spec: dict[str, int], status: dict[str, Any], revision: str | None
) -> None:
    obj = {
        "metadata": {"name": "node", "generation": spec["generation"]},
        "spec": {
            "replicas": spec["replicas"],
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": spec["partition"]}},
        },
        "status": {**status, "currentRevision": "r1", "updateRevision": revision},
    }
    found = verdict(kind, obj)
    assert not (found.done and found.failed)
    if found.done:  # done only once the controller has seen the spec and every pod counted is updated
        assert status.get("observedGeneration", 0) >= spec["generation"]
        assert status.get("updatedReplicas", 0) >= spec["replicas"] - (
            spec["partition"] if kind != "deployment" else 0
        )
