"""PEERSYNC_LOG_FORMAT=json: every line the worker writes is one JSON object, with the Temporal and
consumer context as keys (what a log pipeline indexes on)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from core.contracts import EndpointChangeResult, Phase
from core.ids import endpoint_change_id
from devnet.testbed import World


async def test_json_logs_carry_the_workflow_and_consumer_context(world: World) -> None:
    worker = await world.start_worker(PEERSYNC_LOG_FORMAT="json", PEERSYNC_LOG_LEVEL="info")
    await world.registry_ready()
    height = await world.edit_validator("bob", f"p2p={world.subnet}.22")
    wf_id = endpoint_change_id("alice", world.operator("bob"), height)
    assert (await world.finished(wf_id, EndpointChangeResult)).phase == Phase.DONE

    records = [_parse(line) for line in world.log_text(worker).splitlines() if line.strip()]
    assert records, "the worker logged nothing"
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records), records[0]
    assert all(datetime.fromisoformat(r["time"]).tzinfo is not None for r in records)

    syncs = [r for r in records if r.get("result") == "restarted"]
    assert {r["consumer"] for r in syncs} == {"alice-consumer-1", "alice-consumer-2"}
    for r in syncs:
        assert r["temporal_workflow"]["workflow_type"] == "ConsumerSyncWorkflow"
        assert r["temporal_workflow"]["workflow_id"].endswith(r["consumer"])
        assert r["chain_id"] in ("consumer-1", "consumer-2") and r["peers_hash"]
        assert "{" not in r["message"], "the context belongs in keys, not in the message"

    writes = [r for r in records if r.get("temporal_activity", {}).get("activity_type") == "write_peers"]
    assert {r["consumer"] for r in writes} == {"alice-consumer-1", "alice-consumer-2"}

    [change] = [r for r in records if r.get("phase") == "done"]
    assert change["validator"] == world.operator("bob")
    assert change["temporal_workflow"]["workflow_id"] == wf_id


def _parse(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        raise AssertionError(f"not a JSON line: {line!r}") from None
    assert isinstance(record, dict), line
    return record
