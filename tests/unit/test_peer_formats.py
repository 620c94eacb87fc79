"""The three ConfigMap peer formats and the per-namespace layout."""

from __future__ import annotations

import re
import shlex
import tomllib

import pytest
import tomlkit
from hypothesis import example, given
from hypothesis import strategies as st
from peer_strategies import PROPERTY, PROPERTY_FEW, peers

from core.peer_formats import (
    MAX_PEERS,
    ConsumerLayout,
    LayoutError,
    PeerFormatError,
    PeersFormat,
    merged_list,
    read_peers,
    write_peers,
)
from core.peers import Peer, canonical_peers, parse_peer, render_peer_list

A = parse_peer("a3258dcbf45dca0df052981870f2d1441a36d145@8.8.8.8:28746")
B = parse_peer("738aadf42c14e9f8ed81d8c3f3c82ce9f53f3eb5@[2606:4700::1]:28746")
C = parse_peer("0123456789abcdef0123456789abcdef01234567@node.example.com:28746")

CONFIG_TOML = """\
# This is a TOML config file.
# For more information, see https://github.com/toml-lang/toml
proxy_app = "tcp://127.0.0.1:26658"
moniker = "alice"

#######################################################
###       RPC Server Configuration Options          ###
#######################################################
[rpc]
laddr = "tcp://0.0.0.0:28747"
cors_allowed_origins = []

#######################################################
###           P2P Configuration Options             ###
#######################################################
[p2p]

# Address to listen for incoming connections
laddr = "tcp://0.0.0.0:28746"

# Comma separated list of seed nodes to connect to
seeds = ""

# Comma separated list of nodes to keep persistent connections to
persistent_peers = "a3258dcbf45dca0df052981870f2d1441a36d145@9.9.9.9:28746"

# Set true for strict address routability rules
addr_book_strict = true
max_num_inbound_peers = 40

[mempool]
size = 5000
"""

INIT_SH = """\
#!/bin/bash
set -e
export CHAIN_HOME="/data/.consumer-1"
persistent_peers="a3258dcbf45dca0df052981870f2d1441a36d145@9.9.9.9:28746"
if [ -n "$persistent_peers" ]; then
    sed -i "s/^persistent_peers = .*/persistent_peers = \\"$persistent_peers\\"/" "$CHAIN_HOME/config/config.toml"
fi
exec interchain-security-cd start --home "$CHAIN_HOME"
"""


def _lines(text: str) -> list[str]:
    """Lines as TOML and sh see them: split at \n only (str.splitlines also splits inside a string value
    that holds \x85 or \u2028, which TOML allows)."""
    return text.split("\n")


def _without(text: str, pattern: str) -> list[str]:
    return [line for line in _lines(text) if not re.match(pattern, line)]


# ---------------------------------------------------------------- config.toml


def test_config_toml_read() -> None:
    result = read_peers("config.toml", CONFIG_TOML)
    assert [str(p) for p in result.peers] == ["a3258dcbf45dca0df052981870f2d1441a36d145@9.9.9.9:28746"]
    assert result.problems == []


def test_config_toml_write_changes_only_persistent_peers() -> None:
    out = write_peers("config.toml", CONFIG_TOML, [C, A, B, A])
    assert f'persistent_peers = "{C},{B},{A}"\n' in out
    pattern = r"persistent_peers ="
    assert _without(out, pattern) == _without(CONFIG_TOML, pattern)
    before, after = tomllib.loads(CONFIG_TOML), tomllib.loads(out)
    before["p2p"]["persistent_peers"] = f"{C},{B},{A}"
    assert after == before
    assert read_peers("config.toml", out).peers == [C, B, A]


def test_config_toml_keeps_spacing_quotes_style_and_trailing_comment() -> None:
    text = "[p2p]\n  persistent_peers   =  'x'   # managed by peersync\nseeds = ''\r\n"
    out = write_peers("config.toml", text, [A])
    # 'x' is not peersync's (it does not even parse): it stays, first, as the operator wrote it.
    assert out == f"[p2p]\n  persistent_peers   =  \"x,{A}\"   # managed by peersync\nseeds = ''\r\n"


