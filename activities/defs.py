"""The Temporal activities: thin, typed adapters from one input model to the operations that do the work.

Kubernetes calls are synchronous, so those activities are plain `def`s that the worker runs in a thread
pool; chain and Temporal calls are async. Errors that no retry can fix become non-retryable
ApplicationErrors whose type is listed in workflows/policies.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import cached_property
from typing import Literal, TypeVar

import aiohttp
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory, CancelledError
from temporalio.service import RPCError, RPCStatusCode

from activities.catch_up import CatchUpTimeoutError, wait_caught_up
from activities.chain_rest import ChainRest
from activities.chain_view import edit_heights, launched_memberships, validator_records
from activities.config import ActivityConfig
from activities.discovery import affected_consumers
from activities.drift import ChainView, drift_of
from activities.kube_ops import (
    Kube,
    NotManagedError,
    RolloutFailedError,
    WorkloadRefusedError,
    api_client,
    explain,
)
from activities.live_peers import DialRefusedError, RpcDisabledError, dial_and_verify
from activities.node_discovery import discovered_node_ids
from activities.probe import probe
from activities.rollout_status import RolloutVerdict
from activities.validation import ChangeRefused, validated_endpoint
from core.contracts import (
    ConsumerRef,
    DesiredPeers,
    Discovery,
    EndpointSnapshot,
    ProvedNodeId,
    ValidatedChange,
    ValidatorRecord,
)
from core.desired import desired_peers
from core.endpoint import parse_endpoint
from core.ids import registry_id
from core.peer_formats import LayoutError, PeerFormatError
from core.peers import parse_peer
from core.policy import EndpointPolicy
from core.registry_state import changed_buckets
from workflows import metrics, policies
from workflows.activity_contracts import (
    AppliedPeersOut,
    CatchUpInput,
    CatchUpOutput,
    CheckDriftInput,
    ConsumerInput,
    DialInput,
    DialOutput,
    DiscoverInput,
    PlanInput,
    PlanOutput,
    ProbeInput,
    ProbeOutput,
    ProbePeersInput,
    ProbePeersOutput,
    ReadAppliedInput,
    RefreshInput,
    RefreshOutput,
    RestartInput,
    RestartOutput,
    RestartWaitInput,
    RestartWaitOutput,
    ValidateInput,
    WaitInput,
    WaitOutput,
    WriteInput,
    WriteOutput,
)
from workflows.local_steps import peers_to_probe
from workflows.reconcile_contracts import DriftReport, DriftRow

T = TypeVar("T")
WAIT_CHUNK_SECONDS = 5
# The node-id discovery a refresh runs (source `discovered`): bounded well inside the refresh's local attempt.
DISCOVERY_SECONDS = 5.0
# How long live-dialled nodes get to list their new peers in net_info before the dial is reported as is.
LIVE_VERIFY_SECONDS = 30.0


# Refusals of bad input are expected outcomes, not worker faults: BENIGN keeps them out of the worker's
# error logs and failure metrics.
_BENIGN = frozenset({policies.INVALID_ENDPOINT, policies.UNKNOWN_VALIDATOR, policies.INVALID_INPUT})


def _non_retryable(kind: str, message: str) -> ApplicationError:
    category = ApplicationErrorCategory.BENIGN if kind in _BENIGN else ApplicationErrorCategory.UNSPECIFIED
    return ApplicationError(message, type=kind, non_retryable=True, category=category)


def _kube_call(fn: Callable[[], T]) -> T:
    """Map the cluster's refusals onto the error types the retry policies know."""
    try:
        return fn()
    except NotManagedError as exc:
        raise _non_retryable(policies.NOT_MANAGED, str(exc)) from None
    except LayoutError as exc:
        raise _non_retryable(policies.NOT_MANAGED, f"bad namespace annotations: {exc}") from None
    except PeerFormatError as exc:
        # A hand edit peersync will not parse (shell expansion, no assignment): only a person can fix it.
        raise _non_retryable(policies.UNWRITABLE_PEERS, f"cannot rewrite the peers: {exc}") from None
    except WorkloadRefusedError as exc:
        raise _non_retryable(policies.WORKLOAD_REFUSED, str(exc)) from None
    except RolloutFailedError as exc:
        raise _non_retryable(policies.ROLLOUT_FAILED, str(exc)) from None
    except ApiException as exc:
        retry = exc.status is None or exc.status >= 500 or exc.status in (409, 429)
        raise ApplicationError(explain(exc), type="KubeApiError", non_retryable=not retry) from None


