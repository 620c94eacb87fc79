"""Hypothesis strategies and settings shared by the peer grammar tests (a helper module, not a test)."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from core.endpoint import Endpoint
from core.peers import Peer
from core.policy import EndpointPolicy, format_ip

# Deterministic (the same examples on every run and machine) and quick; no example database on disk.
PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow],
)

# For properties over lists of generated peers, whose examples cost more to build.
PROPERTY_FEW = settings(PROPERTY, max_examples=100)

# Everything a canonical endpoint or peer may contain: nothing that ends a TOML or shell string, splits
# a peer list, starts a URL query or is not ASCII.
WHITELIST = re.compile(r"[0-9a-z.:\[\]@-]+")

# Exempts every address, so that properties about the grammar reach the policy-free paths too.
PERMISSIVE = EndpointPolicy.from_setting("0.0.0.0/0,::/0")

ipv4_hosts = st.ip_addresses(v=4).map(str)
ipv6_hosts = st.ip_addresses(v=6).map(format_ip)
_labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
dns_hosts = (
    st.lists(_labels, min_size=2, max_size=5)
    .filter(lambda labels: not labels[-1].isdigit())
    .map(".".join)
    .filter(lambda name: len(name) <= 253)
)
ports = st.integers(min_value=1, max_value=65535)
node_ids = st.binary(min_size=20, max_size=20).map(bytes.hex)


@st.composite
def endpoints(draw: st.DrawFn, with_port: bool | None = None) -> Endpoint:
    kind = draw(st.sampled_from(["ipv4", "ipv6", "dns"]))
    host = draw({"ipv4": ipv4_hosts, "ipv6": ipv6_hosts, "dns": dns_hosts}[kind])
    if with_port is None:
        port = draw(st.none() | ports)
    else:
        port = draw(ports) if with_port else None
    return Endpoint(host=host, port=port, kind=kind)


@st.composite
def peers(draw: st.DrawFn) -> Peer:
    endpoint = draw(endpoints(with_port=True))
    return Peer(node_id=draw(node_ids), host=endpoint.host, port=endpoint.port)


# Characters that attack TOML, shell, URLs and the grammar itself, plus look-alikes.
HOSTILE_CHARS = (
    "0123456789abcdefABCDEF.:[]-@,;$()`'\"\\/#&|<>=%{} \t\n\r\x00\x0b"
    "\uff11\uff0e\u0660\u00a0\u2028\u200b\u0430\u0435"
)
hostile_text = st.text(alphabet=HOSTILE_CHARS, max_size=40)
