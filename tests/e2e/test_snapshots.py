"""Intent flows one way (issue 11 item 1): a sync applies the registry snapshot its request carries, never one
older than the snapshot it already applied, and a request that carries none makes it ask the registry."""

from __future__ import annotations

from core.contracts import EndpointSnapshot, SyncRequest, SyncResult
from core.ids import consumer_sync_id
from devnet.testbed import World
from workflows.consumer_sync import ConsumerSyncWorkflow

C1 = "alice-consumer-1"


async def test_a_sync_ignores_a_snapshot_older_than_the_one_it_applied(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    bob, sub = world.operator("bob"), world.subnet
    code, _, err = await world.peersync("sync", "--consumer", "consumer-1")
    assert code == 0, err
    published = f"@{sub}.2:"
    assert published in world.configmap_text(C1)
    sync = world.handle(consumer_sync_id("alice", C1))
    applied = (await sync.query(ConsumerSyncWorkflow.status)).snapshot  # asked of the registry
    assert applied is not None
    epoch, base = applied.epoch, applied.version

    async def ask(version: int, overrides: dict[str, str], forced: list[str]) -> SyncResult:
        request = SyncRequest(
            requested_by="test",
            snapshot=EndpointSnapshot(overrides=overrides, version=base + version, epoch=epoch),
            forced_hosts=forced,  # nothing listens there: an operator approved it past its probe
        )
        return await sync.execute_update(ConsumerSyncWorkflow.sync, request)

    newer = await ask(5, {bob: f"{sub}.77"}, [f"{sub}.77"])
    assert newer.error is None and any(f"@{sub}.77:" in p for p in newer.new_peers), newer
    assert f"@{sub}.77:" in world.configmap_text(C1)

    # A late request of an older change (v3) pins another address: ignored, v5 stays applied.
    older = await ask(3, {bob: f"{sub}.78"}, [f"{sub}.78"])
    assert older.error is None and not older.changed, older
    text = world.configmap_text(C1)
    assert f"@{sub}.77:" in text and f"@{sub}.78:" not in text

    # A newer snapshot without the pin: bob is back at the endpoint he publishes.
    cleared = await ask(6, {}, [])
    assert cleared.error is None and cleared.changed, cleared
    assert published in world.configmap_text(C1) and f"@{sub}.77:" not in world.configmap_text(C1)

    state = await sync.query(ConsumerSyncWorkflow.status)
    assert state.snapshot is not None and state.snapshot.version == base + 6


async def test_a_request_without_a_snapshot_asks_the_registry(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    code, _, err = await world.peersync("sync", "--consumer", "consumer-1")  # the CLI carries none
    assert code == 0, err
    state = await world.handle(consumer_sync_id("alice", C1)).query(ConsumerSyncWorkflow.status)
    assert state.snapshot is not None and state.snapshot.registry, state.snapshot
    assert state.snapshot.epoch, "the snapshot came from the registry, which names its epoch"