def test_config_toml_dotted_keys_and_missing_key() -> None:
    out = write_peers("config.toml", 'p2p.seeds = ""\np2p.persistent_peers = ""\n', [A])
    assert out == f'p2p.seeds = ""\np2p.persistent_peers = "{A}"\n'
    added = write_peers("config.toml", '[p2p]\nseeds = ""\n\n[mempool]\nsize = 1\n', [A])
    assert tomllib.loads(added) == {"p2p": {"seeds": "", "persistent_peers": str(A)}, "mempool": {"size": 1}}
    created = write_peers("config.toml", 'moniker = "x"\n', [A])
    assert tomllib.loads(created) == {"moniker": "x", "p2p": {"persistent_peers": str(A)}}


def test_config_toml_empty_list_and_tolerant_read() -> None:
    assert write_peers("config.toml", CONFIG_TOML, []) == CONFIG_TOML  # A@9.9.9.9 is not known to be ours
    out = write_peers("config.toml", CONFIG_TOML, [], owned_ids={A.node_id})  # recorded as ours: it goes
    assert 'persistent_peers = ""\n' in out
    assert read_peers("config.toml", out).peers == []
    messy = f'[p2p]\npersistent_peers = " {A} ,, bogus, XX@1.2.3.4:1,{B} "\npersistent-peers = ""\n'
    result = read_peers("config.toml", messy)
    assert result.peers == [A, B]
    assert result.problems == [
        "persistent_peers entry 3 'bogus': peer 'bogus' must be <node id>@<host>:<port> with exactly one '@'",
        "persistent_peers entry 4 'XX@1.2.3.4:1': node id 'XX' is not 40 hex digits",
        "config.toml [p2p] also has persistent-peers, which peersync does not manage",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[p2p\n", "config.toml cannot be parsed:"),
        ("a = 1\na = 2\n", "config.toml cannot be parsed:"),
        ("p2p = 1\n", "config.toml has a 'p2p' that is not a table"),
        ('[p2p]\nseeds = ""\n', "config.toml has no [p2p] persistent_peers"),
        ('[p2p]\npersistent_peers = ["x"]\n', "config.toml [p2p] persistent_peers is not a string"),
    ],
)
def test_config_toml_unusable_is_reported_not_raised(text: str, problem: str) -> None:
    result = read_peers("config.toml", text)
    assert result.peers == []
    assert result.problems[0].startswith(problem)


@pytest.mark.parametrize("text", ["[p2p\n", "p2p = 1\n", "[[p2p]]\na = 1\n"])
def test_config_toml_unusable_is_never_written(text: str) -> None:
    with pytest.raises(PeerFormatError):
        write_peers("config.toml", text, [A])


# ---------------------------------------------------------------- init.sh


def test_init_sh_read_and_write_keep_every_other_byte() -> None:
    result = read_peers("init.sh", INIT_SH)
    assert [str(p) for p in result.peers] == ["a3258dcbf45dca0df052981870f2d1441a36d145@9.9.9.9:28746"]
    assert result.problems == []
    out = write_peers("init.sh", INIT_SH, [A, B])
    pattern = r"persistent_peers="
    assert _without(out, pattern) == _without(INIT_SH, pattern)
    assert f'\npersistent_peers="{B},{A}"\n' in out
    assert read_peers("init.sh", out).peers == [B, A]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("persistent_peers=''", 'persistent_peers="{}"'),
        ("persistent_peers=", 'persistent_peers="{}"'),
        ("persistent_peers=old,list", 'persistent_peers="old,list,{}"'),  # the operator's entries stay
        ('  export persistent_peers="" # peers', '  export persistent_peers="{}" # peers'),
        ('\tlocal persistent_peers="x"; echo ok', '\tlocal persistent_peers="x,{}"; echo ok'),
        ('persistent_peers="x"\r', 'persistent_peers="x,{}"\r'),
    ],
)
def test_init_sh_assignment_forms(line: str, expected: str) -> None:
    text = f"#!/bin/sh\n{line}\necho done\n"
    out = write_peers("init.sh", text, [A])
    assert out == f"#!/bin/sh\n{expected.format(A)}\necho done\n"


