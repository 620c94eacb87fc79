"""Real CometBFT consumer nodes (issue 10, item 4): one `cometbft` v0.38 process (built-in kvstore app) per
(validator, consumer chain), listening on the validator's loopback endpoint at the consumer's upstream ports.

    specs = [NodeSpec(moniker="alice", chain_id="consumer-1", host="127.44.1.1"), ...]
    async with RealConsumerNodes(state_dir, specs) as nodes:
        await nodes.move("bob", "127.44.1.9")      # bob's endpoint moves: his nodes restart there

Each node's key is the one the upstream monitor derives (`core.upstream.upstream_node_seed`), so the
node ids peersync derives are the ids the nodes really have. One consumer chain is one CometBFT network:
a genesis shared by its nodes, every node a validator, the chain's first node holding more than 2/3 of the
power so that blocks keep coming while any other node is down or moving (moving the first node stalls its
chain until it is back). Everything a node writes lives in `state_dir/<chain_id>/<moniker>/`.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import nacl.signing
from pydantic import BaseModel, Field

from core.upstream import upstream_node_id, upstream_node_seed, upstream_ports
from devnet.processes import ChildExited, ChildProcess
from devnet.real.binaries import binary
from devnet.real.chain import until
from devnet.real.toml_edit import TomlValue, set_keys

START_TIMEOUT = 30.0
FIRST_BLOCKS = 2  # a chain is up once its first node has committed this height
LEADER_POWER = 100  # with followers of power 1, the first node alone holds > 2/3 (up to 50 followers)
FOLLOWER_POWER = 1
LAST_LINES = 3


class NodeSpec(BaseModel):
    moniker: str
    chain_id: str
    host: str  # the validator's loopback endpoint, e.g. 127.0.10.2
    unsafe_rpc: bool = True  # `[rpc] unsafe`: serves dial_peers (what the `live` strategy calls)
    # Monikers of the chain's other nodes written into config.toml's persistent_peers; None = all of them.
    persistent_peers: list[str] | None = None
    power: int | None = None  # voting power; default LEADER_POWER for the chain's first node, else 1


class NodeInfo(BaseModel):
    """A running node as the tests and the devnet see it (the address changes on `move`)."""

    moniker: str
    chain_id: str
    host: str
    node_id: str
    p2p_port: int
    rpc_port: int
    home: Path
    unsafe_rpc: bool
    consensus_pubkey: str = Field(description="base64 ed25519 key of priv_validator_key.json")
    power: int

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.rpc_port}"

    @property
    def peer(self) -> str:
        """`id@host:port`, the form persistent_peers and dial_peers take."""
        return f"{self.node_id}@{self.host}:{self.p2p_port}"


def node_key_json(moniker: str, chain_id: str) -> str:
    """CometBFT's node_key.json for the upstream-derived key: the Go ed25519 private key is seed || pubkey."""
    seed = upstream_node_seed(moniker, chain_id)
    pubkey = bytes(nacl.signing.SigningKey(seed).verify_key)
    value = base64.b64encode(seed + pubkey).decode()
    return json.dumps({"priv_key": {"type": "tendermint/PrivKeyEd25519", "value": value}})


