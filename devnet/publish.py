"""A validator publishes new `details` on the devnet's chain, on either testbed, as an outside process would:
through the chain emulator's admin API, or as a real `tx staking edit-validator` signed by the validator's key
in the real provider's test keyring and broadcast with the provider's own CLI."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from devnet.files import DevnetManifest

COMMIT_TIMEOUT = 60.0
GAS = "1000000"  # fees are zero on the devnet; a fixed limit saves the simulation round trip


class PublishFailed(RuntimeError):
    pass


async def publish_details(manifest: DevnetManifest, moniker: str, details: str) -> int:
    """Publish `details` for the validator `moniker`; returns the height of the block that committed it."""
    if manifest.testbed == "real":
        return await _real_edit(manifest, moniker, details)
    async with aiohttp.ClientSession() as http:
        body = {"validator": moniker, "details": details}
        async with http.post(f"{manifest.chain_rpc_url}/devnet/edit_validator", json=body) as resp:
            payload = await resp.json()
            if resp.status not in (200, 202):
                raise PublishFailed(f"edit_validator {moniker}: HTTP {resp.status} {payload}")
            return int(payload["height"])


async def _real_edit(manifest: DevnetManifest, moniker: str, details: str) -> int:
    assert manifest.provider_cli is not None and manifest.provider_home is not None
    proc = await asyncio.create_subprocess_exec(
        str(manifest.provider_cli), "tx", "staking", "edit-validator", "--details", details,
        "--from", moniker, "--home", str(manifest.provider_home), "--gas", GAS, "--yes", "--output", "json",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise PublishFailed(f"edit-validator {moniker}: exit {proc.returncode}: {err.decode().strip()}")
    sent = json.loads(out)
    if int(sent.get("code") or 0):
        raise PublishFailed(f"edit-validator {moniker} rejected: {sent.get('raw_log')}")
    return await _committed_height(manifest.chain_rpc_url, sent["txhash"])


async def _committed_height(rpc_url: str, txhash: str) -> int:
    deadline = asyncio.get_running_loop().time() + COMMIT_TIMEOUT
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{rpc_url}/tx", params={"hash": f"0x{txhash}"}) as resp:
                result = (await resp.json(content_type=None)).get("result")
            if result:
                code = int(result["tx_result"].get("code") or 0)
                if code:
                    raise PublishFailed(f"tx {txhash} failed: {result['tx_result'].get('log')}")
                return int(result["height"])
            if asyncio.get_running_loop().time() > deadline:
                raise PublishFailed(f"tx {txhash} not committed after {COMMIT_TIMEOUT:.0f}s")
            await asyncio.sleep(0.2)