@pytest.mark.parametrize(
    "line",
    [
        'persistent_peers="$PEERS"',
        "persistent_peers=$PEERS",
        'persistent_peers="`cat peers`"',
        'persistent_peers="$(cat peers)"',
        'persistent_peers="unterminated',
        'persistent_peers="a\\"b"',
        'persistent_peers="a"b',
        "persistent_peers=a#b",
    ],
)
def test_init_sh_refuses_to_replace_what_it_cannot_read(line: str) -> None:
    text = f"#!/bin/sh\n{line}\n"
    result = read_peers("init.sh", text)
    assert result.peers == [] and len(result.problems) == 1
    with pytest.raises(PeerFormatError):
        write_peers("init.sh", text, [A])


def test_init_sh_without_assignment() -> None:
    text = 'sed -i "s/persistent_peers = \\"\\"/persistent_peers = \\"$P\\"/" config.toml\n'
    assert read_peers("init.sh", text).problems == ["init.sh has no persistent_peers= assignment"]
    with pytest.raises(PeerFormatError, match="no persistent_peers= assignment"):
        write_peers("init.sh", text, [A])


def test_init_sh_several_assignments_are_all_rewritten() -> None:
    text = f'if x; then\n  persistent_peers="{A}"\nelse\n  persistent_peers="{B}"\nfi\n'
    result = read_peers("init.sh", text)
    assert result.peers == [A]
    assert result.problems == ["init.sh assigns persistent_peers more than once with different values"]
    out = write_peers("init.sh", text, [C], owned_ids={A.node_id, B.node_id})
    assert out == f'if x; then\n  persistent_peers="{C}"\nelse\n  persistent_peers="{C}"\nfi\n'
    # Every assignment gets the list merged from the first one (the one read reports).
    kept = write_peers("init.sh", text, [C])
    assert kept == f'if x; then\n  persistent_peers="{A},{C}"\nelse\n  persistent_peers="{A},{C}"\nfi\n'
    assert read_peers("init.sh", out).problems == []


# ---------------------------------------------------------------- key


def test_key_format() -> None:
    assert write_peers("key", "anything at all", [A, B, C]) == f"anything at all,{C},{B},{A}"
    assert write_peers("key", f"{A}", [B, C]) == f"{A},{C},{B}"
    assert write_peers("key", f"{A}", [B, C], owned_ids={A.node_id}) == f"{C},{B}"
    assert write_peers("key", "", []) == ""
    result = read_peers("key", f" {A} ,\n{B},,tcp://{C}, nope ")
    assert result.peers == [A, B, C]
    assert result.problems == [
        "persistent_peers entry 5 'nope': peer 'nope' must be <node id>@<host>:<port> with exactly one '@'"
    ]


# ---------------------------------------------------------------- writing is guarded


@pytest.mark.parametrize("fmt", ["config.toml", "init.sh", "key"])
def test_write_accepts_only_peer_objects(fmt: PeersFormat) -> None:
    with pytest.raises(PeerFormatError, match="is not a Peer"):
        write_peers(fmt, CONFIG_TOML if fmt == "config.toml" else INIT_SH, [A, '1.2.3.4"\nx = 1'])  # type: ignore[list-item]


def test_write_caps_the_list() -> None:
    many = [Peer(node_id=f"{i:040x}", host="8.8.8.8", port=26656) for i in range(MAX_PEERS + 1)]
    with pytest.raises(PeerFormatError, match="more than the 500"):
        write_peers("key", "", many)
    assert write_peers("key", "", many[:MAX_PEERS]).count(",") == MAX_PEERS - 1


def test_unknown_format() -> None:
    with pytest.raises(PeerFormatError):
        read_peers("yaml", "")  # type: ignore[arg-type]
    with pytest.raises(PeerFormatError):
        write_peers("yaml", "", [])  # type: ignore[arg-type]


