"""Emulated consumer-chain nodes: one per (validator, launched consumer it opted in to), listening where the
validator's nodes really run (its devnet endpoint host) on the consumer's upstream ports.

Each node is a TCP listener on the P2P port (a connect succeeds; that is all a reachability probe needs)
and a small CometBFT RPC on the RPC port with `status`, `net_info`, `health` and the unsafe `dial_peers`.
`net_info` lists a dialed peer only while a node with that id really listens at that address, so a peer
list pointing at a validator's old endpoint visibly loses the peer — the failure peersync repairs.
Node state (peers, catching_up) survives moves; a bind failure is recorded, never raised.

A restarted node (`NodeFleet.restarted`, called by the devnet when a new pod of the node's workload turns
Ready) catches up as a real one does: for `catch_up_seconds` its `/status` says `catching_up: true` at a
height behind the chain that closes in on it, then it follows the chain again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import socket
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aiohttp import web

from activities.upstream import ConsumerPorts, upstream_node_id, upstream_ports
from devnet.chain import cmt_json
from devnet.chain.encoding import b64, now_ns, rfc3339_nano, upper_hex
from devnet.chain.endpoints import bindable
from devnet.chain.faults import Faults
from devnet.chain.jsonrpc import Call, Kind, Param, Registry, internal_error
from devnet.chain.peers import AddressError, PeerAddress, parse_peers, peer_ids
from devnet.chain.state import ChainState, Validator

log = logging.getLogger(__name__)

CHANNELS = "40202122233038606100"
# How far behind the chain a restarted node starts (the blocks it missed while down), and how long it takes
# by default to replay them; the devnet sets the latter per run (fast in tests).
RESTART_LAG_BLOCKS = 20
CATCH_UP_SECONDS = 3.0
UNSAFE_ROUTES = frozenset({"dial_peers", "dial_seeds", "unsafe_flush_mempool"})


@lru_cache(maxsize=65536)
def node_id(moniker: str, chain_id: str) -> str:
    return upstream_node_id(moniker, chain_id)


@lru_cache(maxsize=4096)
def ports(chain_id: str) -> ConsumerPorts:
    return upstream_ports(chain_id)


NodeKey = tuple[str, str]  # (operator address, consumer id)


@dataclass(eq=False)
class Node:
    operator: str
    consumer_id: str
    chain_id: str
    # Pinned when the node is first deployed: a later on-chain rename does not change a node's key file.
    node_id: str
    moniker: str
    catching_up: bool = False  # the admin knob: held catching up (e.g. a node that never catches up)
    restarted_at: float | None = None  # time.monotonic() of the last restart: catching up for a while
    unsafe_rpc: bool = True  # `[rpc] unsafe = true`: serves dial_peers; off, the route does not exist (404)
    persistent_peers: list[PeerAddress] = field(default_factory=list)
    dialed_peers: list[PeerAddress] = field(default_factory=list)
    dialed_at: dict[str, int] = field(default_factory=dict)  # peer string -> ns
    # runtime
    host: str | None = None
    p2p_server: asyncio.Server | None = None
    rpc_site: web.SockSite | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def p2p_port(self) -> int:
        return ports(self.chain_id).p2p

    @property
    def rpc_port(self) -> int:
        return ports(self.chain_id).rpc

    @property
    def listening(self) -> bool:
        return self.p2p_server is not None


class NodeFleet:
    def __init__(self, chain: ChainState, faults: Faults, catch_up_seconds: float = CATCH_UP_SECONDS) -> None:
        self.chain = chain
        self.catch_up_seconds = catch_up_seconds
        self.nodes: dict[NodeKey, Node] = {}
        self._by_rpc: dict[tuple[str, int], Node] = {}
        self._by_p2p: dict[tuple[str, int], Node] = {}
        self._lock = asyncio.Lock()
        self._registry = Registry()
        self._registry.add("health", lambda call: {})
        self._registry.add("status", self._status)
        self._registry.add("net_info", self._net_info)
        self._registry.add(
            "dial_peers",
            self._dial_peers,
            Param("peers", Kind.STR_LIST),
            Param("persistent", Kind.BOOL),
            Param("unconditional", Kind.BOOL),
            Param("private", Kind.BOOL),
        )
        app = web.Application(middlewares=[faults.middleware("nodes"), self._unsafe_gate])
        self._registry.install(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)

    @web.middleware
    async def _unsafe_gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Without `[rpc] unsafe = true` CometBFT does not register the unsafe routes at all."""
        if request.path.strip("/") in UNSAFE_ROUTES:
            sockname = request.transport.get_extra_info("sockname") if request.transport else None
            node = self._by_rpc.get(tuple(sockname[:2])) if sockname else None  # type: ignore[arg-type]
            if node is not None and not node.unsafe_rpc:
                return web.Response(text="404 page not found\n", status=404, content_type="text/plain")
        return await handler(request)

    async def start(self) -> None:
        await self._runner.setup()
        await self.reconcile()

    async def stop(self) -> None:
        async with self._lock:
            for node in self.nodes.values():
                await self._close(node)
        await self._runner.cleanup()

    # ---- placement -------------------------------------------------------------------------------------

    def desired(self) -> dict[NodeKey, str]:
        """(operator, consumer id) -> host, for every node that should be listening now."""
        wanted: dict[NodeKey, str] = {}
        for consumer in self.chain.ordered_consumers():
            if consumer.phase != "CONSUMER_PHASE_LAUNCHED":
                continue
            for operator in sorted(consumer.opted_in):
                validator = self.chain.validators.get(operator)
                if validator is None or not validator.reachable or not validator.node_host:
                    continue
                if bindable(validator.node_host):
                    wanted[(operator, consumer.consumer_id)] = validator.node_host
        return wanted

    async def reconcile(self) -> None:
        """Open, move and close listeners until they match the chain and the devnet placement."""
        async with self._lock:
            wanted = self.desired()
            for key, node in self.nodes.items():
                if node.host is not None and wanted.get(key) != node.host:
                    await self._close(node)
            fresh = [key for key in wanted if key not in self.nodes]
            for operator, consumer_id in fresh:
                chain_id = self.chain.consumers[consumer_id].chain_id
                moniker = self.chain.validators[operator].moniker
                self.nodes[(operator, consumer_id)] = Node(
                    operator, consumer_id, chain_id, node_id(moniker, chain_id), moniker
                )
            by_consumer: dict[str, list[tuple[Node, str]]] = {}
            for key, host in wanted.items():
                by_consumer.setdefault(key[1], []).append((self.nodes[key], host))
            for key in fresh:
                node = self.nodes[key]
                # A new node starts with its consumer's other validators as persistent peers (its config.toml).
                node.persistent_peers = [
                    PeerAddress(other.node_id, host, other.p2p_port)
                    for other, host in by_consumer[node.consumer_id]
                    if other is not node
                ]
            failed = 0
            for key, host in wanted.items():
                node = self.nodes[key]
                if node.host is None:
                    await self._open(node, host)
                    failed += bool(node.errors)
            if failed:
                # Upstream's port scheme has only 1000 offsets, so chains on one host can collide.
                log.warning("%d consumer node(s) could not bind; see bind_errors in /devnet/state", failed)

    async def _open(self, node: Node, host: str) -> None:
        node.host = host
        node.errors = []
        try:
            node.p2p_server = await asyncio.start_server(
                _drop_connection, host, node.p2p_port, reuse_address=True
            )
            self._by_p2p[(host, node.p2p_port)] = node
        except OSError as err:
            node.errors.append(f"p2p {host}:{node.p2p_port}: {_reason(err)}")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, node.rpc_port))
            site = web.SockSite(self._runner, sock)
            await site.start()
            node.rpc_site = site
            self._by_rpc[(host, node.rpc_port)] = node
        except OSError as err:
            sock.close()
            node.errors.append(f"rpc {host}:{node.rpc_port}: {_reason(err)}")
        for error in node.errors:
            log.debug("consumer node %s/%s cannot listen: %s", node.operator, node.chain_id, error)

    async def _close(self, node: Node) -> None:
        host = node.host
        if node.p2p_server is not None:
            node.p2p_server.close()
            await node.p2p_server.wait_closed()
            node.p2p_server = None
        if node.rpc_site is not None:
            await node.rpc_site.stop()
            node.rpc_site = None
            self._close_connections(host, node.rpc_port)
        if host is not None:
            if self._by_p2p.get((host, node.p2p_port)) is node:
                del self._by_p2p[(host, node.p2p_port)]
            if self._by_rpc.get((host, node.rpc_port)) is node:
                del self._by_rpc[(host, node.rpc_port)]
        node.host = None

    def _close_connections(self, host: str | None, port: int) -> None:
        """A moved node's process is gone: kept-alive client connections to it must die too."""
        server = self._runner.server
        for handler in list(getattr(server, "connections", []) if server else []):
            transport = getattr(handler, "transport", None)
            if transport is not None and transport.get_extra_info("sockname")[:2] == (host, port):
                transport.close()

    # ---- RPC ---------------------------------------------------------------------------------------------

    def _node_for(self, call: Call) -> Node:
        assert call.http is not None
        sockname = call.http.transport.get_extra_info("sockname") if call.http.transport else None
        node = self._by_rpc.get(tuple(sockname[:2])) if sockname else None  # type: ignore[arg-type]
        if node is None:
            raise internal_error("node is shutting down")
        return node

    def restarted(self, host: str, chain_id: str) -> Node | None:
        """The node of `chain_id` at `host` was restarted (its pod replaced): it catches up from now on."""
        node = next((n for n in list(self.nodes.values()) if n.host == host and n.chain_id == chain_id), None)
        if node is not None:
            node.restarted_at = time.monotonic()
        return node

    def sync_state(self, node: Node) -> tuple[bool, int]:
        """(catching_up, latest_block_height) of a node now: behind the chain while it catches up."""
        latest = self.chain.latest.height
        if node.catching_up:
            return True, latest
        if node.restarted_at is not None:
            left = 1 - (time.monotonic() - node.restarted_at) / self.catch_up_seconds
            if left > 0:
                return True, max(1, latest - math.ceil(RESTART_LAG_BLOCKS * left))
        return False, latest

    def _validator(self, node: Node) -> Validator:
        return self.chain.validators[node.operator]

    def node_info(self, node: Node) -> dict[str, Any]:
        return {
            "protocol_version": {"p2p": cmt_json.P2P_PROTOCOL, "block": cmt_json.BLOCK_PROTOCOL, "app": "0"},
            "id": node.node_id,
            "listen_addr": f"tcp://0.0.0.0:{node.p2p_port}",
            "network": node.chain_id,
            "version": cmt_json.COMETBFT_VERSION,
            "channels": CHANNELS,
            "moniker": node.moniker,
            "other": {"tx_index": "on", "rpc_address": f"tcp://0.0.0.0:{node.rpc_port}"},
        }

    def _status(self, call: Call) -> dict[str, Any]:
        node = self._node_for(call)
        validator = self._validator(node)
        latest = self.chain.latest
        first = self.chain.blocks[0]
        catching_up, height = self.sync_state(node)
        block = self.chain.block(height) or latest  # the block a catching-up node has reached

        def chain_hash(height: int) -> str:
            return upper_hex(hashlib.sha256(f"{node.chain_id}/{height}".encode()).digest())

        return {
            "node_info": self.node_info(node),
            "sync_info": {
                "latest_block_hash": chain_hash(block.height),
                "latest_app_hash": chain_hash(-block.height),
                "latest_block_height": str(block.height),
                "latest_block_time": rfc3339_nano(block.time_ns),
                "earliest_block_hash": chain_hash(1),
                "earliest_app_hash": chain_hash(-1),
                "earliest_block_height": "1",
                "earliest_block_time": rfc3339_nano(first.time_ns),
                "catching_up": catching_up,
            },
            "validator_info": {
                "address": upper_hex(validator.keys.consensus_address),
                "pub_key": {
                    "type": "tendermint/PubKeyEd25519",
                    "value": b64(validator.keys.consensus_pubkey),
                },
                "voting_power": str(validator.power),
            },
        }

    def connected_peers(self, node: Node) -> list[tuple[PeerAddress, Node]]:
        """Dialed peers that a node with the dialed id really answers for (ids compare as strings)."""
        seen: set[str] = set()
        connected = []
        for peer in [*node.persistent_peers, *node.dialed_peers]:
            if peer.id in seen:
                continue
            target = self._by_p2p.get((peer.host, peer.port))
            if target is None or target is node or target.chain_id != node.chain_id:
                continue
            if target.node_id != peer.id:
                continue
            seen.add(peer.id)
            connected.append((peer, target))
        return connected

    def _net_info(self, call: Call) -> dict[str, Any]:
        node = self._node_for(call)
        now = now_ns()
        peers = []
        for peer, target in self.connected_peers(node):
            since = node.dialed_at.get(str(peer), now)
            peers.append(
                {
                    "node_info": self.node_info(target),
                    "is_outbound": True,
                    "connection_status": _connection_status(now - since, since),
                    "remote_ip": peer.host,
                }
            )
        return {
            "listening": True,
            "listeners": [f"Listener(@{node.host}:{node.p2p_port})"],
            "n_peers": str(len(peers)),
            "peers": peers,
        }

    def _dial_peers(self, call: Call) -> dict[str, Any]:
        node = self._node_for(call)
        peers: list[str] = call.args["peers"] or []
        if not peers:
            raise internal_error("no peers provided")
        try:
            peer_ids(peers)
            parsed = parse_peers(peers)
        except AddressError as err:
            raise internal_error(str(err)) from None
        now = now_ns()
        if call.args["persistent"]:
            node.persistent_peers = parsed  # REPLACES, exactly like sw.persistentPeersAddrs = netAddrs
        for peer in parsed:
            node.dialed_at.setdefault(str(peer), now)
            if peer not in node.dialed_peers and not call.args["persistent"]:
                node.dialed_peers.append(peer)
        return {"log": "Dialing peers in progress. See /net_info for details"}

    # ---- admin & reporting -------------------------------------------------------------------------------

    def find(self, operator: str, consumer_id: str) -> Node | None:
        return self.nodes.get((operator, consumer_id))

    def snapshot(self) -> list[dict[str, Any]]:
        out = []
        for node in sorted(self.nodes.values(), key=lambda n: (n.chain_id, self._validator(n).moniker)):
            validator = self._validator(node)
            out.append(
                {
                    "validator": node.operator,
                    "moniker": validator.moniker,
                    "consumer_id": node.consumer_id,
                    "chain_id": node.chain_id,
                    "node_id": node.node_id,
                    "host": node.host,
                    "p2p_port": node.p2p_port,
                    "rpc_port": node.rpc_port,
                    "listening": node.listening,
                    "rpc_listening": node.rpc_site is not None,
                    "catching_up": self.sync_state(node)[0],
                    "persistent_peers": [str(p) for p in node.persistent_peers],
                    "dialed_peers": [str(p) for p in node.dialed_peers],
                    "connected_peers": [str(p) for p, _ in self.connected_peers(node)] if node.host else [],
                    "errors": list(node.errors),
                }
            )
        return out


