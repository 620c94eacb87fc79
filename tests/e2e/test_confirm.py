"""Confirm what restarts validators (issue 13 item 5), and every `--wait` ends with the result table (item 6):
an override shows its plan and asks on a terminal, `--yes` skips, no terminal without `--yes` is refused;
an endpoint already another validator's is a WARNING in the plan."""

from __future__ import annotations

import asyncio
import os
import pty
import sys

from core.contracts import EndpointChangeResult, Phase
from devnet.testbed import World
from tests.e2e.control_kit import Node, one_line_refusal, peersync_ok, snapshot, update

C1 = "alice-consumer-1"


async def on_a_terminal(world: World, answer: str, *args: str) -> tuple[int, str, str]:
    """`peersync ...` with a terminal as stdin, `answer` typed in advance (the terminal keeps it until the
    prompt reads it)."""
    leader, follower = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workers.cli", *args,
            env={**os.environ, **world.env(COLUMNS="250")},
            stdin=follower, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        os.write(leader, answer.encode())
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        os.close(follower)
        os.close(leader)
    return proc.returncode or 0, out.decode(), err.decode()


async def changes_of(world: World, moniker: str) -> set[str]:
    query = f"WorkflowType = 'EndpointChangeWorkflow' AND PeersyncValidator = '{world.operator(moniker)}'"
    return {wf.id async for wf in world.client.list_workflows(query)}


async def test_an_override_is_refused_without_a_terminal_unless_yes(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    before, started = snapshot(world), await changes_of(world, "bob")
    code, _, err = await world.peersync("update", "--validator", "bob", "--endpoint", f"{world.subnet}.64")
    one_line_refusal(code, err, "restarts validators' nodes", "--yes")
    assert (await world.registry_row("bob")).change is None  # the registry started nothing
    assert await changes_of(world, "bob") == started and snapshot(world) == before


async def test_on_a_terminal_the_plan_is_shown_with_a_warning_and_no_changes_nothing(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    before = snapshot(world)
    carols = f"{world.subnet}.3"  # carol's published endpoint: a typo an operator could make
    code, out, err = await on_a_terminal(world, "n\n", "update", "--validator", "bob", "--endpoint", carols)
    one_line_refusal(code, err, "not confirmed: nothing changed")
    assert "peers now" in out and "peers after" in out and "restart" in out, out
    assert C1 in out and "dry run" not in out, out
    assert f"WARNING: {carols} is already used by carol (published: {carols})" in out, out
    assert "Apply this change?" in out, out
    assert (await world.registry_row("bob")).change is None and snapshot(world) == before


async def test_confirmed_on_a_terminal_it_starts_and_wait_and_clear_wait_end_with_the_result(
    world: World,
) -> None:
    await world.start_worker()
    await world.registry_ready()
    async with Node(f"{world.subnet}.65") as node:
        await node.up()
        code, out, err = await on_a_terminal(
            world, "y\n", "update", "--validator", "bob", "--endpoint", node.host, "--wait"
        )
        assert code == 0, (out, err)
        assert "WARNING" not in out and "peers after" in out, out  # the plan first
        assert "started endpoint-change-alice-manual-" in out, out
        # Then the result table: the change's verdict and each consumer's peers and outcome.
        tail = out[out.index("started endpoint-change") :]
        assert f"bob -> {node.host}: done" in tail and "peers before" in tail and C1 in tail, out
        assert "restarted" in tail, out
    assert (await world.registry_row("bob")).override == node.host

    # `--clear --wait`: the change back to the chain's endpoint, waited for, ends with its table too.
    out = await peersync_ok(world, "update", "--validator", "bob", "--clear", "--wait", COLUMNS="250")
    assert "override of bob cleared" in out, out
    assert f"bob -> {world.subnet}.2: done" in out and "peers before" in out, out
    assert f"@{world.subnet}.2:" in world.configmap_text(C1)


async def test_yes_skips_the_plan_and_the_question(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    async with Node(f"{world.subnet}.66") as node:
        await node.up()
        wf_id = await update(world, "--validator", "bob", "--endpoint", node.host, "--yes")
        result = await world.finished(wf_id, EndpointChangeResult)
    assert result.phase == Phase.DONE, result