# ---------------------------------------------------------------- properties

_peer_lists = st.lists(peers(), max_size=6)
_comment_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u2028\u2029\x85"), max_size=20
)
_toml_strings = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20).map(
    lambda text: tomlkit.item(text).as_string()
)
_spaces = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def _config_documents(draw: st.DrawFn) -> str:
    """A config.toml with arbitrary comments, neighbours, spacing and an arbitrary old value."""
    neighbours = draw(
        st.lists(
            st.tuples(st.sampled_from(["seeds", "laddr", "x_y", "k-1"]), _toml_strings),
            max_size=3,
            unique_by=lambda kv: kv[0],
        )
    )
    split = draw(st.integers(0, len(neighbours)))
    lines = [f"# {draw(_comment_text)}", f"moniker = {draw(_toml_strings)}", "", "[p2p]"]
    lines += [f"{key} = {value}" for key, value in neighbours[:split]]
    trailing = draw(st.sampled_from(["", f"  # {draw(_comment_text)}"]))
    lines.append(
        f"{draw(_spaces)}persistent_peers{draw(_spaces)}={draw(_spaces)}{draw(_toml_strings)}{trailing}"
    )
    lines += [f"{key} = {value}" for key, value in neighbours[split:]]
    lines += ["", "[mempool]", f"size = {draw(st.integers(0, 10**6))}", f"# {draw(_comment_text)}"]
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines) + "\n"


@PROPERTY_FEW
@given(_config_documents(), _peer_lists)
@example(document='[p2p]\npersistent_peers="\x85"\n\n[mempool]\n# \n', items=[])  # NEL inside the old value
def test_config_toml_write_then_read_and_other_bytes_identical(document: str, items: list[Peer]) -> None:
    tomllib.loads(document)  # the generator makes valid TOML
    old = tomllib.loads(document)["p2p"]["persistent_peers"]
    out = write_peers("config.toml", document, items)
    ours = {peer.node_id for peer in items}
    assert read_peers("config.toml", out).owned(ours) == canonical_peers(items)
    pattern = r"[ \t]*persistent_peers[ \t]*="
    assert _without(out, pattern) == _without(document, pattern)
    old_line = next(line for line in _lines(document) if re.match(pattern, line))
    new_line = next(line for line in _lines(out) if re.match(pattern, line))
    assert new_line.split("=", 1)[0] == old_line.split("=", 1)[0]
    expected = tomllib.loads(document)
    expected["p2p"]["persistent_peers"] = merged_list(old, canonical_peers(items))
    assert tomllib.loads(out) == expected


_script_lines = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=30
).filter(lambda line: not re.match(r"[ \t]*((export|local|readonly)[ \t]+)?persistent_peers=", line))
_old_values = st.sampled_from(['""', "''", '"x@y:1"', "old,list", "", "'a b'"])
_after_value = st.sampled_from(["", " # peers", "; echo ok", " && true", "\r"])


@st.composite
def _scripts(draw: st.DrawFn) -> str:
    before = draw(st.lists(_script_lines, max_size=4))
    after = draw(st.lists(_script_lines, max_size=4))
    lead = draw(st.sampled_from(["", "  ", "\t", "export ", "    export "]))
    line = f"{lead}persistent_peers={draw(_old_values)}{draw(_after_value)}"
    return "\n".join([*before, line, *after]) + draw(st.sampled_from(["", "\n"]))


@PROPERTY_FEW
@given(_scripts(), _peer_lists)
def test_init_sh_write_then_read_and_other_bytes_identical(script: str, items: list[Peer]) -> None:
    old = read_peers("init.sh", script)
    out = write_peers("init.sh", script, items)
    ours = {peer.node_id for peer in items}
    assert read_peers("init.sh", out).owned(ours) == canonical_peers(items)
    assert [e.text for e in read_peers("init.sh", out).kept(ours)] == [e.text for e in old.kept(ours)]
    pattern = r"[ \t]*(export[ \t]+)?persistent_peers="
    assert _without(out, pattern) == _without(script, pattern)
    line = next(line for line in _lines(out) if re.match(pattern, line))
    words = shlex.split(line.split(";")[0].split("#")[0].split("&&")[0], posix=True)
    kept_texts = [e.text for e in old.kept(ours)]
    assert (
        words[-1]
        == f"persistent_peers={','.join([*kept_texts, render_peer_list(items)] if items else kept_texts)}"
    )


