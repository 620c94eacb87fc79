"""A real ICS provider chain (interchain-security-pd v7, built by `make testbed`) on loopback.

One node, several validators in genesis: the node's own validator holds more than 2/3 of the power so blocks
keep coming; the others enter through gentx with a small stake and run no node, so the slashing params are
set so that nobody is ever jailed for downtime. Consumer chains are created, opted in to and launched with
the real ICS v7 messages, and endpoint moves are real `tx staking edit-validator` signed with test keys.

    async with RealProvider(state_dir, [ValidatorSpec(moniker="alice", details="p2p=127.0.10.1:26656"), ...])
            as chain:
        consumer_id = await chain.create_consumer("consumer-a", opt_in=["alice", "bob"])
        committed = await chain.edit_validator("bob", "p2p=127.0.10.9:26656")
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, Field

from devnet.ports import free_port
from devnet.processes import ChildProcess
from devnet.real.binaries import binary
from devnet.real.toml_edit import set_keys

T = TypeVar("T")

HOST = "127.0.0.1"
DENOM = "stake"
ACCOUNT_BALANCE = 10**12
LEADER_STAKE = 100_000_000  # power 100: with three followers of power 1 the leader alone holds > 2/3
FOLLOWER_STAKE = 1_000_000  # power 1 (DefaultPowerReduction is 10^6)
GAS = "1000000"  # fixed: `--gas auto` costs a simulation round trip per tx and fees are zero anyway
START_TIMEOUT = 60.0
COMMIT_TIMEOUT = 30.0
LAUNCH_TIMEOUT = 30.0
KEYRING = ("--keyring-backend", "test")
CONSUMER_UNBONDING_NS = 1_728_000 * 10**9  # 20 days: must stay below the provider's 21-day unbonding time


class ValidatorSpec(BaseModel):
    moniker: str
    details: str = ""  # e.g. "p2p=127.0.10.2:26656"
    stake: int | None = None  # default: LEADER_STAKE for the first (the node's), FOLLOWER_STAKE for the rest


class ValidatorKeys(BaseModel):
    moniker: str
    account: str  # cosmos1...
    operator: str  # cosmosvaloper1...
    consensus_pubkey: dict[str, str]  # {"@type": "/cosmos.crypto.ed25519.PubKey", "key": base64}
    runs_node: bool


class ProviderInfo(BaseModel):
    chain_id: str
    home: Path
    rpc_url: str  # http://127.0.0.1:port (CometBFT RPC; websocket at /websocket)
    rest_url: str  # http://127.0.0.1:port (Cosmos SDK REST gateway)
    grpc_address: str  # 127.0.0.1:port
    validators: dict[str, ValidatorKeys] = Field(default_factory=dict)  # by moniker


class Committed(BaseModel):
    height: int
    txhash: str
    events: list[dict[str, Any]] = Field(default_factory=list)

    def attribute(self, event_type: str, key: str) -> str | None:
        for event in self.events:
            if event.get("type") == event_type:
                for attr in event.get("attributes") or []:
                    if attr.get("key") == key:
                        return str(attr.get("value"))
        return None


class TxFailed(RuntimeError):
    pass


_REVISION_FORMAT = re.compile(r"^.*[^\n-]-([1-9][0-9]*)$")  # ibc-go clienttypes.IsRevisionFormat


def revision_number(chain_id: str) -> int:
    """ICS checks a consumer's initial height against its chain id: "name-3" is revision 3, "name" is 0."""
    found = _REVISION_FORMAT.match(chain_id)
    return int(found.group(1)) if found else 0


