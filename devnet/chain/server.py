"""`ChainEmulator`: the provider chain of a devnet — CometBFT RPC + websocket + admin on one port, the SDK
REST gateway on another, and the emulated consumer nodes of every opted-in validator.

Blocks come from two sources: a clock (one empty block every `block_time` seconds, pausable) and the
admin API (one block per tx). Both go through `_commit`, which commits the block, runs devnet hooks
(node moves), publishes the block's events to websocket subscribers and then re-places consumer nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from devnet.chain import cmt_json
from devnet.chain.admin import Admin, admin_errors
from devnet.chain.encoding import rfc3339_nano, upper_hex
from devnet.chain.endpoints import place_nodes
from devnet.chain.events import Event
from devnet.chain.faults import Faults
from devnet.chain.models import ConsumerView, DevnetState, NodeView, TxSubmitted, ValidatorView
from devnet.chain.nodes import NodeFleet, ports
from devnet.chain.pubsub import EventBus
from devnet.chain.rest import ProviderREST
from devnet.chain.rpc import ProviderRPC
from devnet.chain.state import Block, ChainState, Consumer, PendingTx
from devnet.chain.txs import ExecResult
from devnet.chain.websocket import WebsocketHub
from devnet.scenario import Scenario

log = logging.getLogger(__name__)

AfterCommit = Callable[[ExecResult], None]
SHUTDOWN_TIMEOUT = 0.5


@dataclass
class _Queued:
    pending: PendingTx
    after_commit: AfterCommit | None


def _loopback_only(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"ChainEmulator binds loopback addresses only, got {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"ChainEmulator binds loopback addresses only, got {host!r}")
    return str(address)


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class ChainEmulator:
    """The provider chain of a devnet. Public surface:

    * `await start()` / `await stop()` (stop closes every listener, websocket and task);
    * `rpc_url`, `rest_url`, `ws_url`, `rpc_port`, `rest_port` (valid once started), `height`,
      `block_time`, `paused`;
    * `state()` -> `DevnetState` (call it on the emulator's loop; other threads use `GET /devnet/state`);
    * the admin API under `/devnet/` on the RPC port (see `admin.py`).
    Only loopback addresses are ever bound; port 0 picks a free port.
    """

    def __init__(
        self,
        scenario: Scenario,
        host: str = "127.0.0.1",
        rpc_port: int = 0,
        rest_port: int = 0,
        block_time: float | None = None,
        initial_height: int = 1,
    ) -> None:
        self.scenario = scenario
        self.host = _loopback_only(host)
        self._requested_ports = (rpc_port, rest_port)
        self._block_time = block_time if block_time is not None else scenario.block_time
        if self._block_time <= 0:
            raise ValueError("block_time must be positive")
        self.chain = ChainState(scenario, initial_height)
        genesis = {v.moniker: v for v in self.chain.ordered_validators()}  # unique in a scenario
        for spec in scenario.validators:
            place_nodes(genesis[spec.moniker], spec.published_details(), scenario.allow_cidrs, reachable=True)
        self.faults = Faults()
        self.bus = EventBus()
        self.nodes = NodeFleet(self.chain, self.faults)
        self.rpc: ProviderRPC | None = None
        self._ports: tuple[int, int] | None = None
        self._runners: list[web.AppRunner] = []
        self._hub: WebsocketHub | None = None
        self._clock: asyncio.Task[None] | None = None
        self._clock_wake = asyncio.Event()
        self._paused = False
        self._mempool: list[_Queued] = []
        self._commit_lock = asyncio.Lock()

    # ---- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._ports is not None:
            raise RuntimeError("ChainEmulator already started")
        rpc_sock = _bound_socket(self.host, self._requested_ports[0])
        try:
            rest_sock = _bound_socket(self.host, self._requested_ports[1])
        except OSError:
            rpc_sock.close()
            raise
        self._ports = (rpc_sock.getsockname()[1], rest_sock.getsockname()[1])
        self.rpc = ProviderRPC(self.chain, f"tcp://{self.host}:{self._ports[0]}")
        self._hub = WebsocketHub(self.bus, self.rpc.registry)

        rpc_app = web.Application(middlewares=[admin_errors, self.faults.middleware("rpc")])
        Admin(self).install(rpc_app)
        rpc_app.router.add_get("/websocket", self._hub.handle)
        self.rpc.registry.install(rpc_app)
        rest_app = ProviderREST(self.chain, self.faults, self.rpc).app

        for app, sock in ((rpc_app, rpc_sock), (rest_app, rest_sock)):
            runner = web.AppRunner(
                app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT
            )
            await runner.setup()
            self._runners.append(runner)
            await web.SockSite(runner, sock).start()
        await self.nodes.start()
        self._clock = asyncio.create_task(self._produce_blocks(), name="chain-emulator-clock")
        log.info(
            "chain emulator up: rpc %s rest %s (%d validators, %d consumers, %d nodes)",
            self.rpc_url,
            self.rest_url,
            len(self.chain.validators),
            len(self.chain.consumers),
            len(self.nodes.nodes),
        )

    async def stop(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock
            self._clock = None
        if self._hub is not None:
            await self._hub.close_all()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        await self.nodes.stop()

    # ---- addresses ---------------------------------------------------------------------------------------

    def _port(self, index: int) -> int:
        if self._ports is None:
            raise RuntimeError("ChainEmulator is not started")
        return self._ports[index]

    @property
    def rpc_port(self) -> int:
        return self._port(0)

    @property
    def rest_port(self) -> int:
        return self._port(1)

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.rpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.rpc_port}/websocket"

    @property
    def height(self) -> int:
        return self.chain.height

    @property
    def block_time(self) -> float:
        return self._block_time

    @property
    def paused(self) -> bool:
        return self._paused

    # ---- block production --------------------------------------------------------------------------------

    def set_block_time(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("block time must be positive")
        self._block_time = seconds
        self._clock_wake.set()

    def pause(self) -> None:
        self._paused = True

    async def resume(self) -> None:
        """Resume the clock; txs that waited in the mempool commit in one block right away."""
        self._paused = False
        self._clock_wake.set()
        if self._mempool:
            await self.commit_now()

    async def _produce_blocks(self) -> None:
        while True:
            self._clock_wake.clear()
            try:
                await asyncio.wait_for(self._clock_wake.wait(), timeout=self._block_time)
                continue  # block time changed or blocks resumed: restart the period
            except TimeoutError:
                pass
            if not self._paused:
                try:
                    await self.commit_now()
                except Exception:  # the clock must survive a bad hook; the error is logged
                    log.exception("committing a clock block failed")

    async def commit_now(self, block_events: list[Event] | None = None) -> int:
        """Commit one block with whatever waits in the mempool; returns its height."""
        queued, self._mempool = self._mempool, []
        block = await self._commit(queued, block_events or [])
        return block.height

    async def submit(self, pending: PendingTx, after_commit: AfterCommit | None = None) -> TxSubmitted:
        """Broadcast a tx: committed in its own block now, or queued while block production is paused."""
        txhash = upper_hex(pending.signed.hash)
        if self._paused:
            self._mempool.append(_Queued(pending, after_commit))
            return TxSubmitted(height=None, txhash=txhash, pending=True)
        queued, self._mempool = [*self._mempool, _Queued(pending, after_commit)], []
        block = await self._commit(queued, [])
        record = self.chain.tx_by_hash[pending.signed.hash]
        return TxSubmitted(height=block.height, txhash=txhash, code=record.result.code)

    async def set_phase(self, consumer: Consumer, phase: str) -> int:
        """Governance/BeginBlock phase change, committed as a block (launch emits consumer_client_created)."""
        async with self._commit_lock:
            events = self.chain.set_phase(consumer, phase)
            block = self._commit_locked([], events)
        await self.nodes.reconcile()
        return block.height

    async def _commit(self, queued: list[_Queued], block_events: list[Event]) -> Block:
        async with self._commit_lock:
            block = self._commit_locked(queued, block_events)
        if queued or block_events:  # an empty clock block cannot move a node
            # Let the websocket writers send this block's events before the (CPU-bound) node reconcile.
            await asyncio.sleep(0)
            await self.nodes.reconcile()
        return block

    def _commit_locked(self, queued: list[_Queued], block_events: list[Event]) -> Block:
        block = self.chain.commit([q.pending for q in queued], block_events)
        for item, record in zip(queued, block.txs, strict=True):
            if item.after_commit is not None:
                try:
                    item.after_commit(record.result)
                except Exception:
                    log.exception("devnet hook after tx %s failed", record.hash_hex)
        self._publish(block)
        return block

    def _publish(self, block: Block) -> None:
        bus = self.bus
        if bus.subscription_count():
            assert self.rpc is not None
            chain_id, rpc = self.chain.chain_id, self.rpc
            for kind, render in (
                (
                    "NewBlock",
                    lambda: cmt_json.new_block_payload(
                        block, chain_id, rpc.validators_hash(), rpc.validator_set()
                    ),
                ),
                (
                    "NewBlockHeader",
                    lambda: cmt_json.new_block_header_payload(block, chain_id, rpc.validators_hash()),
                ),
                ("NewBlockEvents", lambda: cmt_json.new_block_events_payload(block)),
            ):
                events = cmt_json.block_events_map(kind, block)
                bus.publish(events, frozenset(k.rpartition(".")[0] for k in events), render)
            for record in block.txs:
                bus.publish(record.events_map, record.event_types, lambda r=record: cmt_json.ws_tx_payload(r))

    # ---- devnet controls ---------------------------------------------------------------------------------

    def drop_websockets(self) -> int:
        return self._hub.drop_all() if self._hub is not None else 0

    def state(self) -> DevnetState:
        chain = self.chain
        monikers = {op: v.moniker for op, v in chain.validators.items()}
        nodes = [NodeView(**n) for n in self.nodes.snapshot()]
        return DevnetState(
            chain_id=chain.chain_id,
            rpc_url=self.rpc_url,
            rest_url=self.rest_url,
            ws_url=self.ws_url,
            height=chain.height,
            latest_block_time=rfc3339_nano(chain.latest.time_ns),
            block_time=self._block_time,
            paused=self._paused,
            mempool=len(self._mempool),
            websocket_clients=len(self._hub.connections) if self._hub else 0,
            subscriptions=self.bus.subscription_count(),
            validators=[
                ValidatorView(
                    operator_address=v.operator,
                    account_address=v.addr.account,
                    valcons=v.addr.valcons,
                    moniker=v.moniker,
                    details=v.description.details,
                    status=v.status,
                    tokens=str(v.tokens),
                    jailed=v.jailed,
                    endpoint=v.node_host,
                    reachable=v.reachable,
                    note=v.endpoint_note,
                )
                for v in chain.ordered_validators()
            ],
            consumers=[
                ConsumerView(
                    consumer_id=c.consumer_id,
                    chain_id=c.chain_id,
                    phase=c.phase,
                    client_id=c.client_id,
                    opted_in=sorted(monikers[o] for o in c.opted_in),
                    opted_in_operators=sorted(c.opted_in),
                    p2p_port=ports(c.chain_id).p2p,
                    rpc_port=ports(c.chain_id).rpc,
                )
                for c in chain.ordered_consumers()
            ],
            nodes=nodes,
            bind_errors=[f"{n.moniker}/{n.chain_id}: {e}" for n in nodes for e in n.errors],
            faults=self.faults.snapshot(),
        )