@PROPERTY_FEW
@given(_peer_lists)
def test_key_write_then_read(items: list[Peer]) -> None:
    out = write_peers("key", "", items)
    assert re.fullmatch(r"[0-9a-z.:\[\]@,-]*", out)  # nothing that could end a TOML or shell string
    assert read_peers("key", out).peers == canonical_peers(items)
    assert read_peers("key", out).problems == []


@PROPERTY
@given(st.sampled_from(["config.toml", "init.sh", "key"]), st.text(max_size=200))
def test_reading_never_raises(fmt: PeersFormat, text: str) -> None:
    result = read_peers(fmt, text)
    for peer in result.peers:
        assert parse_peer(peer.render()) == peer


@PROPERTY
@given(st.text(max_size=200), _peer_lists)
def test_writing_arbitrary_text_either_refuses_or_yields_the_peers(text: str, items: list[Peer]) -> None:
    for fmt in ("config.toml", "init.sh"):
        try:
            out = write_peers(fmt, text, items)
        except PeerFormatError:
            continue
        assert read_peers(fmt, out).owned({p.node_id for p in items}) == canonical_peers(items)


# ---------------------------------------------------------------- the operator's entries are theirs

SENTRY = "f00dbabef00dbabef00dbabef00dbabef00dbabe@sentry-0.validator.svc:26656"
PRIVATE = "tcp://DEADBEEFDEADBEEFDEADBEEFDEADBEEFDEADBEEF@10.0.0.7:26656"  # as written: scheme, upper case
BOB_OLD = parse_peer("1111111111111111111111111111111111111111@8.8.4.4:28746")
BOB_NEW = parse_peer("1111111111111111111111111111111111111111@1.1.1.1:28746")
GONE = parse_peer("2222222222222222222222222222222222222222@9.9.9.9:28746")  # a validator that left

SENTRY_TOML = f"""\
[p2p]
# sentries first, as the operator wrote them
persistent_peers = "{SENTRY}, {BOB_OLD},{PRIVATE} ,{GONE},not a peer"
unconditional_peer_ids = "f00dbabef00dbabef00dbabef00dbabef00dbabe,deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
private_peer_ids = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
"""


def test_config_toml_keeps_sentries_private_peers_and_their_id_lists() -> None:
    out = write_peers("config.toml", SENTRY_TOML, [BOB_NEW, A], owned_ids={GONE.node_id})
    # The operator's entries (also the one that does not parse) stay, first and byte for byte; peersync's
    # old bob and the validator it recorded and no longer wants go; its own entries follow, sorted.
    assert f'persistent_peers = "{SENTRY},{PRIVATE},not a peer,{BOB_NEW},{A}"\n' in out
    pattern = r"persistent_peers ="
    assert _without(out, pattern) == _without(SENTRY_TOML, pattern)  # id lists and comments: untouched
    result = read_peers("config.toml", out)
    assert [e.text for e in result.kept({A.node_id, BOB_NEW.node_id})] == [SENTRY, PRIVATE, "not a peer"]
    assert result.unreadable == result.problems and len(result.problems) == 1
    assert result.document_problems == []
    assert write_peers("config.toml", out, [BOB_NEW, A]) == out  # idempotent: the very same bytes


def test_adoption_never_deletes_what_is_not_known_to_be_peersyncs() -> None:
    """Nothing recorded: a peer of a validator peersync does not want now may be the operator's; it stays."""
    out = write_peers("key", f"{GONE},{BOB_OLD}", [BOB_NEW])
    assert out == f"{GONE},{BOB_NEW}"