async def until(check: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
    """Poll `check` until it returns something other than None (connection errors count as not yet)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            found = await check()
            if found is not None:
                return found
        except (aiohttp.ClientError, OSError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; last error: {last!r}")
        await asyncio.sleep(0.1)


class RealProvider:
    """Use as `async with RealProvider(state_dir, validators) as chain:`; everything lives in `state_dir`."""

    def __init__(self, state_dir: Path, validators: list[ValidatorSpec], chain_id: str = "provider") -> None:
        if not validators:
            raise ValueError("at least one validator (the node's own) is needed")
        self.state_dir = Path(state_dir)
        self.specs = validators
        stakes = [self._stake(i) for i in range(len(validators))]
        if 3 * stakes[0] <= 2 * sum(stakes):
            # Only the first validator signs: without > 2/3 of the power the chain would halt at once.
            raise ValueError(f"the node's validator needs > 2/3 of the stake; stakes {stakes}")
        self.home = self.state_dir / "provider"
        self.pd = str(binary("interchain-security-pd"))
        ports = {name: free_port(HOST) for name in ("rpc", "p2p", "api", "grpc")}
        self.ports = ports
        self.info = ProviderInfo(
            chain_id=chain_id,
            home=self.home,
            rpc_url=f"http://{HOST}:{ports['rpc']}",
            rest_url=f"http://{HOST}:{ports['api']}",
            grpc_address=f"{HOST}:{ports['grpc']}",
        )
        self.node: ChildProcess | None = None
        self.startup_seconds = 0.0
        self._http: aiohttp.ClientSession | None = None
        self._signing: dict[str, asyncio.Lock] = {}  # one broadcast at a time per key
        self._sequences: dict[str, tuple[int, int]] = {}  # key -> (account number, next sequence)

    # ---- lifecycle ------------------------------------------------------------------------------------

    async def __aenter__(self) -> RealProvider:
        began = time.monotonic()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        try:
            await self._init_home()
            self.node = ChildProcess(
                "interchain-security-pd",
                [self.pd, "start", "--home", str(self.home)],
                self.state_dir / "node.log",
            )
            await self.node.start()
            await until(self._block_height_at_least(2), START_TIMEOUT, "the provider's second block")
            await until(self._rest_ready, START_TIMEOUT, "the REST gateway")
        except BaseException:
            await self.__aexit__()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.node is not None:
            await self.node.stop()
        if self._http is not None:
            await self._http.close()

    # ---- genesis --------------------------------------------------------------------------------------

    async def _cli(self, *args: str, home: Path | None = None) -> str:
        """Run the provider CLI and return its stdout; a non-zero exit raises with its stderr."""
        proc = await asyncio.create_subprocess_exec(
            self.pd,
            *args,
            "--home",
            str(home or self.home),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(
                f"interchain-security-pd {' '.join(args)}: exit {proc.returncode}: {err.decode()}"
            )
        return out.decode()

    async def _init_home(self) -> None:
        """Genesis with every validator's gentx. Each CLI call is a process start (a few hundred ms): the
        calls that touch separate files run side by side; only those that rewrite genesis.json queue."""
        chain_id = self.info.chain_id
        await self._cli("init", self.specs[0].moniker, "--chain-id", chain_id, "--default-denom", DENOM)
        gentx_dir = self.home / "config" / "gentx"
        gentx_dir.mkdir(exist_ok=True)
        keys = await asyncio.gather(*(self._validator_keys(i, spec) for i, spec in enumerate(self.specs)))
        for found in keys:
            self.info.validators[found.moniker] = found
            await self._cli(
                "genesis", "add-genesis-account", found.account, f"{ACCOUNT_BALANCE}{DENOM}", *KEYRING
            )
        await asyncio.gather(*(self._gentx(i, spec, gentx_dir) for i, spec in enumerate(self.specs)))
        await self._cli("genesis", "collect-gentxs")
        self._patch_genesis()
        self._configure()

    async def _validator_keys(self, index: int, spec: ValidatorSpec) -> ValidatorKeys:
        """An account key in the shared test keyring (one file per key) and a consensus key: the node's own
        for the first validator; the followers run no node, but each needs its own, which a throw-away
        home makes."""
        added = json.loads(await self._cli("keys", "add", spec.moniker, *KEYRING, "--output", "json"))
        operator = (await self._cli("keys", "show", spec.moniker, "--bech", "val", "-a", *KEYRING)).strip()
        key_home = self.home if index == 0 else self.state_dir / "keys" / spec.moniker
        if index:
            await self._cli("init", spec.moniker, "--chain-id", self.info.chain_id, home=key_home)
        pubkey = json.loads(await self._cli("comet", "show-validator", home=key_home))
        return ValidatorKeys(
            moniker=spec.moniker,
            account=added["address"],
            operator=operator,
            consensus_pubkey=pubkey,
            runs_node=index == 0,
        )

    async def _gentx(self, index: int, spec: ValidatorSpec, gentx_dir: Path) -> None:
        stake = self._stake(index)
        pubkey = json.dumps(self.info.validators[spec.moniker].consensus_pubkey)
        await self._cli(
            "genesis", "gentx", spec.moniker, f"{stake}{DENOM}", *KEYRING, "--chain-id", self.info.chain_id,
            "--moniker", spec.moniker, "--details", spec.details, "--pubkey", pubkey,
            "--output-document", str(gentx_dir / f"gentx-{spec.moniker}.json"),
        )  # fmt: skip

    def _stake(self, index: int) -> int:
        return self.specs[index].stake or (LEADER_STAKE if index == 0 else FOLLOWER_STAKE)

    def _patch_genesis(self) -> None:
        path = self.home / "config" / "genesis.json"
        genesis = json.loads(path.read_text())
        app = genesis["app_state"]
        # Nobody is jailed for downtime: with min_signed_per_window 0 the allowed misses equal the window.
        app["slashing"]["params"]["signed_blocks_window"] = "1000000"
        app["slashing"]["params"]["min_signed_per_window"] = "0.000000000000000000"
        # Epochs of one block: an opt-in or a key change reaches the consumer's validator set at once.
        app["provider"]["params"]["blocks_per_epoch"] = "1"
        path.write_text(json.dumps(genesis, indent=1))

    def _configure(self) -> None:
        config = self.home / "config"
        set_keys(
            config / "config.toml",
            {
                "": {"moniker": self.specs[0].moniker},
                "rpc": {"laddr": f"tcp://{HOST}:{self.ports['rpc']}"},
                "p2p": {"laddr": f"tcp://{HOST}:{self.ports['p2p']}", "pex": False},
                "consensus": {"timeout_commit": "500ms", "timeout_propose": "1s"},
                "instrumentation": {"prometheus": False},
            },
        )
        # pprof listens on localhost:6060 by default: off, or two chains (or another test) would collide.
        set_keys(config / "config.toml", {"rpc": {"pprof_laddr": ""}})
        set_keys(
            config / "app.toml",
            {
                "": {"minimum-gas-prices": f"0{DENOM}"},
                "api": {"enable": True, "address": f"tcp://{HOST}:{self.ports['api']}"},
                "grpc": {"enable": True, "address": self.info.grpc_address},
            },
        )
        set_keys(
            config / "client.toml",
            {
                "": {
                    "chain-id": self.info.chain_id,
                    "keyring-backend": "test",
                    "node": f"tcp://{HOST}:{self.ports['rpc']}",
                    "output": "json",
                    "broadcast-mode": "sync",
                }
            },
        )

    # ---- reads ----------------------------------------------------------------------------------------

    def _alive(self) -> None:
        """Fail at once, with the log's first lines, when the node has died (rather than time out later)."""
        if self.node is not None:
            self.node.raise_if_exited()

    async def rpc(self, path: str) -> dict[str, Any]:
        assert self._http is not None
        self._alive()
        async with self._http.get(f"{self.info.rpc_url}{path}") as resp:
            return dict(await resp.json(content_type=None))

    async def rest(self, path: str) -> tuple[int, dict[str, Any]]:
        assert self._http is not None
        self._alive()
        async with self._http.get(f"{self.info.rest_url}{path}") as resp:
            return resp.status, dict(await resp.json(content_type=None))

    async def height(self) -> int:
        body = await self.rpc("/status")
        return int(body["result"]["sync_info"]["latest_block_height"])

    def _block_height_at_least(self, height: int) -> Callable[[], Awaitable[int | None]]:
        async def check() -> int | None:
            now = await self.height()
            return now if now >= height else None

        return check

    async def _rest_ready(self) -> bool | None:
        status, _ = await self.rest("/cosmos/base/tendermint/v1beta1/blocks/latest")
        return True if status == 200 else None

    # ---- transactions ---------------------------------------------------------------------------------

    async def tx(self, signer: str, *args: str) -> Committed:
        """Sign `tx <args>` with `signer`'s key, broadcast it and wait until a block commits it.

        The signer's sequence number is kept here, not read back from the chain for each tx: the chain
        answers with its committed state, so a key's next tx could only be signed after a block. Kept, a
        key's txs are broadcast one after another and land in the same block."""
        lock = self._signing.setdefault(signer, asyncio.Lock())
        async with lock:  # one broadcast at a time per key: each takes the next sequence number
            account, sequence = self._sequences.get(signer) or await self._account(signer)
            out = await self._cli(
                "tx", *args, "--from", signer, "--gas", GAS, "--yes", "--output", "json",
                # --offline: only then does the CLI sign with the given numbers (it still broadcasts to
                # client.toml's node); online it reads them back from the chain.
                "--offline", "--account-number", str(account), "--sequence", str(sequence),
            )  # fmt: skip
            sent = json.loads(out)
            if int(sent.get("code") or 0) != 0:
                self._sequences.pop(signer, None)  # refused at CheckTx: ask the chain again next time
                raise TxFailed(f"tx {' '.join(args)} by {signer} rejected: {sent.get('raw_log')}")
            # Accepted into the mempool: the sequence is used even if the tx then fails in its block.
            self._sequences[signer] = (account, sequence + 1)
        return await until(self._committed(sent["txhash"]), COMMIT_TIMEOUT, f"tx {sent['txhash']}")

    async def _account(self, signer: str) -> tuple[int, int]:
        address = self.info.validators[signer].account
        status, body = await self.rest(f"/cosmos/auth/v1beta1/account_info/{address}")
        if status != 200:
            raise TxFailed(f"account of {signer} ({address}): HTTP {status} {body}")
        return int(body["info"].get("account_number") or 0), int(body["info"].get("sequence") or 0)

    def _committed(self, txhash: str) -> Callable[[], Awaitable[Committed | None]]:
        async def check() -> Committed | None:
            body = await self.rpc(f"/tx?hash=0x{txhash}")
            result = body.get("result")
            if not result:
                return None  # not in a block yet: "tx (...) not found"
            outcome = result["tx_result"]
            if int(outcome.get("code") or 0) != 0:
                raise TxFailed(f"tx {txhash} failed in block {result['height']}: {outcome.get('log')}")
            return Committed(height=int(result["height"]), txhash=txhash, events=outcome.get("events") or [])

        return check

    async def edit_validator(self, moniker: str, details: str) -> Committed:
        return await self.tx(moniker, "staking", "edit-validator", "--details", details)

    async def create_consumer(
        self, chain_id: str, opt_in: list[str], owner: str | None = None, launch: bool = True
    ) -> str:
        """Create a consumer chain, opt `opt_in` in and (unless `launch` is False: it then stays REGISTERED)
        launch it; returns its consumer id once LAUNCHED.

        Created without a spawn time (phase REGISTERED), then opted in to, and only then given a spawn time
        of now: a chain whose spawn time passes with nobody opted in fails to launch and falls back to
        REGISTERED (ICS v7 BeginBlockLaunchConsumers), so the opt-ins must be committed first."""
        owner = owner or self.specs[0].moniker
        params = self._initialization_parameters(chain_id, spawn_time=None)
        created = await self._json_tx(
            owner,
            "create-consumer",
            {
                "chain_id": chain_id,
                "metadata": {"name": chain_id, "description": "peersync real testbed", "metadata": "{}"},
                "initialization_parameters": params,
                "power_shaping_parameters": {"top_N": 0},  # an opt-in chain: only who opts in validates
            },
        )
        consumer_id = created.attribute("create_consumer", "consumer_id")
        if consumer_id is None:
            raise TxFailed(f"create-consumer {chain_id}: no consumer_id in the events {created.events}")
        await asyncio.gather(*(self.tx(m, "provider", "opt-in", consumer_id) for m in opt_in))
        if not launch:
            return consumer_id
        now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        await self._json_tx(
            owner,
            "update-consumer",
            {
                "consumer_id": consumer_id,
                "initialization_parameters": self._initialization_parameters(chain_id, now),
            },
        )
        await until(
            self._launched(consumer_id), LAUNCH_TIMEOUT, f"consumer {consumer_id} ({chain_id}) LAUNCHED"
        )
        return consumer_id

    async def _json_tx(self, signer: str, command: str, body: dict[str, Any]) -> Committed:
        folder = self.state_dir / "txs"
        folder.mkdir(exist_ok=True)
        path = folder / f"{command}-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(body, indent=1))
        return await self.tx(signer, "provider", command, str(path))

    @staticmethod
    def _initialization_parameters(chain_id: str, spawn_time: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "initial_height": {"revision_number": revision_number(chain_id), "revision_height": 1},
            "genesis_hash": "",
            "binary_hash": "",
            "unbonding_period": CONSUMER_UNBONDING_NS,
            "ccv_timeout_period": 2_419_200 * 10**9,
            "transfer_timeout_period": 1_800 * 10**9,
            "consumer_redistribution_fraction": "0.75",
            "blocks_per_distribution_transmission": 1000,
            "historical_entries": 10000,
            "distribution_transmission_channel": "",
            "connection_id": "",
        }
        if spawn_time is not None:
            params["spawn_time"] = spawn_time
        return params

    def _launched(self, consumer_id: str) -> Callable[[], Awaitable[bool | None]]:
        async def check() -> bool | None:
            status, body = await self.rest(f"/interchain_security/ccv/provider/consumer_chain/{consumer_id}")
            if status == 200 and body.get("phase") == "CONSUMER_PHASE_LAUNCHED":
                return True
            if status == 200 and body.get("phase") == "CONSUMER_PHASE_REGISTERED" and self._launch_failed():
                raise TxFailed(f"consumer {consumer_id} failed to launch; see {self.state_dir / 'node.log'}")
            return None

        return check

    def _launch_failed(self) -> bool:
        return self.node is not None and "could not launch chain" in self.node.output()
