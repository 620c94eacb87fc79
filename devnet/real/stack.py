"""`peersync devnet --testbed real`: the devnet's contract (DIR/env, kubeconfigs, devnet.json, `ready`) with
the real components behind it, built by `make testbed` (issue 10):

- the chain is a real ICS provider (devnet.real.chain): the scenario's validators in genesis, its consumers
  created, opted in to and launched with the real ICS messages, so consumer ids come from the chain;
- each validator's consumer nodes are real cometbft nodes on its loopback endpoint (devnet.real.nodes); when
  the chain commits a new `p2p=` endpoint the validator's nodes move there, as the emulator's do;
- each cluster is a real control plane with kwok (devnet.real.kube), seeded with `kubectl apply` and bound
  with the shipped RBAC (devnet.real.cluster); a pod replaced by a rollout restarts its node, which then
  reads the peers its ConfigMap holds (devnet.real.pod_nodes).

What the real components cannot express is refused up front (RealTestbedUnsupported), never approximated.
Every start is a fresh world: new keys, a new chain, so earlier Temporal history is set aside.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import sys
from typing import Any

import aiohttp

from core.endpoint import parse_endpoint_syntax
from devnet.chain.endpoints import EndpointRejected, bindable, devnet_endpoint
from devnet.files import ClusterInfo
from devnet.real.binaries import binary
from devnet.real.chain import RealProvider
from devnet.real.chain import ValidatorSpec as ChainValidator
from devnet.real.cluster import seed_real_cluster
from devnet.real.kube import RealKube, RealKubeInfo
from devnet.real.nodes import NodeSpec, RealConsumerNodes
from devnet.real.pod_nodes import RealNodeRestarts
from devnet.scenario import ClusterSpec, Scenario
from devnet.stack import Devnet

log = logging.getLogger(__name__)

LAUNCHABLE = ("CONSUMER_PHASE_LAUNCHED", "CONSUMER_PHASE_REGISTERED")
FOLLOW_SECONDS = 0.5
# The pods' terminationGracePeriodSeconds: a real (kwok) pod waits it out on every restart; 30 s (Kubernetes'
# default) would make each devnet rollout half a minute of waiting.
POD_GRACE_SECONDS = 2


class RealTestbedUnsupported(ValueError):
    """The scenario asks for something the real components cannot be made to show."""


def check_scenario(scenario: Scenario) -> None:
    """Refuse, with the reason, what the real testbed would otherwise have to fake."""
    problems = []
    if scenario.bech32_prefix != "cosmos":
        problems.append(f"bech32_prefix {scenario.bech32_prefix!r}: the provider daemon uses 'cosmos'")
    for v in scenario.validators:
        if v.status != "BOND_STATUS_BONDED" or v.jailed:
            problems.append(f"validator {v.moniker}: only bonded, unjailed validators (genesis gentx)")
        if v.endpoint and parse_endpoint_syntax(v.endpoint).port is not None:
            problems.append(
                f"validator {v.moniker}: endpoint {v.endpoint} has a port; real nodes listen on each "
                "consumer's upstream port, so give the host only"
            )
    for c in scenario.consumers:
        if c.phase not in LAUNCHABLE:
            problems.append(f"consumer {c.chain_id}: phase {c.phase} (the real testbed makes {LAUNCHABLE})")
        if c.phase == "CONSUMER_PHASE_LAUNCHED" and not c.opted_in:
            problems.append(f"consumer {c.chain_id}: a chain nobody opted in to cannot launch")
    if problems:
        raise RealTestbedUnsupported("the real testbed cannot run this scenario: " + "; ".join(problems))


def node_specs(scenario: Scenario) -> list[NodeSpec]:
    """One node per (opted-in validator with an endpoint, launched consumer), validators in scenario order
    (so each chain's first node, which holds > 2/3 of its power, is its first opted-in validator)."""
    specs = []
    for consumer in scenario.consumers:
        if consumer.phase != "CONSUMER_PHASE_LAUNCHED":
            continue
        for v in scenario.validators:
            if v.moniker in consumer.opted_in and v.endpoint:
                host = parse_endpoint_syntax(v.endpoint).host
                specs.append(NodeSpec(moniker=v.moniker, chain_id=consumer.chain_id, host=host))
    return specs


class RealDevnet(Devnet):
    testbed = "real"

    def __init__(
        self,
        *args: Any,
        pod_grace_seconds: int = POD_GRACE_SECONDS,
        follow_endpoints: bool = True,
        **kwargs: Any,
    ) -> None:
        """`follow_endpoints`: move a validator's nodes when the chain publishes its new endpoint; off for a
        test that places the nodes itself (e.g. publishes an endpoint where nothing listens)."""
        super().__init__(*args, **kwargs)
        self.follow_endpoints = follow_endpoints
        check_scenario(self.scenario)
        self.root = self.state_dir / "real"
        self.pod_grace_seconds = pod_grace_seconds
        self.provider: RealProvider | None = None
        self.nodes: RealConsumerNodes | None = None
        self.real_kubes: dict[str, RealKubeInfo] = {}
        self.restarts: dict[str, RealNodeRestarts] = {}  # cluster id -> its pod -> node link
        self._tasks: list[asyncio.Task[None]] = []

    def _keep_history_only_for_this_code(self) -> None:
        """A fresh chain has new keys and heights: workflows of an earlier world would act on ghosts."""
        db = self.state_dir / "temporal.db"
        if db.exists():
            db.replace(db.with_name("temporal.db.previous-world"))
            print(
                f"devnet: a new real world; previous Temporal history moved to {db}.previous-world",
                file=sys.stderr,
            )
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)

    def _manifest_extras(self) -> dict[str, object]:
        assert self.provider is not None
        return {"provider_home": self.provider.home, "provider_cli": binary("interchain-security-pd")}

    async def _start_chain(self) -> tuple[str, str]:
        """The provider (with its consumers), the nodes and every cluster's control plane, side by side."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._start_provider())
            group.create_task(self._start_nodes())
            for cluster in self.scenario.clusters:
                group.create_task(self._start_control_plane(cluster))
        if self.follow_endpoints:
            self._spawn(self._follow_endpoints())
        assert self.provider is not None
        return self.provider.info.rpc_url, self.provider.info.rest_url

    async def _start_provider(self) -> None:
        validators = [
            ChainValidator(moniker=v.moniker, details=v.published_details()) for v in self.scenario.validators
        ]
        self.provider = await self._stack.enter_async_context(
            RealProvider(self.root / "chain", validators, chain_id=self.scenario.chain_id)
        )
        # Side by side: each key's txs are broadcast in turn and share blocks (RealProvider.tx), and each
        # consumer's id is read from its own create tx, in whatever order the chain numbers them.
        created = await asyncio.gather(
            *(
                self.provider.create_consumer(
                    c.chain_id, c.opted_in, launch=c.phase == "CONSUMER_PHASE_LAUNCHED"
                )
                for c in self.scenario.consumers
            )
        )
        ids = {
            c.chain_id: consumer_id for c, consumer_id in zip(self.scenario.consumers, created, strict=True)
        }
        # Namespaces are labelled with the ids the chain gave, whatever the scenario guessed.
        self.scenario = self.scenario.model_copy(
            update={
                "consumers": [
                    c.model_copy(update={"consumer_id": ids[c.chain_id]}) for c in self.scenario.consumers
                ]
            }
        )

    async def _start_nodes(self) -> None:
        self.nodes = await self._stack.enter_async_context(
            RealConsumerNodes(self.root / "nodes", node_specs(self.scenario))
        )

    async def _start_control_plane(self, cluster: ClusterSpec) -> None:
        self.real_kubes[cluster.id] = await self._stack.enter_async_context(
            RealKube(self.root / f"kube-{cluster.id}")
        )

    async def _start_cluster(self, index: int, cluster: ClusterSpec) -> ClusterInfo:
        info = self.real_kubes[cluster.id]
        seeded = await seed_real_cluster(
            info,
            self.scenario,
            cluster,
            self.root / f"seed-{cluster.id}",
            grace_seconds=self.pod_grace_seconds,
        )
        suffix = "" if index == 0 else f"-{cluster.id}"
        kubeconfig = self.state_dir / f"kubeconfig{suffix}"
        shutil.copyfile(info.kubeconfig, kubeconfig)
        worker_kubeconfig = self.state_dir / f"kubeconfig-worker{suffix}"
        shutil.copyfile(seeded.worker_kubeconfig, worker_kubeconfig)
        assert self.nodes is not None
        self.restarts[cluster.id] = RealNodeRestarts(info.kubeconfig, self.nodes, seeded.namespaces)
        self._spawn(self.restarts[cluster.id].run())
        return ClusterInfo(
            id=cluster.id,
            validator_moniker=cluster.validator,
            local_validator=self._operator_of(cluster.validator),
            kube_url=info.url,
            kubeconfig=kubeconfig,
            worker_kubeconfig=worker_kubeconfig,
            env_file=self.state_dir / f"env{suffix}",
            namespaces=seeded.namespaces,
        )

    def _operator_of(self, moniker: str) -> str:
        assert self.provider is not None
        return self.provider.info.validators[moniker].operator

    async def _kube_answers(self, session: aiohttp.ClientSession, info: ClusterInfo) -> None:
        ca = ssl.create_default_context(cafile=str(self.real_kubes[info.id].ca_file))
        async with session.get(f"{info.kube_url}/version", ssl=ca) as resp:
            if resp.status != 200:
                raise RuntimeError(f"{info.kube_url}/version answered HTTP {resp.status}")

    # ---- background links -----------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.append(task)

        async def cancel() -> None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        self._stack.push_async_callback(cancel)

    async def _follow_endpoints(self) -> None:
        """A validator that publishes a new loopback endpoint has moved its nodes there (the emulator's
        devnet.chain.endpoints.place_nodes): when a validator's published host changes, its nodes move."""
        assert self.provider is not None and self.nodes is not None
        monikers = {key[0] for key in self.nodes.nodes}
        published: dict[str, str] = {}
        while True:
            await asyncio.sleep(FOLLOW_SECONDS)
            try:
                status, body = await self.provider.rest(
                    "/cosmos/staking/v1beta1/validators?pagination.limit=500"
                )
            except (aiohttp.ClientError, OSError):
                continue
            for v in body.get("validators") or [] if status == 200 else []:
                moniker = v["description"]["moniker"]
                try:
                    host = devnet_endpoint(
                        v["description"].get("details") or "", self.scenario.allow_cidrs
                    ).host
                except EndpointRejected:
                    continue  # published nothing usable: the nodes stay where they are
                before, published[moniker] = published.get(moniker), host
                if moniker in monikers and before is not None and host != before and bindable(host):
                    try:
                        await self.nodes.move(moniker, host)
                    except Exception:
                        log.exception("moving %s's nodes to %s failed", moniker, host)

    async def move_nodes(self, moniker: str, host: str) -> None:
        """Move `moniker`'s nodes to `host` now (a validator moves its nodes before it publishes the move)."""
        assert self.nodes is not None
        if any(m == moniker and n.host != host for (m, _), n in self.nodes.nodes.items()):
            await self.nodes.move(moniker, host)
