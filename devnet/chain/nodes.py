"""Emulated consumer-chain nodes: one per (validator, launched consumer it opted in to), listening where the
validator's nodes really run (its devnet endpoint host) on the consumer's upstream ports.

Each node listens on the P2P port, where it answers CometBFT's SecretConnection handshake with its own node
key up to the proof of that key and then closes (what the authenticated probe checks; no reactor runs
here), and serves a small CometBFT RPC on the RPC port with `status`, `net_info`, `health` and the unsafe
`dial_peers`.
`net_info` lists a dialed peer only while a node with that id really listens at that address, so a peer
list pointing at a validator's old endpoint visibly loses the peer — the failure peersync repairs.
Node state (peers, catching_up) survives moves; a bind failure is recorded, never raised.

Connections follow real CometBFT v0.38 (checked against real nodes by tests/real/test_node_fidelity.py):
* one connection per pair: outbound at the node that dialed it, inbound (`is_outbound: false`, remote_ip
  127.0.0.1 — the kernel's source address on loopback) at the other; so a moved node, which dials its own
  persistent peers from its new address, is seen again by them without any dial_peers;
* `dial_peers` with persistent=true REPLACES the in-memory persistent list but disconnects nobody: a peer
  left out stays connected until it (or this node) restarts, and is then not redialled;
* a node that never had a peer (and is not its chain's only node) cannot block-sync: `/status` says
  catching_up at height 0 with a zero block time.

A restarted node (`NodeFleet.restarted`, called by the devnet when a new pod of the node's workload turns
Ready) catches up as a real one does: for `catch_up_seconds` its `/status` says `catching_up: true` at a
height behind the chain that closes in on it, then it follows the chain again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
import socket
import time
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

import nacl.signing
from aiohttp import web

from core.secret_connection import HandshakeError, SecretHandshake
from core.upstream import ConsumerPorts, upstream_node_id, upstream_node_seed, upstream_ports
from devnet.chain import cmt_json
from devnet.chain.encoding import b64, now_ns, rfc3339_nano, upper_hex
from devnet.chain.endpoints import bindable
from devnet.chain.faults import Faults
from devnet.chain.jsonrpc import Call, Kind, Param, Registry, internal_error, method_not_found
from devnet.chain.peers import AddressError, PeerAddress, parse_peers, peer_ids
from devnet.chain.state import ChainState, Validator

log = logging.getLogger(__name__)

CHANNELS = "40202122233038606100"  # real nodes with pex off (the real testbed) lack the trailing 00
# `version` of the pinned real consumer nodes (testbed/manifest.json); the provider keeps cmt_json's.
NODE_VERSION = "0.38.26"
# connection_status.Channels of a real v0.38 node, in its reactors' order: (ID, SendQueueCapacity, Priority)
# of mempool, blocksync, consensus (4), evidence, statesync (2) and pex.
CONNECTION_CHANNELS = (
    (48, 1, 5), (64, 1000, 5), (32, 100, 6), (33, 100, 10), (34, 100, 7), (35, 2, 1), (56, 1, 6),
    (96, 10, 5), (97, 10, 3), (0, 10, 1),
)  # fmt: skip
LOOPBACK_SOURCE = "127.0.0.1"
HANDSHAKE_TIMEOUT = 20.0  # CometBFT's [p2p] handshake_timeout default
HANDSHAKE_MAX_BYTES = 8192  # a peer's ephemeral key and auth frame take 1079
ZERO_TIME = "1970-01-01T00:00:00Z"
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


@dataclass(frozen=True)
class Link:
    """One p2p connection as `node` sees it: `peer` is the address dialed (outbound) or the remote's own."""

    peer: PeerAddress
    target: Node
    outbound: bool


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
    # Peers dropped from the persistent list by a dial while connected: still connected until a restart.
    kept_peers: list[PeerAddress] = field(default_factory=list)
    synced: bool = False  # has had a peer (or is alone) since it was created: block sync got going
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

    @property
    def node_key(self) -> nacl.signing.SigningKey:
        """The private key behind `node_id`: upstream derives both from the moniker the node was deployed with."""
        return nacl.signing.SigningKey(upstream_node_seed(self.moniker, self.chain_id))


