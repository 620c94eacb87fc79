"""Catch-up gating's judgement: when are a restarted workload's nodes signing again?"""

from __future__ import annotations

from activities.catch_up import NodeLook, judge, parse_status

A, B = "http://10.0.0.5:26657", "http://10.0.0.6:26657"


def synced(url: str, height: int) -> NodeLook:
    return NodeLook(url=url, height=height, catching_up=False)


def test_a_caught_up_node_must_also_be_seen_advancing() -> None:
    first = judge(1, {}, [synced(A, 100)])
    assert not first.done
    assert first.message == "node 10.0.0.5: caught up at height 100, waiting for the next block"
    stuck = judge(1, first.baselines, [synced(A, 100)])
    assert not stuck.done and stuck.message == "node 10.0.0.5: height 100 not advancing"
    moved = judge(1, stuck.baselines, [synced(A, 101)])
    assert moved.done and moved.height == 101
    assert moved.message == "1 node(s) caught up at height 101"


def test_catching_up_is_not_done_whatever_the_height() -> None:
    first = judge(1, {}, [NodeLook(url=A, height=1200, catching_up=True)])
    assert not first.done and first.message == "node 10.0.0.5: catching up at height 1200"
    assert first.baselines == {}
    # Caught up once, then catching up again (restarted once more): it must be seen advancing afresh.
    again = judge(1, {A: 90}, [NodeLook(url=A, height=95, catching_up=True)])
    assert not again.done and again.baselines == {}


def test_every_expected_pod_must_be_ready_and_answer() -> None:
    one_of_two = judge(2, {A: 100}, [synced(A, 101)])
    assert not one_of_two.done and one_of_two.message == "1 of 2 pod(s) ready"
    unreachable = judge(2, {A: 100, B: 100}, [synced(A, 101), NodeLook(url=B, error="RPC unreachable: boom")])
    assert not unreachable.done
    assert unreachable.message == "node 10.0.0.6: RPC unreachable: boom"
    both = judge(2, {A: 100, B: 100}, [synced(A, 101), synced(B, 102)])
    assert both.done and both.height == 101 and both.baselines == {A: 100, B: 100}


def test_a_lower_height_than_before_restarts_the_look() -> None:
    lower = judge(1, {A: 100}, [synced(A, 50)])
    assert not lower.done and lower.baselines == {A: 50}


def test_no_replicas_is_done_at_once() -> None:
    assert judge(0, {}, []).done


def test_status_answers_of_the_wrong_shape_are_errors_not_crashes() -> None:
    good = {"result": {"sync_info": {"latest_block_height": "12", "catching_up": False}}}
    assert parse_status(A, good) == synced(A, 12)
    assert parse_status(A, {"error": {"code": -32603}}).error == "RPC error {'code': -32603}"
    assert "unexpected /status answer" in (parse_status(A, ["no"]).error or "")
    text_flag = {"result": {"sync_info": {"latest_block_height": "12", "catching_up": "false"}}}
    assert parse_status(A, text_flag).error is not None
