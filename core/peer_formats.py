"""Where and how a consumer namespace keeps `persistent_peers` in its ConfigMap. Pure text in, text out.

Three formats (annotation `peersync.io/peers-format`):
- `config.toml`: the key holds CometBFT's config.toml; only `[p2p] persistent_peers` is edited (tomlkit
  keeps every other byte).
- `init.sh`: the key holds a node's start script with an upstream-style `persistent_peers="..."` shell
  assignment; only the value of that assignment is rewritten.
- `key`: the key holds the comma list itself.

Reading is tolerant (unusable entries become `problems`, and stay in `entries` as written).

Ownership (DESIGN invariant 14): peersync changes only the entries it manages. An entry is peersync's when it
parses and its node id is one peersync is writing now (a desired peer) or one it recorded on the ConfigMap
at its last write (`peersync.io/managed-peers`, see kube_ops). Every other entry is the operator's: sentries,
private peers, a friend's node, and entries that do not parse at all. A write keeps the operator's entries
byte for byte (their exact text, trimmed of the list whitespace around it, as CometBFT trims it), in their
order and first; then come peersync's entries, canonical, deduplicated and sorted. Only the separators are
normalised to a bare ','. One desired set on one document therefore always gives the same bytes, and
writing twice changes nothing. A ConfigMap peersync never wrote is adopted safely: what it cannot tell is
its own (no recorded id, not desired now) is the operator's and is never deleted.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Literal, get_args

import tomlkit
import tomlkit.exceptions
from pydantic import BaseModel, ConfigDict, Field

from core.endpoint import EndpointError, show
from core.node_ids import ANNOTATION_NODE_IDS, NodeIdSource, node_id_source
from core.peers import Peer, canonical_peers, parse_peer

PeersFormat = Literal["config.toml", "init.sh", "key"]
WorkloadKind = Literal["deployment", "statefulset"]
# restart: ConfigMap, then a rolling restart. live: ConfigMap (for the next start), then `dial_peers` on
# every ready node, no restart. live-then-restart: both, the nodes connect before their restart.
Strategy = Literal["restart", "live", "live-then-restart"]
# Who signs with the node's key: `local` (a key in the pod: two pods at once would double-sign), `remote` (a
# remote signer such as horcrux/tmkms guards against double signing), `none` (a sentry or full node).
Signer = Literal["local", "remote", "none"]

MAX_PEERS = 500  # far above any validator set; a bound on what one write can put into a node's config

ANNOTATION_CONFIGMAP = "peersync.io/configmap"
ANNOTATION_FORMAT = "peersync.io/peers-format"
ANNOTATION_KEY = "peersync.io/peers-key"
ANNOTATION_WORKLOAD = "peersync.io/workload"
ANNOTATION_STRATEGY = "peersync.io/strategy"
ANNOTATION_RPC_PORT = "peersync.io/rpc-port"
ANNOTATION_SIGNER = "peersync.io/signer"
DEFAULT_RPC_PORT = 26657  # CometBFT's [rpc] laddr port

DEFAULT_FORMAT: PeersFormat = "config.toml"
DEFAULT_KEYS: dict[PeersFormat, str] = {
    "config.toml": "config.toml",
    "init.sh": "init.sh",
    "key": "persistent_peers",
}

_LIST_WHITESPACE = " \t\r\n"


class PeerFormatError(ValueError):
    """A ConfigMap value that cannot be edited safely; nothing is written."""


class LayoutError(ValueError):
    """A namespace annotation (or the default derived from the chain id) that cannot be used."""


class ListEntry(BaseModel):
    """One non-empty entry of the comma list: its exact text (list whitespace around it trimmed) and the
    peer it names, or None when it does not parse (an operator's entry peersync keeps but cannot use)."""

    model_config = ConfigDict(frozen=True)

    text: str
    peer: Peer | None = None


class ReadResult(BaseModel):
    """The peers found, in document order, and why anything else found could not be used."""

    peers: list[Peer] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    entries: list[ListEntry] = Field(default_factory=list, description="every entry, parsed or not, in order")
    unreadable: list[str] = Field(
        default_factory=list, description="the problems that are about one entry (kept as the operator's)"
    )

    @property
    def document_problems(self) -> list[str]:
        """Problems with the document itself (no list, a second assignment...), not with one entry."""
        return [p for p in self.problems if p not in self.unreadable]

    def owned(self, owned_ids: Collection[str]) -> list[Peer]:
        """peersync's peers: those whose node id is in `owned_ids` (see the module doc)."""
        return [e.peer for e in self.entries if e.peer is not None and e.peer.node_id in owned_ids]

    def kept(self, owned_ids: Collection[str]) -> list[ListEntry]:
        """The operator's entries: everything that is not peersync's, unparseable ones included."""
        return [e for e in self.entries if e.peer is None or e.peer.node_id not in owned_ids]


# ---------------------------------------------------------------- the comma list shared by all formats


def _read_list(value: str, where: str) -> ReadResult:
    result = ReadResult()
    entries = [entry.strip(_LIST_WHITESPACE) for entry in value.split(",")]
    for index, entry in enumerate(entries, start=1):
        if not entry:
            continue  # CometBFT skips empty entries too (SplitAndTrimEmpty)
        try:
            peer = parse_peer(entry)
        except EndpointError as exc:
            problem = f"{where} entry {index} {show(entry)}: {exc.reason}"
            result.problems.append(problem)
            result.unreadable.append(problem)
            result.entries.append(ListEntry(text=entry))
            continue
        result.peers.append(peer)
        result.entries.append(ListEntry(text=entry, peer=peer))
    return result


def _checked_list(peers: Iterable[Peer]) -> list[Peer]:
    given = list(peers)
    for peer in given:
        # Only a Peer has passed the grammar; a string here would be interpolated unchecked.
        if not isinstance(peer, Peer):
            raise PeerFormatError(f"{show(repr(peer))} is not a Peer")
    unique = canonical_peers(given)
    if len(unique) > MAX_PEERS:
        raise PeerFormatError(f"{len(unique)} peers is more than the {MAX_PEERS} peersync writes")
    return unique


def merged_list(old_value: str, managed: list[Peer], owned_ids: Collection[str] = ()) -> str:
    """The new comma list: the operator's entries of `old_value` as written, then `managed` (canonical).

    `managed` must come from `_checked_list`; an old entry is peersync's (and dropped here) when its node id
    is one of `managed` or in `owned_ids` (the ids peersync recorded at its last write)."""
    ours = {peer.node_id for peer in managed} | set(owned_ids)
    texts = [entry.text for entry in read_list(old_value).kept(ours)]
    return ",".join([*texts, *(peer.render() for peer in managed)])


def read_list(value: str) -> ReadResult:
    """A bare comma list (the value of `persistent_peers`)."""
    return _read_list(value, "persistent_peers")


# ---------------------------------------------------------------- config.toml


def _p2p_table(document: tomlkit.TOMLDocument) -> Any:
    table = document.get("p2p")
    if table is None:
        return None
    if not isinstance(table, Mapping):
        raise PeerFormatError("config.toml has a 'p2p' that is not a table")
    return table


def _read_toml(text: str) -> ReadResult:
    try:
        table = _p2p_table(tomlkit.parse(text))
    except (tomlkit.exceptions.TOMLKitError, ValueError) as exc:
        # ParseError is a ValueError; PeerFormatError already says what is wrong.
        message = str(exc) if isinstance(exc, PeerFormatError) else f"config.toml cannot be parsed: {exc}"
        return ReadResult(problems=[message])
    if table is None or "persistent_peers" not in table:
        return ReadResult(problems=["config.toml has no [p2p] persistent_peers"])
    value = table["persistent_peers"]
    if not isinstance(value, str):
        return ReadResult(problems=["config.toml [p2p] persistent_peers is not a string"])
    result = _read_list(str(value), "persistent_peers")
    if "persistent-peers" in table:
        result.problems.append("config.toml [p2p] also has persistent-peers, which peersync does not manage")
    return result


def _write_toml(text: str, managed: list[Peer], owned_ids: Collection[str]) -> str:
    try:
        document = tomlkit.parse(text)
        before = document.unwrap()
        table = _p2p_table(document)
    except (tomlkit.exceptions.TOMLKitError, ValueError) as exc:
        if isinstance(exc, PeerFormatError):
            raise
        raise PeerFormatError(f"config.toml cannot be parsed: {exc}") from None
    if table is None:
        table = tomlkit.table()
        document["p2p"] = table
    old = table.get("persistent_peers", "")
    if not isinstance(old, str):
        raise PeerFormatError("config.toml [p2p] persistent_peers is not a string")
    peer_list = merged_list(str(old), managed, owned_ids)
    if "persistent_peers" in table and old == peer_list:
        return text  # nothing of ours changes: not even tomlkit's re-rendering of the document
    # tomlkit escapes whatever an operator's entry holds; the check below proves the document means the same.
    table["persistent_peers"] = peer_list
    result = tomlkit.dumps(document)
    # Belt and braces: the new document must mean exactly the old one with this one value changed.
    expected = {**before, "p2p": {**before.get("p2p", {}), "persistent_peers": peer_list}}
    if tomlkit.parse(result).unwrap() != expected:  # pragma: no cover - would be a tomlkit bug
        raise PeerFormatError("editing config.toml would change more than [p2p] persistent_peers")
    return result


# ---------------------------------------------------------------- init.sh

# An assignment at the start of a line, as upstream's init scripts write it.
_ASSIGNMENT = re.compile(
    r"^(?P<lead>[ \t]*(?:(?:export|local|readonly)[ \t]+)?persistent_peers=)(?P<rest>[^\n]*)$", re.MULTILINE
)
# A double-quoted value without backslashes (escapes are not worth interpreting here).
_VALUE_PATTERNS = {
    '"': re.compile(r'"(?P<value>[^"\\\n]*)"'),
    "'": re.compile(r"'(?P<value>[^'\n]*)'"),
}
_UNQUOTED = re.compile(r"(?P<value>[A-Za-z0-9@:.,\[\]_/+-]*)")
# What may follow the value without extending the shell word.
_WORD_END = re.compile(r"[ \t;&|)\r]|$")
_EXPANSION_CHARS = ("$", "`")


def _assignment_value(rest: str) -> re.Match[str]:
    """The value's match within `rest` (the text after `persistent_peers=`).

    PeerFormatError unless the value is one plain word, quoted or not, without shell expansion: a value
    peersync cannot read is a value it must not silently replace.
    """
    pattern = _VALUE_PATTERNS.get(rest[:1], _UNQUOTED)
    match = pattern.match(rest)
    if match is None or not _WORD_END.match(rest, match.end()):
        raise PeerFormatError(f"init.sh persistent_peers={show(rest)} is not a single quoted or plain word")
    if rest[:1] == '"' and any(char in match.group("value") for char in _EXPANSION_CHARS):
        raise PeerFormatError(f"init.sh persistent_peers={show(rest)} uses shell expansion")
    return match


def _read_script(text: str) -> ReadResult:
    assignments = list(_ASSIGNMENT.finditer(text))
    if not assignments:
        return ReadResult(problems=["init.sh has no persistent_peers= assignment"])
    values: list[str] = []
    problems: list[str] = []
    for assignment in assignments:
        try:
            match = _assignment_value(assignment.group("rest"))
        except PeerFormatError as exc:
            problems.append(str(exc))
            continue
        values.append(match.group("value"))
    if not values:
        return ReadResult(problems=problems)
    result = _read_list(values[0], "init.sh persistent_peers")
    if any(value != values[0] for value in values[1:]):
        problems.append("init.sh assigns persistent_peers more than once with different values")
    result.problems[:0] = problems
    return result


# Characters that mean something inside double quotes; an operator's entry read from single quotes may hold them.
_DOUBLE_QUOTE_SPECIAL = ("$", "`", '"', "\\")


def _shell_word(peer_list: str) -> str:
    """The list as one shell word that expands to nothing else. peersync's own entries are canonical (hex,
    digits, letters, '.', '-', ':', '[', ']', '@'); an operator's entry came out of a value of this very
    script that `_assignment_value` read as plain text, so it fits in the quotes it came from."""
    if not any(char in peer_list for char in _DOUBLE_QUOTE_SPECIAL):
        return f'"{peer_list}"'
    if "'" not in peer_list and "\n" not in peer_list:
        return f"'{peer_list}'"
    raise PeerFormatError(f"init.sh persistent_peers: {show(peer_list)} cannot be quoted safely")


def _write_script(text: str, managed: list[Peer], owned_ids: Collection[str]) -> str:
    assignments = list(_ASSIGNMENT.finditer(text))
    if not assignments:
        raise PeerFormatError("init.sh has no persistent_peers= assignment to rewrite")
    matches = [_assignment_value(assignment.group("rest")) for assignment in assignments]
    # Every assignment gets the same list, merged from the first (the one `read_peers` reports).
    word = _shell_word(merged_list(matches[0].group("value"), managed, owned_ids))
    pieces: list[str] = []
    position = 0
    for assignment, match in zip(assignments, matches, strict=True):
        value_start = assignment.start("rest") + match.start()
        value_end = assignment.start("rest") + match.end()
        pieces += [text[position:value_start], word]
        position = value_end
    pieces.append(text[position:])
    return "".join(pieces)


# ---------------------------------------------------------------- the three formats


def read_peers(fmt: PeersFormat, text: str) -> ReadResult:
    """The peers in a ConfigMap value. Never raises on content: what cannot be used is in `problems`."""
    if fmt == "config.toml":
        return _read_toml(text)
    if fmt == "init.sh":
        return _read_script(text)
    if fmt == "key":
        return _read_list(text, "persistent_peers")
    raise PeerFormatError(f"unknown peers format {fmt!r}")


def write_peers(fmt: PeersFormat, text: str, peers: Iterable[Peer], owned_ids: Collection[str] = ()) -> str:
    """`text` with peersync's entries replaced by `peers` (canonical order, after the operator's entries).

    peersync's entries are those whose node id is one of `peers` or in `owned_ids` (module doc); every
    other entry and every other byte of the document is kept."""
    managed = _checked_list(peers)
    if fmt == "config.toml":
        return _write_toml(text, managed, owned_ids)
    if fmt == "init.sh":
        return _write_script(text, managed, owned_ids)
    if fmt == "key":
        return merged_list(text, managed, owned_ids)
    raise PeerFormatError(f"unknown peers format {fmt!r}")


# ---------------------------------------------------------------- per-namespace layout

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_MAX_NAME = 253


def _object_name(value: str, what: str) -> str:
    if len(value) > _MAX_NAME or not _DNS_SUBDOMAIN.fullmatch(value):
        raise LayoutError(f"{what}: {show(value)} is not a valid Kubernetes object name")
    return value


class ConsumerLayout(BaseModel):
    """Which ConfigMap key holds the peers, in which format, and which workload reads it."""

    model_config = ConfigDict(frozen=True)

    configmap: str
    format: PeersFormat
    key: str
    workload_kind: WorkloadKind
    workload_name: str
    strategy: Strategy = "restart"
    rpc_port: int = DEFAULT_RPC_PORT
    signer: Signer = "local"
    node_ids: NodeIdSource = "upstream"  # where the peers' node ids come from (core/node_ids.py)

    @property
    def workload(self) -> str:
        return f"{self.workload_kind}/{self.workload_name}"

    @classmethod
    def from_annotations(cls, chain_id: str, annotations: Mapping[str, str] | None) -> ConsumerLayout:
        """Resolve a namespace's annotations against the defaults; LayoutError names the bad annotation."""
        found = dict(annotations or {})
        for name in (
            ANNOTATION_CONFIGMAP,
            ANNOTATION_FORMAT,
            ANNOTATION_KEY,
            ANNOTATION_WORKLOAD,
            ANNOTATION_STRATEGY,
            ANNOTATION_RPC_PORT,
            ANNOTATION_SIGNER,
            ANNOTATION_NODE_IDS,
        ):
            if name in found and not found[name].strip():
                raise LayoutError(f"annotation {name} is empty")

        if ANNOTATION_CONFIGMAP in found:
            configmap = _object_name(found[ANNOTATION_CONFIGMAP], f"annotation {ANNOTATION_CONFIGMAP}")
        else:
            configmap = _object_name(
                f"{chain_id}-config", f"default ConfigMap name (set {ANNOTATION_CONFIGMAP} instead)"
            )

        fmt = found.get(ANNOTATION_FORMAT, DEFAULT_FORMAT)
        if fmt not in get_args(PeersFormat):
            allowed = ", ".join(get_args(PeersFormat))
            raise LayoutError(f"annotation {ANNOTATION_FORMAT}: {show(fmt)} is not one of {allowed}")

        key = found.get(ANNOTATION_KEY, DEFAULT_KEYS[fmt])
        if len(key) > _MAX_NAME or not _CONFIGMAP_KEY.fullmatch(key):
            raise LayoutError(f"annotation {ANNOTATION_KEY}: {show(key)} is not a valid ConfigMap key")

        workload = found.get(ANNOTATION_WORKLOAD)
        if workload is None:
            kind, name = (
                "deployment",
                _object_name(chain_id, f"default workload name (set {ANNOTATION_WORKLOAD} instead)"),
            )
        else:
            kind, _, name = workload.partition("/")
            if kind not in get_args(WorkloadKind) or not name:
                raise LayoutError(
                    f"annotation {ANNOTATION_WORKLOAD}: {show(workload)} is not deployment/<name> or "
                    "statefulset/<name>"
                )
            _object_name(name, f"annotation {ANNOTATION_WORKLOAD}")

        strategy = found.get(ANNOTATION_STRATEGY, "restart")
        if strategy not in get_args(Strategy):
            allowed = ", ".join(get_args(Strategy))
            raise LayoutError(f"annotation {ANNOTATION_STRATEGY}: {show(strategy)} is not one of {allowed}")
        rpc_port = found.get(ANNOTATION_RPC_PORT, str(DEFAULT_RPC_PORT))
        if not rpc_port.isascii() or not rpc_port.isdigit() or not 0 < int(rpc_port) < 65536:
            raise LayoutError(f"annotation {ANNOTATION_RPC_PORT}: {show(rpc_port)} is not a port (1-65535)")
        signer = found.get(ANNOTATION_SIGNER, "local")
        if signer not in get_args(Signer):
            allowed = ", ".join(get_args(Signer))
            raise LayoutError(f"annotation {ANNOTATION_SIGNER}: {show(signer)} is not one of {allowed}")
        try:
            node_ids = node_id_source(found.get(ANNOTATION_NODE_IDS))
        except ValueError as exc:
            raise LayoutError(str(exc)) from None
        return cls(
            configmap=configmap,
            format=fmt,
            key=key,
            workload_kind=kind,
            workload_name=name,
            strategy=strategy,
            rpc_port=int(rpc_port),
            signer=signer,
            node_ids=node_ids,
        )