class RealConsumerNodes:
    """Use as `async with RealConsumerNodes(state_dir, specs) as nodes:`; stops every node on exit."""

    def __init__(self, state_dir: Path, nodes: list[NodeSpec]) -> None:
        keys = [(s.moniker, s.chain_id) for s in nodes]
        if len(set(keys)) != len(keys):
            raise ValueError(f"one node per (moniker, chain id); got {keys}")
        self.state_dir = Path(state_dir)
        self.specs = {(s.moniker, s.chain_id): s for s in nodes}
        self.cometbft = str(binary("cometbft"))
        self.nodes: dict[tuple[str, str], NodeInfo] = {}
        self.processes: dict[tuple[str, str], ChildProcess] = {}
        self.startup_seconds = 0.0
        self._http: aiohttp.ClientSession | None = None

    # ---- lifecycle ------------------------------------------------------------------------------------

    async def __aenter__(self) -> RealConsumerNodes:
        began = time.monotonic()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        try:
            for chain_id in self.chain_ids():
                await self._init_chain(chain_id)
            await asyncio.gather(*(self._start(key) for key in self.nodes))
            await asyncio.gather(*(self.wait_height(c, FIRST_BLOCKS) for c in self.chain_ids()))
        except BaseException:
            await self.__aexit__()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(child.stop() for child in self.processes.values()))
        if self._http is not None:
            await self._http.close()

    def chain_ids(self) -> list[str]:
        return list(dict.fromkeys(chain_id for _, chain_id in self.specs))

    def chain(self, chain_id: str) -> list[NodeInfo]:
        return [node for (_, c), node in self.nodes.items() if c == chain_id]

    def node(self, moniker: str, chain_id: str) -> NodeInfo:
        return self.nodes[(moniker, chain_id)]

    # ---- set-up ---------------------------------------------------------------------------------------

    async def _cli(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            self.cometbft, *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"cometbft {' '.join(args)}: exit {proc.returncode}: {err.decode()}")
        return out.decode()

    async def _init_chain(self, chain_id: str) -> None:
        specs = [s for s in self.specs.values() if s.chain_id == chain_id]
        ports = upstream_ports(chain_id)
        for index, spec in enumerate(specs):
            home = self.state_dir / chain_id / spec.moniker
            await self._cli("init", "--home", str(home))
            (home / "config" / "node_key.json").write_text(node_key_json(spec.moniker, chain_id))
            validator_key = json.loads((home / "config" / "priv_validator_key.json").read_text())
            default_power = LEADER_POWER if index == 0 else FOLLOWER_POWER
            self.nodes[(spec.moniker, chain_id)] = NodeInfo(
                moniker=spec.moniker,
                chain_id=chain_id,
                host=spec.host,
                node_id=upstream_node_id(spec.moniker, chain_id),
                p2p_port=ports.p2p,
                rpc_port=ports.rpc,
                home=home,
                unsafe_rpc=spec.unsafe_rpc,
                consensus_pubkey=validator_key["pub_key"]["value"],
                power=default_power if spec.power is None else spec.power,
            )
        genesis = self._genesis(chain_id, specs)
        for spec in specs:
            node = self.node(spec.moniker, chain_id)
            (node.home / "config" / "genesis.json").write_text(genesis)
            self._configure(node, self._initial_peers(spec, specs))

    def _genesis(self, chain_id: str, specs: list[NodeSpec]) -> str:
        """The genesis `cometbft init` wrote for the first node, with every node of the chain as validator."""
        first = self.node(specs[0].moniker, chain_id)
        genesis: dict[str, Any] = json.loads((first.home / "config" / "genesis.json").read_text())
        genesis["chain_id"] = chain_id
        genesis["genesis_time"] = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        genesis["validators"] = []
        for spec in specs:
            node = self.node(spec.moniker, chain_id)
            key = json.loads((node.home / "config" / "priv_validator_key.json").read_text())
            if node.power > 0:
                genesis["validators"].append(
                    {"address": key["address"], "pub_key": key["pub_key"], "power": str(node.power),
                     "name": spec.moniker}
                )  # fmt: skip
        return json.dumps(genesis, indent=2)

    def _initial_peers(self, spec: NodeSpec, specs: list[NodeSpec]) -> list[str]:
        wanted = spec.persistent_peers
        others = [s for s in specs if s.moniker != spec.moniker]
        if wanted is not None:
            unknown = set(wanted) - {s.moniker for s in others}
            if unknown:
                raise ValueError(f"{spec.moniker}/{spec.chain_id}: no such peers on the chain: {unknown}")
            others = [s for s in others if s.moniker in wanted]
        return [self.node(s.moniker, spec.chain_id).peer for s in others]

    def _configure(self, node: NodeInfo, peers: list[str] | None = None) -> None:
        values: dict[str, dict[str, TomlValue]] = {
            "": {"moniker": node.moniker, "proxy_app": "kvstore"},
            "rpc": {"laddr": f"tcp://{node.host}:{node.rpc_port}", "unsafe": node.unsafe_rpc},
            "p2p": {
                "laddr": f"tcp://{node.host}:{node.p2p_port}",
                "pex": False,
                # Loopback addresses are not routable: a strict address book refuses them.
                "addr_book_strict": False,
                # Every loopback connection comes from source address 127.0.0.1, whoever dials.
                "allow_duplicate_ip": True,
            },
            # Fast blocks: a test waits for heights, and a moved node must catch up on something.
            "consensus": {"timeout_propose": "1s", "timeout_commit": "300ms"},
        }
        if peers is not None:
            values["p2p"]["persistent_peers"] = ",".join(peers)
        set_keys(node.home / "config" / "config.toml", values)

    # ---- processes ------------------------------------------------------------------------------------

    async def _start(self, key: tuple[str, str]) -> None:
        node = self.nodes[key]
        child = self.processes.get(key) or ChildProcess(
            f"cometbft {node.moniker}/{node.chain_id}",
            [self.cometbft, "start", "--home", str(node.home)],
            node.home / "node.log",
        )
        self.processes[key] = child
        await child.start()
        try:
            await until(self._answers(key), START_TIMEOUT, f"{child.name} RPC at {node.rpc_url}")
        except ChildExited as exc:
            # CometBFT logs its start-up first and the reason it stops (e.g. a port in use) last.
            last = "".join(f"\n  | {line}" for line in child.output().splitlines()[-LAST_LINES:])
            raise ChildExited(f"{exc}\n  ... last lines:{last}") from None

    def _answers(self, key: tuple[str, str]) -> Callable[[], Awaitable[bool | None]]:
        async def check() -> bool | None:
            self.processes[key].raise_if_exited()
            await self.status(*key)
            return True

        return check

    async def stop_node(self, moniker: str, chain_id: str) -> None:
        await self.processes[(moniker, chain_id)].stop()

    async def start_node(self, moniker: str, chain_id: str) -> None:
        """Start a stopped node again (same address, keys and data); returns once its RPC answers."""
        await self._start((moniker, chain_id))

    async def move(self, moniker: str, new_host: str) -> list[NodeInfo]:
        """The validator moves its endpoint: each of its nodes stops and starts again listening on
        `new_host` with the same keys, data and config.toml peers. Returns once every RPC answers there
        (the nodes are then usually still catching up)."""
        keys = [key for key in self.nodes if key[0] == moniker]
        if not keys:
            raise KeyError(f"no nodes for {moniker}")
        await asyncio.gather(*(self.processes[key].stop() for key in keys))
        for key in keys:
            node = self.nodes[key].model_copy(update={"host": new_host})
            self.nodes[key] = node
            self._configure(node)
        await asyncio.gather(*(self._start(key) for key in keys))
        return [self.nodes[key] for key in keys]

    async def restart(self, moniker: str, chain_id: str, peers: list[str]) -> None:
        """The node's pod was replaced: stop it, write `peers` (what the new pod read from its ConfigMap) as
        its persistent_peers, and start it again; returns once its RPC answers (it may still catch up)."""
        key = (moniker, chain_id)
        await self.processes[key].stop()
        self._configure(self.nodes[key], peers)
        await self._start(key)

    def at(self, host: str, chain_id: str) -> NodeInfo | None:
        """The node of `chain_id` listening on `host` (a pod's IP), if any."""
        return next((n for n in self.chain(chain_id) if n.host == host), None)

    async def show_node_id(self, moniker: str, chain_id: str) -> str:
        """The id `cometbft show-node-id` reads from the node's node_key.json."""
        return (await self._cli("show-node-id", "--home", str(self.node(moniker, chain_id).home))).strip()

    def log(self, moniker: str, chain_id: str) -> str:
        """What the node's current run has logged."""
        return self.processes[(moniker, chain_id)].output()

    # ---- RPC ------------------------------------------------------------------------------------------

    async def rpc(self, moniker: str, chain_id: str, route: str, **params: str) -> dict[str, Any]:
        """The node's JSON-RPC answer over GET (the whole body: `result` or `error`)."""
        assert self._http is not None
        url = f"{self.node(moniker, chain_id).rpc_url}/{route}"
        async with self._http.get(url, params=params) as resp:
            return dict(await resp.json(content_type=None))

    async def status(self, moniker: str, chain_id: str) -> dict[str, Any]:
        return dict((await self.rpc(moniker, chain_id, "status"))["result"])

    async def peer_ids(self, moniker: str, chain_id: str) -> set[str]:
        result = (await self.rpc(moniker, chain_id, "net_info"))["result"]
        return {str(p["node_info"]["id"]) for p in result.get("peers") or []}

    async def wait_height(self, chain_id: str, height: int, timeout: float = START_TIMEOUT) -> int:
        """Wait until the chain's first node has committed `height` (blocks are being produced)."""
        first = self.chain(chain_id)[0]

        async def reached() -> int | None:
            self.processes[(first.moniker, chain_id)].raise_if_exited()
            now = int((await self.status(first.moniker, chain_id))["sync_info"]["latest_block_height"])
            return now if now >= height else None

        return await until(reached, timeout, f"{chain_id} at height {height}")
