"""The worker under deploy/kubernetes's RBAC: the devnet gives it the peersync-worker ServiceAccount, the
shipped ClusterRoles and one RoleBinding per managed namespace, and the kube emulator enforces them. Every
e2e test runs this way; these two show the grant is enough and that it is what is enforced."""

from __future__ import annotations

import pytest

from core.contracts import EndpointChangeResult, Phase
from core.ids import endpoint_change_id
from devnet import shipped_rbac
from devnet.testbed import World

pytestmark = pytest.mark.both_testbeds  # the real run: the real authorizer, denials from its audit log

WORKER_USER = f"system:serviceaccount:{shipped_rbac.NAMESPACE}:{shipped_rbac.WORKER_ACCOUNT}"


async def test_a_move_needs_nothing_beyond_the_shipped_rbac(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    height = await world.edit_validator("bob", f"p2p={world.subnet}.22")
    result = await world.finished(
        endpoint_change_id("alice", world.operator("bob"), height), EndpointChangeResult
    )
    assert result.phase == Phase.DONE and all(c.restarted for c in result.consumers), result
    assert world.kube().requests_denied == 0, world.kube().denials()


async def test_a_verb_missing_from_the_role_is_refused_and_reported(world: World) -> None:
    """Drop `watch` from peersync-consumer: the rollout wait is refused with the apiserver's 403, as the
    worker's own identity, and the change fails naming what is missing (not retried: it cannot heal)."""
    kube = world.kube()
    role = kube.get("ClusterRole", "", "peersync-consumer")
    assert role is not None
    for rule in role["rules"]:
        rule["verbs"] = [v for v in rule["verbs"] if v != "watch"]
    kube.apply(role)

    await world.start_worker()
    await world.registry_ready()
    height = await world.edit_validator("bob", f"p2p={world.subnet}.22")
    result = await world.finished(
        endpoint_change_id("alice", world.operator("bob"), height), EndpointChangeResult
    )

    assert result.phase == Phase.FAILED
    for consumer in result.consumers:
        assert consumer.error and "403" in consumer.error and 'cannot watch resource "' in consumer.error
    denied = kube.denials()
    assert denied and {(d["user"], d["verb"]) for d in denied} == {(WORKER_USER, "watch")}
