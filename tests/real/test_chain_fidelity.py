"""Emulator fidelity, measured (issue 10, item 7, chain part): the SAME requests against the real provider
chain (interchain-security-pd v7.0.1) and the chain emulator, compared field by field.

Both worlds hold the same validators (same monikers, stakes and `details`) and the same consumers, created the
same way (MsgCreateConsumer by alice with the same metadata, MsgOptIn by each validator, then launched), and
each gets one MsgEditValidator. Values that legitimately differ between two chains are normalised before the
comparison: addresses and keys become `<moniker.kind>` labels (so opt-in lists still have to name the same
validators), hashes, times, heights, ports and node ids become placeholders. Everything else (field names,
nesting, enums, null vs "", error codes and messages) must be equal, so any future drift fails here.

One real chain and one emulator for the module (about 15 s on 2 cores).
"""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from activities.chain_rest import ChainRest
from activities.chain_view import validator_records
from core.addresses import valoper_to_account
from core.policy import EndpointPolicy
from devnet.chain.server import ChainEmulator
from devnet.loop_thread import serve_in_thread
from devnet.real.chain import FOLLOWER_STAKE, LEADER_STAKE, RealProvider
from devnet.real.chain import ValidatorSpec as RealValidatorSpec
from devnet.scenario import Scenario
from devnet.scenario import ValidatorSpec as EmuValidatorSpec
from devnet.testbed import eventually
from tests.chain.conftest import _free_subnet
from tests.real.compare import differences

pytestmark = [pytest.mark.real, pytest.mark.asyncio(loop_scope="module")]

PREFIX = "cosmos"
MONIKERS = ["alice", "bob", "carol", "dave"]
CONSUMERS = {"consumer-1": MONIKERS, "consumer-2": ["alice", "carol"]}
DESCRIPTION = "peersync real testbed"  # what RealProvider.create_consumer submits as metadata
EDIT_QUERY = "message.action='/cosmos.staking.v1beta1.MsgEditValidator'"
STAKING = "/cosmos/staking/v1beta1"
PROVIDER = "/interchain_security/ccv/provider"


# ---- the two worlds --------------------------------------------------------------------------------------


@dataclass
class Side:
    """One chain, seen only through its public URLs, plus the labels that make its values comparable."""

    name: str
    rpc_url: str
    rest_url: str
    http: aiohttp.ClientSession
    labels: dict[str, str] = field(default_factory=dict)  # address or key -> "<moniker.kind>"
    consumer_ids: dict[str, str] = field(default_factory=dict)  # chain id -> consumer id
    operators: dict[str, str] = field(default_factory=dict)  # moniker -> valoper
    edit_height: int = 0  # the block holding this side's MsgEditValidator

    async def get(self, url: str) -> tuple[int, Any]:
        async with self.http.get(url) as resp:
            return resp.status, await resp.json(content_type=None)

    async def rest(self, path: str) -> tuple[int, Any]:
        return await self.get(self.rest_url + path)

    async def rpc(self, path: str) -> tuple[int, Any]:
        return await self.get(self.rpc_url + path)

    async def learn_labels(self) -> None:
        async with ChainRest(self.rest_url) as rest:
            policy = EndpointPolicy.from_setting("127.0.0.0/8")
            for record in await validator_records(rest, policy, PREFIX):
                m = record.moniker
                self.operators[m] = record.operator_address
                self.labels[record.operator_address] = f"<{m}.operator>"
                self.labels[valoper_to_account(record.operator_address, PREFIX)] = f"<{m}.account>"
                self.labels[record.valcons] = f"<{m}.valcons>"
            for v in (await rest.get(f"{STAKING}/validators"))["validators"]:
                m = v["description"]["moniker"]
                key = v["consensus_pubkey"]["key"]
                self.labels[key] = f"<{m}.pubkey>"
                # CometBFT's validator address is the first 20 bytes of sha256(pubkey), in upper hex.
                address = hashlib.sha256(base64.b64decode(key)).digest()[:20]
                self.labels[address.hex().upper()] = f"<{m}.address>"
                self.labels[base64.b64encode(address).decode()] = f"<{m}.address>"


@dataclass
class Worlds:
    real: Side
    emu: Side

    def __iter__(self) -> Iterator[Side]:
        return iter((self.real, self.emu))