def test_init_sh_keeps_sentries_and_quotes_them_safely() -> None:
    script = f'#!/bin/sh\npersistent_peers="{SENTRY},{BOB_OLD}" # peers\nexec cometbft start\n'
    out = write_peers("init.sh", script, [BOB_NEW])
    assert out == f'#!/bin/sh\npersistent_peers="{SENTRY},{BOB_NEW}" # peers\nexec cometbft start\n'
    # A single-quoted operator entry may hold what double quotes would expand: it stays single-quoted.
    quoted = f"persistent_peers='$HOME@x:1,{BOB_OLD}'\n"
    out = write_peers("init.sh", quoted, [BOB_NEW])
    assert out == f"persistent_peers='$HOME@x:1,{BOB_NEW}'\n"
    assert shlex.split(out.split("=", 1)[1]) == [f"$HOME@x:1,{BOB_NEW}"]  # literally, no expansion


def test_key_keeps_sentries_and_private_peers() -> None:
    out = write_peers("key", f" {SENTRY} ,\n{BOB_OLD},,{PRIVATE}\n", [BOB_NEW])
    assert out == f"{SENTRY},{PRIVATE},{BOB_NEW}"
    assert write_peers("key", out, [BOB_NEW]) == out


_operator_texts = (
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=","), min_size=1, max_size=30)
    .map(lambda text: text.strip(" \t\r\n"))
    .filter(bool)
)
_operator_entries = st.lists(_operator_texts | peers().map(Peer.render), max_size=5)
_script_safe = st.from_regex(r"[A-Za-z0-9@:.\[\]_/+-]{1,30}", fullmatch=True)


@PROPERTY_FEW
@given(_operator_entries, _peer_lists, _peer_lists)
def test_operator_entries_survive_any_managed_write_byte_for_byte(
    operator: list[str], before: list[Peer], after: list[Peer]
) -> None:
    """Whatever peersync wrote before (recorded) and writes now, the operator's entries stay, in order."""
    ours = {p.node_id for p in [*before, *after]}
    operator = [e for e in operator if _entry_id(e) not in ours]
    for fmt, document in (
        ("key", ",".join(operator)),
        ("config.toml", f"[p2p]\npersistent_peers = {tomlkit.item(','.join(operator)).as_string()}\n"),
    ):
        first = write_peers(fmt, document, before)
        out = write_peers(fmt, first, after, owned_ids={p.node_id for p in before})
        result = read_peers(fmt, out)
        assert [e.text for e in result.kept(ours)] == operator
        assert result.owned(ours) == canonical_peers(after)
        assert write_peers(fmt, out, after) == out  # idempotent


@PROPERTY_FEW
@given(st.lists(_script_safe, max_size=4), _peer_lists)
def test_init_sh_operator_entries_survive_and_writes_are_idempotent(
    operator: list[str], items: list[Peer]
) -> None:
    ours = {p.node_id for p in items}
    operator = [e for e in operator if _entry_id(e) not in ours]
    script = f"#!/bin/sh\npersistent_peers={','.join(operator)}\necho done\n"
    out = write_peers("init.sh", script, items)
    assert [e.text for e in read_peers("init.sh", out).kept(ours)] == operator
    assert write_peers("init.sh", out, items) == out


def _entry_id(text: str) -> str | None:
    try:
        return parse_peer(text).node_id
    except ValueError:
        return None


# ---------------------------------------------------------------- layout from namespace annotations


def test_layout_defaults() -> None:
    layout = ConsumerLayout.from_annotations("consumer-1", None)
    assert layout.model_dump() == {
        "configmap": "consumer-1-config",
        "format": "config.toml",
        "key": "config.toml",
        "workload_kind": "deployment",
        "workload_name": "consumer-1",
        "strategy": "restart",
        "rpc_port": 26657,
        "signer": "local",
        "node_ids": "upstream",
    }
    assert layout.workload == "deployment/consumer-1"