def _monitor(start_ns: int, duration_ns: int) -> dict[str, Any]:
    return {
        "Start": rfc3339_nano(start_ns),
        "Bytes": "0",
        "Samples": "0",
        "InstRate": "0",
        "CurRate": "0",
        "AvgRate": "0",
        "PeakRate": "0",
        "BytesRem": "0",
        "Duration": str(duration_ns),
        "Idle": str(duration_ns),
        "TimeRem": "0",
        "Progress": 0,
        "Active": True,
    }


def _connection_status(duration_ns: int, start_ns: int) -> dict[str, Any]:
    return {
        "Duration": str(duration_ns),
        "SendMonitor": _monitor(start_ns, duration_ns),
        "RecvMonitor": _monitor(start_ns, duration_ns),
        "Channels": [
            {
                "ID": 32,
                "SendQueueCapacity": "100",
                "SendQueueSize": "0",
                "Priority": "6",
                "RecentlySent": "0",
            },
            {"ID": 48, "SendQueueCapacity": "1", "SendQueueSize": "0", "Priority": "5", "RecentlySent": "0"},
        ],
    }


def _reason(err: OSError) -> str:
    return (err.strerror or str(err)).lower()


async def _drop_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # The connect is what probes measure; no emulated node speaks the p2p SecretConnection handshake.
    writer.close()