def _details(net: str, index: int) -> str:
    return f"p2p={net}.{index}:26656"


def _scenario(net: str) -> Scenario:
    validators = [
        EmuValidatorSpec(
            moniker=m, details=_details(net, i), tokens=LEADER_STAKE if i == 1 else FOLLOWER_STAKE
        )
        for i, m in enumerate(MONIKERS, start=1)
    ]
    return Scenario(allow_cidrs=[f"{net}.0/24"], block_time=0.5, validators=validators)


async def _admin(
    http: aiohttp.ClientSession, emulator: ChainEmulator, path: str, body: dict[str, Any]
) -> Any:
    async with http.post(f"{emulator.rpc_url}/devnet/{path}", json=body) as resp:
        payload = await resp.json(content_type=None)
        assert resp.status == 200, payload
        assert payload.get("code", 0) == 0, payload
        return payload


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def worlds(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worlds]:
    net = _free_subnet()
    specs = [RealValidatorSpec(moniker=m, details=_details(net, i)) for i, m in enumerate(MONIKERS, start=1)]
    emulator = ChainEmulator(_scenario(net))
    timeout = aiohttp.ClientTimeout(total=20)
    with serve_in_thread(emulator):
        async with (
            RealProvider(Path(tmp_path_factory.mktemp("fidelity")), specs) as chain,
            aiohttp.ClientSession(timeout=timeout) as http,
        ):
            real = Side("real", chain.info.rpc_url, chain.info.rest_url, http)
            emu = Side("emulator", emulator.rpc_url, emulator.rest_url, http)
            for chain_id, opted in CONSUMERS.items():
                real.consumer_ids[chain_id] = await chain.create_consumer(chain_id, opt_in=opted)
                created = await _admin(
                    http,
                    emulator,
                    "create_consumer",
                    {
                        "chain_id": chain_id,
                        "description": DESCRIPTION,
                        "metadata": "{}",
                        "submitter": "alice",
                    },
                )
                emu.consumer_ids[chain_id] = created["consumer_id"]
                for moniker in opted:
                    await _admin(http, emulator, "opt_in", {"validator": moniker, "consumer": chain_id})
                await _admin(http, emulator, "consumer_phase", {"consumer": chain_id, "phase": "launched"})
            # One real endpoint move on each side, for tx_search.
            real.edit_height = (await chain.edit_validator("bob", f"p2p={net}.42:26656")).height
            edited = await _admin(
                http, emulator, "edit_validator", {"validator": "bob", "details": f"p2p={net}.42:26656"}
            )
            emu.edit_height = int(edited["height"])
            for side in (real, emu):  # the block after the edit carries the commit that signs it
                await eventually(lambda side=side: _height_above(side, side.edit_height), what="next block")
            for side in (real, emu):
                await side.learn_labels()
            print(f"real provider up (with consumers) in {chain.startup_seconds:.1f} s")
            yield Worlds(real, emu)


async def _height_above(side: Side, height: int) -> bool:
    _, body = await side.rpc("/status")
    return int(body["result"]["sync_info"]["latest_block_height"]) > height


# ---- normalisation ---------------------------------------------------------------------------------------

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_HEX = re.compile(r"^(0x)?[0-9A-Fa-f]{40,}$")
_B64 = re.compile(r"^[A-Za-z0-9+/]{16,}={0,2}$")
_BECH32 = re.compile(rf"^{PREFIX}(valoper|valcons)?1[02-9ac-hj-np-z]{{20,}}$")
_LOOPBACK_PORT = re.compile(r"127\.\d+\.\d+\.\d+:\d+")
_PROTO_TIME = re.compile(r"update_time:<seconds:\d+ (nanos:\d+ )?>")
_ANY_PORT = re.compile(r"(0\.0\.0\.0|\[::\]):\d+")
# Keys whose values are per-chain facts (heights, sizes of signed bytes, gas, node identity), not wire format.
_VOLATILE_KEYS = {
    "height", "latest_block_height", "earliest_block_height", "latest_block_hash", "earliest_block_hash",
    "latest_app_hash", "earliest_app_hash", "latest_block_time", "earliest_block_time", "total",
    "gas_used", "gas_wanted", "gas_limit", "id", "network", "voting_power", "proposer_priority",
    "account_number", "sequence", "raw_log", "version", "txhash", "tx", "index", "creation_height",
    "update_time", "unbonding_height", "next_key", "app_version", "block", "round",
    # an init parameter RealProvider chooses (1800 s); the emulator always answers ICS's default (3600 s)
    "transfer_timeout_period",
}  # fmt: skip