class PeersyncActivities:
    """All activities of one worker; they share its activity config, cluster client and Temporal client."""

    def __init__(self, settings: ActivityConfig, client: Client | None = None) -> None:
        self.settings = settings
        self.client = client
        self.policy = EndpointPolicy.from_setting(settings.endpoint_allow_cidrs)

    @cached_property
    def kube(self) -> Kube:
        return Kube(api_client(self.settings.kubeconfig), self.settings.cluster_id)

    def chain(self) -> ChainRest:
        return ChainRest(self.settings.chain_rest_url)

    def all(self) -> list[Callable[..., object]]:
        return [
            self.refresh_registry,
            self.validate_change,
            self.discover_affected_consumers,
            self.probe_endpoint,
            self.probe_peers,
            self.compute_desired_peers,
            self.read_applied_peers,
            self.plan_sync,
            self.dial_peers,
            self.write_peers,
            self.restart_workload,
            self.wait_rollout,
            self.wait_caught_up,
            self.wait_restarted,
            self.check_drift,
        ]

    # ---- chain -------------------------------------------------------------------------------------

    async def records(self, chain: ChainRest) -> list[ValidatorRecord]:
        return await validator_records(chain, self.policy, self.settings.bech32_prefix)

    @activity.defn
    async def refresh_registry(self, inp: RefreshInput) -> RefreshOutput:
        """Read every validator; return only the buckets that differ from what the registry holds."""
        async with self.chain() as chain:
            status = await chain.get("/cosmos/base/tendermint/v1beta1/blocks/latest")
            height = int(status["block"]["header"]["height"])
            records = await self.records(chain)
            buckets = changed_buckets(records, inp.known)
            known_ops = {r.operator_address for bucket in buckets.values() for r in bucket}
            # Only the changed validators need the exact height of their edit (for deterministic ids).
            heights = (
                await edit_heights(chain, sorted(known_ops), self.settings.bech32_prefix) if inp.known else {}
            )
            discovered = await self._discover_node_ids(chain, records, inp.discovered)
        return RefreshOutput(height=height, buckets=buckets, edit_heights=heights, discovered=discovered)

    async def _discover_node_ids(
        self, chain: ChainRest, records: list[ValidatorRecord], known: dict[str, dict[str, str]]
    ) -> dict[str, dict[str, ProvedNodeId]]:
        """Proofs for the chains run here with node ids `discovered`. Best effort: a cluster or chain that does
        not answer leaves the proofs the registry holds as they are, and never fails the refresh."""
        try:
            async with asyncio.timeout(DISCOVERY_SECONDS):  # the refresh itself must never wait on this
                namespaces, _ = await asyncio.to_thread(lambda: self.kube.managed_namespaces())
                chains = {ns.chain_id for ns in namespaces if ns.layout.node_ids == "discovered"}
                if not chains:
                    return {}
                memberships = await launched_memberships(chain)
                return await discovered_node_ids(
                    records, memberships, chains, self.settings.local_validator, known, self.policy
                )
        except Exception as exc:  # any failure here (no cluster config, API down) must not stop the refresh
            activity.logger.warning("node ids not discovered this refresh: %s", exc)
            return {}

    @activity.defn
    async def validate_change(self, inp: ValidateInput) -> ValidatedChange:
        req = inp.request
        async with self.chain() as chain:
            records = await self.records(chain)
        try:
            record, endpoint = validated_endpoint(records, req, self.policy)
        except ChangeRefused as exc:
            raise _non_retryable(exc.kind, exc.message) from None
        return ValidatedChange(
            operator_address=record.operator_address,
            moniker=record.moniker,
            endpoint=endpoint.render(),
            host=endpoint.host_literal,
            require_approval=self.settings.require_approval,
            probe_budget_seconds=self.settings.probe_budget.total_seconds(),
        )

    @activity.defn
    async def discover_affected_consumers(self, inp: DiscoverInput) -> Discovery:
        """Launched consumers the validator is opted in to that this cluster runs, and why others are not."""
        async with self.chain() as chain:
            records = {r.operator_address: r for r in await self.records(chain)}
            memberships = await launched_memberships(chain)
        record = records.get(inp.operator_address)
        if record is None:
            raise _non_retryable(
                policies.UNKNOWN_VALIDATOR, f"validator {inp.operator_address} is not on the chain"
            )
        namespaces, broken = await asyncio.to_thread(lambda: _kube_call(self.kube.managed_namespaces))
        return affected_consumers(record, memberships, namespaces, broken, self.settings.cluster_id)

    @activity.defn
    async def probe_endpoint(self, inp: ProbeInput) -> ProbeOutput:
        endpoint = parse_endpoint(inp.endpoint, self.policy)
        report = await probe(endpoint, inp.ports, self.policy, expected_ids=inp.expected_ids)
        if not report.reachable:
            metrics.probe_failures("endpoint")
            # Retryable on purpose: the policy's backoff is the "wait for the node to come up" loop. Benign:
            # an expected wait, not a worker error (no traceback in the log for every attempt).
            raise ApplicationError(
                report.summary(), type=policies.UNREACHABLE, category=ApplicationErrorCategory.BENIGN
            )
        return ProbeOutput(reachable=True, summary=report.summary())

    @activity.defn
    async def probe_peers(self, inp: ProbePeersInput) -> ProbePeersOutput:
        """Dial every peer at once; report those that did not answer (no retry: the caller decides)."""
        parsed = [parse_peer(p) for p in inp.peers]
        reports = await asyncio.gather(
            *(probe(p.endpoint, [p.port], self.policy, expected_ids={p.port: p.node_id}) for p in parsed)
        )
        unreachable = {
            peer: r.summary() for peer, r in zip(inp.peers, reports, strict=True) if not r.reachable
        }
        metrics.probe_failures("peer", len(unreachable))
        return ProbePeersOutput(unreachable=unreachable)

    @activity.defn
    async def compute_desired_peers(self, inp: ConsumerInput) -> DesiredPeers:
        """The chain now: opted-in validators of the consumer minus the local one, at their endpoints, with
        the registry's pins the sync carries (inp.pins)."""
        pinned = inp.pins if inp.pins is not None else await self.pinned()
        async with self.chain() as chain:
            records = await self.records(chain)
            opted = await chain.opted_in(inp.consumer.consumer_id)
        # The namespace's node-id source (peersync.io/node-ids) is read now: an annotation follows at once.
        ns = await asyncio.to_thread(_kube_call, lambda: self.kube.managed_namespace(inp.consumer.namespace))
        return desired_peers(
            records,
            opted,
            pinned,
            self.settings.local_validator,
            inp.consumer.chain_id,
            self.policy,
            source=ns.layout.node_ids,
        )

    async def pinned(self) -> EndpointSnapshot:
        """What the registry holds beyond the chain: operator overrides, and last-valid endpoints.

        Upgrade path only: today's workflows hand the snapshot in (`pins`); an activity scheduled by the
        previous release carries none and asks here, as that release did. Remove with the next release.

        Only "no registry exists" (NOT_FOUND: never started, or long gone) means the chain alone decides.
        A registry that exists but does not answer (stuck task, no worker, Temporal overloaded) raises a
        retryable error: acting on an empty answer would revert overrides and drop validators. A closed
        (terminated, failed) registry still answers from its history: what it knew is still known."""
        if self.client is None:  # a caller with no Temporal (validation only): there is no registry to ask
            return EndpointSnapshot(registry=False)
        wf_id = registry_id(self.settings.cluster_id)
        try:
            return await self.client.get_workflow_handle(wf_id).query(
                "pinned", result_type=EndpointSnapshot, rpc_timeout=policies.REGISTRY_QUERY_TIMEOUT
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                activity.logger.info("%s does not exist (yet): the chain's endpoints alone decide", wf_id)
                return EndpointSnapshot(registry=False)
            reason = exc.message
        except WorkflowQueryFailedError as exc:
            reason = f"query failed: {exc.message}"
        raise ApplicationError(f"{wf_id} did not answer: {reason}", type=policies.REGISTRY_UNAVAILABLE)

    @activity.defn
    async def check_drift(self, inp: CheckDriftInput) -> DriftReport:
        """Every managed namespace: clean, drifted (and why), or skipped (and why). Reads only."""
        pinned = inp.pins if inp.pins is not None else await self.pinned()
        async with self.chain() as chain:
            records = await self.records(chain)
            launched = await launched_memberships(chain)
        view = ChainView(
            records=records,
            opted_in={m.chain_id: m.opted_in for m in launched},
            consumer_ids={m.chain_id: m.consumer_id for m in launched},
        )

        def scan() -> list[DriftRow]:
            managed, broken = _kube_call(self.kube.managed_namespaces)
            rows = [
                DriftRow(consumer=None, namespace=b.name, state="skipped", reason=b.reason) for b in broken
            ]
            for ns in managed:
                try:
                    row = drift_of(self.kube, ns, view, pinned, self.settings.local_validator, self.policy)
                except (ApiException, WorkloadRefusedError, LayoutError) as exc:
                    # The client's str() of an ApiException carries the response headers and body.
                    reason = explain(exc) if isinstance(exc, ApiException) else str(exc)
                    row = DriftRow(consumer=None, namespace=ns.name, state="skipped", reason=reason)
                rows.append(row.model_copy(update={"namespace": ns.name}))
            return rows

        return DriftReport(rows=await asyncio.to_thread(scan))

    # ---- cluster -----------------------------------------------------------------------------------

    @activity.defn
    async def plan_sync(self, inp: PlanInput) -> PlanOutput:
        """compute_desired_peers, read_applied_peers and probe_peers of the new peers, as one step: a sync's
        reads cost one local activity, not three. Each does exactly what it does alone."""
        desired = await self.compute_desired_peers(inp)
        read = ReadAppliedInput(consumer=inp.consumer, desired=desired.peers)
        applied = await asyncio.to_thread(self.read_applied_peers, read)
        desired = desired.keeping(applied.peers)  # a validator with no endpoint in effect keeps its entry
        new = peers_to_probe(desired.peers, applied.peers, set(inp.forced_hosts))
        probed = await self.probe_peers(ProbePeersInput(peers=new)) if new else None
        return PlanOutput(desired=desired, applied=applied, unreachable=probed.unreachable if probed else {})

    @activity.defn
    def read_applied_peers(self, inp: ReadAppliedInput) -> AppliedPeersOut:
        applied = _kube_call(lambda: self.kube.read_applied(inp.consumer.namespace, inp.desired))
        return AppliedPeersOut(
            peers=applied.peers,
            problems=applied.problems,
            peers_hash=applied.peers_hash,
            kept=applied.kept,
            workload_hash=applied.workload_hash,
            strategy=applied.layout.strategy,
        )

    @activity.defn
    async def dial_peers(self, inp: DialInput) -> DialOutput:
        """Hand the running nodes their new peers (no restart) and check they connect."""
        namespace = inp.consumer.namespace
        urls = await asyncio.to_thread(_kube_call, lambda: self.kube.node_rpc_urls(namespace))
        if not urls:
            raise ApplicationError(f"no ready pod of the workload in {namespace} to dial", type="NoReadyPod")
        try:
            reports = await dial_and_verify(urls, inp.peers, LIVE_VERIFY_SECONDS, inp.verify)
        except RpcDisabledError as exc:
            raise _non_retryable(policies.WORKLOAD_REFUSED, str(exc)) from None
        except (DialRefusedError, aiohttp.ClientError, TimeoutError) as exc:
            raise ApplicationError(f"dial_peers in {namespace}: {exc}", type="DialFailed") from None
        if inp.record:
            await asyncio.to_thread(_kube_call, lambda: self.kube.mark_rolled(namespace, inp.peers_hash))
        waiting = sorted({peer for r in reports for peer in r.not_connected})
        message = f"dialed {len(inp.peers)} peers on {len(urls)} node(s)"
        if waiting:
            message += f"; not connected yet: {', '.join(waiting)}"
        activity.logger.info("%s: %s", namespace, message, extra=_context(inp.consumer, live=True))
        return DialOutput(nodes=len(urls), message=message)

    @activity.defn
    def write_peers(self, inp: WriteInput) -> WriteOutput:
        out = _kube_call(lambda: self.kube.write_peers(inp.consumer.namespace, inp.peers))
        if out.written:
            activity.logger.info(
                "wrote %d peers to %s (resourceVersion %s)",
                len(inp.peers),
                inp.consumer.namespace,
                out.resource_version,
                extra=_context(inp.consumer, peers_hash=out.peers_hash),
            )
        return WriteOutput(written=out.written, peers_hash=out.peers_hash, all_peers=out.all_peers)

    @activity.defn
    def restart_workload(self, inp: RestartInput) -> RestartOutput:
        try:
            out = _kube_call(
                lambda: self.kube.restart(inp.consumer.namespace, inp.peers_hash, inp.restarted_at)
            )
        except ApplicationError as exc:
            if exc.type == policies.WORKLOAD_REFUSED:
                metrics.restart_refused(inp.consumer.chain_id)
            raise
        activity.logger.info(
            "%s: %s (generation %d)",
            inp.consumer.namespace,
            out.message,
            out.generation,
            extra=_context(inp.consumer, peers_hash=inp.peers_hash, restarted=out.restarted),
        )
        return RestartOutput(restarted=out.restarted, generation=out.generation, message=out.message)

    @activity.defn
    def wait_rollout(self, inp: WaitInput) -> WaitOutput:
        """Watch in short chunks so heartbeats (which carry cancellation) keep flowing on a quiet rollout.

        The first attempt's start time travels in the heartbeat details, so an attempt that resumes after a
        worker crash keeps the original deadline (StatefulSets have none of their own)."""
        details = activity.info().heartbeat_details
        resumed = WaitProgress.model_validate(details[0]) if details else None
        started = resumed.started_at if resumed else time.time()
        deadline = started + inp.deadline_seconds
        first_look = True
        while True:
            if activity.is_cancelled():
                raise CancelledError("rollout wait cancelled")
            progress = WaitProgress(started_at=started, message="")

            def beat(v: RolloutVerdict, progress: WaitProgress = progress) -> None:
                progress.message = v.message
                activity.heartbeat(progress.model_dump())

            verdict = _kube_call(
                lambda: self.kube.wait_rollout(inp.consumer.namespace, WAIT_CHUNK_SECONDS, beat)
            )
            beat(verdict)
            if verdict.done:
                if inp.peers_hash:
                    _kube_call(lambda: self.kube.mark_rolled(inp.consumer.namespace, inp.peers_hash or ""))
                took = time.time() - started
                # A retry (worker crash, lost heartbeat) that finds it done: it ended unwatched, when is unknown.
                # (The first attempt's heartbeat details may never have reached the server: attempt decides.)
                if activity.info().attempt > 1 and first_look:
                    within = f", within {took:.1f}s" if resumed else ""
                    message = f"{verdict.message} (done when the wait resumed after an interruption{within})"
                    seconds = None
                else:
                    message, seconds = f"{verdict.message} after {took:.1f}s", took
                activity.logger.info("%s: %s", inp.consumer.namespace, message, extra=_context(inp.consumer))
                return WaitOutput(message=message, seconds=seconds)
            first_look = False
            if time.time() > deadline:
                raise _non_retryable(
                    policies.ROLLOUT_FAILED,
                    f"rollout of {inp.consumer.namespace} not complete after {inp.deadline_seconds:.0f}s: {verdict.message}",
                )

    @activity.defn
    def wait_restarted(self, inp: RestartWaitInput) -> RestartWaitOutput:
        """After a restart: wait_rollout, then wait_caught_up, in one activity, so the sync takes one workflow
        task and one dispatch fewer per restart. Each wait keeps its own deadline, judgement and errors; a
        resumed attempt (worker crash) re-checks the rollout (done at its first look) and keeps the catch-up
        deadline counted from where the first attempt began it (the heartbeat details carry it)."""
        details = activity.info().heartbeat_details
        resumed = WaitProgress.model_validate(details[0]) if details else None
        rolled = self.wait_rollout(inp.rollout)
        started = resumed.started_at if resumed is not None and resumed.phase == "catch-up" else time.time()
        # A sync activity runs in its own worker thread: the catch-up's async looks get a loop of their own.
        try:
            caught = asyncio.run(self._caught_up(inp.catch_up, started))
        except ApplicationError as exc:
            # The rollout did complete: the failure carries it, so the sync still reports and counts it.
            raise ApplicationError(
                exc.message,
                rolled.model_dump(mode="json"),
                type=exc.type,
                non_retryable=exc.non_retryable,
                category=exc.category,
            ) from None
        return RestartWaitOutput(rollout=rolled, caught_up=caught)

    @activity.defn
    async def wait_caught_up(self, inp: CatchUpInput) -> CatchUpOutput:
        """After a restart: every expected pod Ready and its node caught up with an advancing height.

        The deadline is the input's or PEERSYNC_CATCH_UP_DEADLINE, whichever is shorter, counted from the first
        attempt (its start travels in the heartbeat details); past it the sync fails with CatchUpFailed."""
        details = activity.info().heartbeat_details
        started = WaitProgress.model_validate(details[0]).started_at if details else time.time()
        return await self._caught_up(inp, started)

    async def _caught_up(self, inp: CatchUpInput, started: float) -> CatchUpOutput:
        namespace = inp.consumer.namespace
        deadline = min(inp.deadline_seconds, self.settings.catch_up_deadline.total_seconds())
        expected, ready = await asyncio.to_thread(_kube_call, lambda: self.kube.ready_pods_reader(namespace))

        async def ready_urls() -> list[str]:
            return await asyncio.to_thread(_kube_call, ready)

        def beat(message: str) -> None:
            progress = WaitProgress(started_at=started, message=message, phase="catch-up")
            activity.heartbeat(progress.model_dump())

        try:
            verdict = await wait_caught_up(ready_urls, expected, started + deadline, beat)
        except CatchUpTimeoutError as exc:
            raise _non_retryable(
                policies.CATCH_UP_FAILED,
                f"nodes of {namespace} not caught up after {deadline:.0f}s: {exc}",
            ) from None
        took = time.time() - started
        message = f"{verdict.message} after {took:.1f}s"
        activity.logger.info("%s: %s", namespace, message, extra=_context(inp.consumer))
        return CatchUpOutput(message=message, seconds=took)


class WaitProgress(BaseModel):
    """Heartbeat details of wait_rollout, wait_caught_up and wait_restarted (they come back as a plain dict:
    re-validated on resume); `phase` tells wait_restarted which of its two waits a resumed attempt was in."""

    started_at: float
    message: str
    phase: Literal["rollout", "catch-up"] = "rollout"


def _context(consumer: ConsumerRef, **more: object) -> dict[str, object]:
    """Log fields naming the consumer, beside the SDK's `temporal_activity` context."""
    return {"consumer": consumer.namespace, "chain_id": consumer.chain_id, **more}
