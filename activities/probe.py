"""The reachability gate: can a consumer node be dialled at the new endpoint on each consumer's P2P port?

A DNS name is resolved here and only here, and every address it resolves to must pass the same
public-address policy as a literal (DNS rebinding to 169.254.169.254 is refused, not dialled).
"""

from __future__ import annotations

import asyncio
import socket

from pydantic import BaseModel

from core.endpoint import Endpoint, EndpointError, check_resolved_address
from core.policy import EndpointPolicy


class PortProbe(BaseModel):
    port: int
    reachable: bool
    address: str | None = None
    error: str | None = None


class ProbeReport(BaseModel):
    endpoint: str
    results: list[PortProbe]

    @property
    def reachable(self) -> bool:
        return all(r.reachable for r in self.results)

    def summary(self) -> str:
        bad = [f"{r.port} ({r.error})" for r in self.results if not r.reachable]
        return "reachable" if not bad else f"{self.endpoint} unreachable on " + ", ".join(bad)


async def resolve(endpoint: Endpoint, policy: EndpointPolicy) -> list[str]:
    """Addresses to dial; for a DNS name, every resolved address is checked against the policy."""
    if endpoint.kind != "dns":
        return [endpoint.host]
    infos = await asyncio.get_running_loop().getaddrinfo(endpoint.host, None, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        check_resolved_address(address, policy, host=endpoint.host)
    return addresses


async def _connect(address: str, port: int, timeout: float) -> None:
    _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass


async def probe(
    endpoint: Endpoint, ports: list[int], policy: EndpointPolicy, timeout: float = 3.0
) -> ProbeReport:
    """TCP-connect to `endpoint` at each port; a port is reachable when any resolved address answers."""
    try:
        addresses = await resolve(endpoint, policy)
    except (OSError, EndpointError) as exc:
        reason = exc.reason if isinstance(exc, EndpointError) else f"cannot resolve: {exc}"
        return ProbeReport(
            endpoint=endpoint.render(),
            results=[PortProbe(port=p, reachable=False, error=reason) for p in ports],
        )
    results = []
    for port in sorted(set(ports)):
        error = "no address"
        for address in addresses:
            try:
                await _connect(address, port, timeout)
            except (OSError, TimeoutError) as exc:
                error = f"{address}: {type(exc).__name__}: {exc}".rstrip(": ")
                continue
            results.append(PortProbe(port=port, reachable=True, address=address))
            break
        else:
            results.append(PortProbe(port=port, reachable=False, error=error))
    return ProbeReport(endpoint=endpoint.render(), results=results)