@pytest.mark.parametrize("strategy", ["restart", "live", "live-then-restart"])
def test_layout_strategy_and_rpc_port(strategy: str) -> None:
    notes = {"peersync.io/strategy": strategy, "peersync.io/rpc-port": "26757"}
    layout = ConsumerLayout.from_annotations("consumer-1", notes)
    assert (layout.strategy, layout.rpc_port) == (strategy, 26757)


@pytest.mark.parametrize(
    ("notes", "words"),
    [
        ({"peersync.io/strategy": "hot"}, "is not one of restart, live, live-then-restart"),
        ({"peersync.io/strategy": ""}, "annotation peersync.io/strategy is empty"),
        ({"peersync.io/rpc-port": "0"}, "is not a port"),
        ({"peersync.io/rpc-port": "65536"}, "is not a port"),
        ({"peersync.io/rpc-port": "\uff12\uff16\uff16\uff15\uff17"}, "is not a port"),
    ],
)
def test_layout_refuses_bad_strategy_or_rpc_port(notes: dict[str, str], words: str) -> None:
    with pytest.raises(LayoutError, match=words):
        ConsumerLayout.from_annotations("consumer-1", notes)


@pytest.mark.parametrize(
    ("fmt", "key"), [("config.toml", "config.toml"), ("init.sh", "init.sh"), ("key", "persistent_peers")]
)
def test_layout_default_key_follows_format(fmt: str, key: str) -> None:
    layout = ConsumerLayout.from_annotations("consumer-1", {"peersync.io/peers-format": fmt})
    assert (layout.format, layout.key) == (fmt, key)


def test_layout_from_annotations() -> None:
    layout = ConsumerLayout.from_annotations(
        "consumer-1",
        {
            "peersync.io/configmap": "init-script",
            "peersync.io/peers-format": "init.sh",
            "peersync.io/peers-key": "start.sh",
            "peersync.io/workload": "statefulset/validator",
            "peersync.io/strategy": "live",
        },
    )
    assert (layout.configmap, layout.format, layout.key, layout.workload) == (
        "init-script",
        "init.sh",
        "start.sh",
        "statefulset/validator",
    )


@pytest.mark.parametrize(
    ("chain_id", "annotations", "message"),
    [
        (
            "consumer-1",
            {"peersync.io/peers-format": "yaml"},
            "annotation peersync.io/peers-format: 'yaml' is not one of config.toml, init.sh, key",
        ),
        (
            "consumer-1",
            {"peersync.io/configmap": "Bad_Name"},
            "annotation peersync.io/configmap: 'Bad_Name' is not a valid Kubernetes object name",
        ),
        ("consumer-1", {"peersync.io/configmap": " "}, "annotation peersync.io/configmap is empty"),
        (
            "consumer-1",
            {"peersync.io/peers-key": "a/b"},
            "annotation peersync.io/peers-key: 'a/b' is not a valid ConfigMap key",
        ),
        (
            "consumer-1",
            {"peersync.io/workload": "daemonset/x"},
            "annotation peersync.io/workload: 'daemonset/x' is not deployment/<name> or statefulset/<name>",
        ),
        (
            "consumer-1",
            {"peersync.io/workload": "deployment/"},
            "annotation peersync.io/workload: 'deployment/' is not deployment/<name> or statefulset/<name>",
        ),
        (
            "consumer-1",
            {"peersync.io/workload": "deployment/a/b"},
            "annotation peersync.io/workload: 'a/b' is not a valid Kubernetes object name",
        ),
        (
            "Consumer_1",
            {},
            "default ConfigMap name (set peersync.io/configmap instead): 'Consumer_1-config' is not a valid "
            "Kubernetes object name",
        ),
        (
            "Consumer_1",
            {"peersync.io/configmap": "cm"},
            "default workload name (set peersync.io/workload instead): 'Consumer_1' is not a valid Kubernetes "
            "object name",
        ),
    ],
)
def test_layout_errors_name_the_annotation(chain_id: str, annotations: dict[str, str], message: str) -> None:
    with pytest.raises(LayoutError) as caught:
        ConsumerLayout.from_annotations(chain_id, annotations)
    assert str(caught.value) == message