def normalise(value: Any, side: Side, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: normalise(v, side, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, side, key) for v in value]
    if not isinstance(value, str):
        return value
    if value in side.labels:
        return side.labels[value]
    if key in _VOLATILE_KEYS and value:
        return f"<{key}>"
    if _TIME.match(value) and not value.startswith("0001-01-01"):
        return "<time>"
    if _BECH32.match(value):
        return "<bech32>"
    if _HEX.match(value):
        return "<hex>"
    if _B64.match(value):
        return f"<base64:{len(base64.b64decode(value + '=='))}>"
    value = _PROTO_TIME.sub("update_time:<seconds:<s> nanos:<ns> >", value)  # Commission.String()
    value = _LOOPBACK_PORT.sub("<loopback>:<port>", value)
    return _ANY_PORT.sub(lambda m: f"{m.group(1)}:<port>", value)


def _by_label(items: list[Any]) -> list[Any]:
    """Store order follows the addresses, which differ between the chains: compare in moniker order."""

    def key(item: Any) -> str:
        if isinstance(item, dict):
            return str(item.get("operator_address") or item.get("provider_operator_address") or "")
        return str(item)

    return sorted(items, key=key)


async def same(
    worlds: Worlds, kind: str, path: str, *, sort: str | None = None, topology: bool = False, only: str = ""
) -> Any:
    """GET `path` (with `{name}` placeholders filled per side) on both and assert equal after normalising;
    `sort` names a list in the body whose order is address order (compared sorted by label); `only` a
    dotted path to compare alone (the rest of a `latest` block is a different block on each side)."""
    answers = []
    for side in worlds:
        concrete = path.format(**_fill(side))
        status, body = await (side.rest(concrete) if kind == "rest" else side.rpc(concrete))
        if topology:
            _same_topology(body)
        body = normalise(body, side)
        if sort is not None and isinstance(body.get(sort), list):
            body[sort] = _by_label(body[sort])
        for part in filter(None, only.split(".")):
            body = body[part]
        answers.append((status, body))
    (real_status, real_body), (emu_status, emu_body) = answers
    found = differences(real_body, emu_body)
    if real_status != emu_status:
        found.insert(0, f"HTTP status: real {real_status} vs emulator {emu_status}")
    assert not found, f"{kind} {path}:\n" + "\n".join(found)
    return real_body


def _same_topology(status: dict[str, Any]) -> None:
    """The two /status answers come from different kinds of node, on purpose: the real testbed's only node
    is alice's validator (so it reports her key and power, and RealProvider disables PEX, channel 0x00);
    the emulator's RPC node is a full node of its own, as in a production deployment."""
    result = status["result"]
    result["validator_info"] = {"address": "<node>", "pub_key": {"type": "<type>", "value": "<node>"}}
    info = result["node_info"]
    channels = info["channels"]
    info["channels"] = "".join(c for c in re.findall("..", channels) if c != "00")
    info["moniker"] = "<node moniker>"


def _fill(side: Side) -> dict[str, str]:
    values = {f"{m}": op for m, op in side.operators.items()}
    values["edit"] = str(side.edit_height)
    values["after_edit"] = str(side.edit_height + 1)
    values.update({f"c{i}": side.consumer_ids[c] for i, c in enumerate(CONSUMERS, start=1)})
    return values


# ---- the comparisons -------------------------------------------------------------------------------------


async def test_validator_pages(worlds: Worlds) -> None:
    body = await same(worlds, "rest", f"{STAKING}/validators", sort="validators")
    assert len(body["validators"]) == len(MONIKERS)  # the comparison compared something
    await same(worlds, "rest", f"{STAKING}/validators?status=BOND_STATUS_BONDED", sort="validators")
    await same(worlds, "rest", f"{STAKING}/validators?status=BOND_STATUS_UNBONDED", sort="validators")