class NodeFleet:
    def __init__(self, chain: ChainState, faults: Faults, catch_up_seconds: float = CATCH_UP_SECONDS) -> None:
        self.chain = chain
        self.catch_up_seconds = catch_up_seconds
        self.nodes: dict[NodeKey, Node] = {}
        self._by_rpc: dict[tuple[str, int], Node] = {}
        self._by_p2p: dict[tuple[str, int], Node] = {}
        self._by_chain: dict[str, list[Node]] = {}
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
            for key in fresh:
                self._by_chain.setdefault(self.nodes[key].chain_id, []).append(self.nodes[key])
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
                partial(answer_handshake, node.node_key), host, node.p2p_port, reuse_address=True
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
        self._forget_connections(node)  # a moved node is a restarted process: its connections are gone
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
            self._forget_connections(node)
        return node

    def _forget_connections(self, node: Node) -> None:
        """`node`'s process stops: its own dials die with it, and the other nodes' connections to it drop.
        They redial their persistent peers, and also a kept one: a connection keeps the persistent flag it
        was made with, so the peer is redialled once more, now as a one-off that its next restart ends."""
        node.kept_peers, node.dialed_peers = [], []
        if node.host is None:
            return
        here = (node.host, node.p2p_port)
        for other in self._by_chain.get(node.chain_id, []):
            redial = [p for p in other.kept_peers if (p.host, p.port) == here]
            other.kept_peers = [p for p in other.kept_peers if (p.host, p.port) != here]
            other.dialed_peers = [*redial, *(p for p in other.dialed_peers if (p.host, p.port) != here)]

    def sync_state(self, node: Node) -> tuple[bool, int]:
        """(catching_up, latest_block_height) of a node now: behind the chain while it catches up."""
        latest = self.chain.latest.height
        if not node.synced:
            placed = [n for n in self._by_chain.get(node.chain_id, []) if n.host is not None]
            if not self.links(node) and placed != [node]:
                return True, 0  # block sync needs a peer: a fresh node alone stays at height 0
            node.synced = True
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
        # A real node reports the addresses it is configured to bind (loopback here), not a wildcard.
        host = node.host or "0.0.0.0"
        return {
            "protocol_version": {"p2p": cmt_json.P2P_PROTOCOL, "block": cmt_json.BLOCK_PROTOCOL, "app": "0"},
            "id": node.node_id,
            "listen_addr": f"tcp://{host}:{node.p2p_port}",
            "network": node.chain_id,
            "version": NODE_VERSION,
            "channels": CHANNELS,
            "moniker": node.moniker,
            "other": {"tx_index": "on", "rpc_address": f"tcp://{host}:{node.rpc_port}"},
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

        if height == 0:
            sync_info: dict[str, Any] = {
                "latest_block_hash": "",
                "latest_app_hash": "",
                "latest_block_height": "0",
                "latest_block_time": ZERO_TIME,
                "earliest_block_hash": "",
                "earliest_app_hash": "",
                "earliest_block_height": "0",
                "earliest_block_time": ZERO_TIME,
                "catching_up": True,
            }
        return {
            "node_info": self.node_info(node),
            "sync_info": sync_info
            if height == 0
            else {
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

    def _resolve(self, node: Node, peer: PeerAddress) -> Node | None:
        """The node a dial of `peer` from `node` reaches: one with the dialed id (ids compare as strings)."""
        target = self._by_p2p.get((peer.host, peer.port))
        if target is None or target is node or target.chain_id != node.chain_id or target.node_id != peer.id:
            return None
        return target

    def _dials(self, node: Node) -> list[PeerAddress]:
        return [*node.persistent_peers, *node.kept_peers, *node.dialed_peers]

    def links(self, node: Node) -> list[Link]:
        """`node`'s connections: the ones it dialed, then the ones other nodes dialed to it."""
        if node.host is None:
            return []
        found: dict[str, Link] = {}
        for peer in self._dials(node):
            target = self._resolve(node, peer)
            if target is not None and target.node_id not in found:
                found[target.node_id] = Link(peer, target, True)
        for other in self._by_chain.get(node.chain_id, []):
            if other is node or other.host is None:
                continue
            if not any(self._resolve(other, p) is node for p in self._dials(other)):
                continue
            mine = found.get(other.node_id)
            if mine is None:
                found[other.node_id] = Link(
                    PeerAddress(other.node_id, other.host, other.p2p_port), other, False
                )
            elif other.node_id < node.node_id:
                # Both dial: CometBFT keeps one connection (the second is a duplicate). Which one wins is a
                # race on a real node; the emulator decides by id so both ends agree.
                found[other.node_id] = Link(mine.peer, other, False)
        return list(found.values())

    def connected_peers(self, node: Node) -> list[tuple[PeerAddress, Node]]:
        return [(link.peer, link.target) for link in self.links(node)]

    def _net_info(self, call: Call) -> dict[str, Any]:
        node = self._node_for(call)
        now = now_ns()
        peers = []
        for link in self.links(node):
            since = node.dialed_at.get(str(link.peer), now)
            peers.append(
                {
                    "node_info": self.node_info(link.target),
                    "is_outbound": link.outbound,
                    "connection_status": _connection_status(now - since, since),
                    "remote_ip": link.peer.host if link.outbound else LOOPBACK_SOURCE,
                }
            )
        return {
            "listening": True,
            # CometBFT prints the configured external address, which no emulated node sets.
            "listeners": ["Listener(@)"],
            "n_peers": str(len(peers)),
            "peers": peers,
        }

    def _dial_peers(self, call: Call) -> dict[str, Any]:
        node = self._node_for(call)
        if not node.unsafe_rpc:
            raise method_not_found()  # JSON-RPC POST reaches here; the GET route is a 404 (_unsafe_gate)
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
            # REPLACES, exactly like sw.persistentPeersAddrs = netAddrs; nobody is disconnected.
            left_out = [link.peer for link in self.links(node) if link.outbound and link.peer not in parsed]
            node.kept_peers = list(dict.fromkeys([*node.kept_peers, *left_out]))
            node.persistent_peers = parsed
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
                "ID": channel,
                "SendQueueCapacity": str(capacity),
                "SendQueueSize": "0",
                "Priority": str(priority),
                "RecentlySent": "0",
            }
            for channel, capacity, priority in CONNECTION_CHANNELS
        ],
    }


def _reason(err: OSError) -> str:
    return (err.strerror or str(err)).lower()


async def answer_handshake(
    key: nacl.signing.SigningKey, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """A real node's side of the SecretConnection handshake, up to the proof of both keys; then close, where a
    real node would exchange NodeInfo (a probe never goes further, and no emulated node runs reactors)."""
    handshake = SecretHandshake(key, secrets.token_bytes(32), HANDSHAKE_MAX_BYTES)
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            writer.write(handshake.hello())
            while handshake.proven is None:
                data = await reader.read(4096)
                if not data:  # a plain TCP probe connects and leaves
                    break
                reply = handshake.receive(data)
                if reply:
                    writer.write(reply)
                    await writer.drain()
    except (HandshakeError, TimeoutError, OSError) as exc:
        log.debug("p2p handshake refused: %s", exc)  # a real node logs it and drops the connection too
    finally:
        writer.close()