async def test_validator_pagination(worlds: Worlds) -> None:
    # Which validator lands on which page follows the addresses; the page shapes and the walk must agree.
    walks = []
    for side in worlds:
        pages: list[Any] = []
        seen: list[Any] = []
        key = ""
        while True:
            query = "pagination.limit=3&pagination.count_total=true"
            if key:
                query += f"&pagination.key={urllib.parse.quote(key)}"
            status, body = await side.rest(f"{STAKING}/validators?{query}")
            assert status == 200, body
            key = body["pagination"]["next_key"] or ""
            normalised = normalise(body, side)
            seen += normalised.pop("validators")
            pages.append(normalised)
            if not key:
                break
        walks.append({"pages": pages, "validators": _by_label(seen)})
    found = differences(*walks)
    assert not found, "paginated walk:\n" + "\n".join(found)


async def test_single_validator(worlds: Worlds) -> None:
    body = await same(worlds, "rest", STAKING + "/validators/{bob}")
    assert body["validator"]["description"]["moniker"] == "bob"


async def test_consumer_chains_with_and_without_phase(worlds: Worlds) -> None:
    everything = await same(worlds, "rest", f"{PROVIDER}/consumer_chains/0")
    assert [c["chain_id"] for c in everything["chains"]] == list(CONSUMERS)
    await same(worlds, "rest", f"{PROVIDER}/consumer_chains/CONSUMER_PHASE_LAUNCHED")
    await same(worlds, "rest", f"{PROVIDER}/consumer_chains/CONSUMER_PHASE_STOPPED")


async def test_one_consumer(worlds: Worlds) -> None:
    body = await same(worlds, "rest", PROVIDER + "/consumer_chain/{c1}")
    # Settled by the real chain (ICS v7.0.1): the owner is the creator's account, empty hashes are null.
    assert body["owner_address"] == "<alice.account>"
    assert body["init_params"]["genesis_hash"] is None and body["init_params"]["binary_hash"] is None


async def test_opted_in_validators(worlds: Worlds) -> None:
    for consumer, key in (("consumer-1", "{c1}"), ("consumer-2", "{c2}")):
        body = await same(
            worlds, "rest", f"{PROVIDER}/opted_in_validators/{key}", sort="validators_provider_addresses"
        )
        labels = sorted(body["validators_provider_addresses"])
        assert labels == sorted(f"<{m}.valcons>" for m in CONSUMERS[consumer])
    await same(worlds, "rest", PROVIDER + "/consumer_validators/{c2}", sort="validators")


async def test_tx_search_for_the_edit(worlds: Worlds) -> None:
    query = urllib.parse.quote(f'"{EDIT_QUERY}"')
    body = await same(worlds, "rpc", f"/tx_search?query={query}")
    assert body["result"]["total_count"] == "1"
    rest_query = urllib.parse.quote(EDIT_QUERY)
    await same(worlds, "rest", f"/cosmos/tx/v1beta1/txs?query={rest_query}")


async def test_status(worlds: Worlds) -> None:
    body = await same(worlds, "rpc", "/status", topology=True)
    assert body["result"]["node_info"]["listen_addr"] == "tcp://<loopback>:<port>"


async def test_block_of_the_edit_and_its_commit_signatures(worlds: Worlds) -> None:
    # The block holding the edit (one tx on both sides) and the next one (whose last commit signs it).
    body = await same(worlds, "rest", "/cosmos/base/tendermint/v1beta1/blocks/{edit}")
    assert len(body["block"]["data"]["txs"]) == 1
    body = await same(worlds, "rest", "/cosmos/base/tendermint/v1beta1/blocks/{after_edit}")
    flags = [s["block_id_flag"] for s in body["block"]["last_commit"]["signatures"]]
    # Settled by the real chain: every validator of the set is listed, absent ones flagged ABSENT.
    assert flags == ["BLOCK_ID_FLAG_COMMIT"] + ["BLOCK_ID_FLAG_ABSENT"] * (len(MONIKERS) - 1)
    await same(worlds, "rpc", "/block?height={after_edit}")
    await same(worlds, "rest", "/cosmos/base/tendermint/v1beta1/blocks/latest", only="block.last_commit")


async def test_error_bodies(worlds: Worlds) -> None:
    await same(worlds, "rest", f"{PROVIDER}/consumer_chains/NOPE")
    await same(worlds, "rest", f"{STAKING}/validators/cosmosvaloper1bad")
    await same(worlds, "rest", f"{PROVIDER}/opted_in_validators/99")
    await same(worlds, "rest", f"{PROVIDER}/consumer_chain/99")
