"""docker-compose.yml and .env.example, checked as files against the code they deploy (no Docker engine here).

Expectations come from the code where it knows them: the settings' variable names and defaults
(workers.settings), the search attributes (workflows.search_attributes), the CLI's commands (workers.cli),
the watcher's health route (workers.cli_watch) and the worker's shutdown grace (workers.worker).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer.main
import yaml

from workers.cli import app as cli_app
from workers.cli_watch import _health_app
from workers.settings import Settings, load_settings
from workers.worker import GRACEFUL_SHUTDOWN
from workflows.search_attributes import ALL_KEYS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = "deploy/Dockerfile"

SETTINGS_ENV = {name: str(info.validation_alias.choices[0]) for name, info in Settings.model_fields.items()}
ENV_NAMES = set(SETTINGS_ENV.values())

# Interpolated into docker-compose.yml for compose itself; peersync never reads them.
COMPOSE_ONLY = {
    "PEERSYNC_KUBECONFIG_FILE",  # host path of the worker's kubeconfig
    "PEERSYNC_WORKER_USER",  # uid the worker runs as (to read a 0600 kubeconfig)
    "PUBLISH_ADDRESS",  # host address the ports are published on
    "POSTGRES_USER",  # credentials of Temporal's PostgreSQL
    "POSTGRES_PASSWORD",
}
# Settings whose value under compose deliberately differs from the code's default.
COMPOSE_OVERRIDES = {
    "TEMPORAL_ADDRESS",  # the temporal service
    "KUBECONFIG",  # the mounted file (worker only)
    "PEERSYNC_CHAIN_RPC_URL",  # the Docker host: a container's 127.0.0.1 is itself
    "PEERSYNC_CHAIN_REST_URL",
    "PEERSYNC_METRICS_ADDRESS",  # all interfaces, so that the published port reaches it
    "PEERSYNC_LOCAL_VALIDATOR",  # "" instead of None: equal to no operator address either
}


# --- compose interpolation -------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    pass


def interpolate(text: str, env: Mapping[str, str], seen: set[str] | None = None) -> str:
    """Resolve `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`,
    `${VAR:+alt}` and `${VAR+alt}` (defaults may nest) the way Compose does; `seen` collects the names."""
    seen = set() if seen is None else seen
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
        elif text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 2)
            out.append(_braced(text[i + 2 : end], env, seen))
            i = end + 1
        elif match := _NAME.match(text, i + 1):
            seen.add(match.group())
            out.append(env.get(match.group(), ""))
            i = match.end()
        else:
            raise InterpolationError(f"invalid template at {text[i : i + 20]!r} (a literal $ is written $$)")
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth, i = 1, start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth, i = depth + 1, i + 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unclosed ${{ in {text!r}")


def _braced(inner: str, env: Mapping[str, str], seen: set[str]) -> str:
    match = _NAME.match(inner)
    if match is None:
        raise InterpolationError(f"invalid variable name in ${{{inner}}}")
    name, rest = match.group(), inner[match.end() :]
    seen.add(name)
    value = env.get(name)
    if not rest:
        return value or ""
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise InterpolationError(f"invalid substitution ${{{inner}}}")
    word = interpolate(rest[len(operator) :], env, seen)
    unset_or_empty = not value if operator.startswith(":") else value is None
    if operator.endswith("-"):
        return word if unset_or_empty else str(value)
    if operator.endswith("?"):
        if unset_or_empty:
            raise InterpolationError(f"required variable {name}: {word}")
        return str(value)
    return "" if unset_or_empty else word


def resolve_tree(node: Any, env: Mapping[str, str], seen: set[str] | None = None) -> Any:
    """Interpolate every string value (not keys) of a parsed compose file."""
    if isinstance(node, dict):
        return {key: resolve_tree(value, env, seen) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve_tree(value, env, seen) for value in node]
    if isinstance(node, str):
        return interpolate(node, env, seen)
    return node


def test_interpolation_helper_follows_compose_rules() -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("a$$b ${SET} $SET", env) == "a$b v v"
    assert interpolate("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}", env) == "d d  d"
    assert interpolate("${SET:+alt} ${EMPTY:+alt} ${EMPTY+alt} ${UNSET+alt}", env) == "alt  alt "
    assert interpolate("${UNSET:-${SET:-x}}/${UNSET:-${NOPE:-x}}", env) == "v/x"
    assert interpolate("$${NOT_A_VAR}", env) == "${NOT_A_VAR}"
    with pytest.raises(InterpolationError):
        interpolate("${EMPTY:?needed}", env)
    with pytest.raises(InterpolationError):
        interpolate("echo $((1 + 1))", env)


# --- reading the file -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(doc, dict), "docker-compose.yml is not a YAML mapping"
    return doc


def resolved(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    return resolve_tree(yaml.safe_load(COMPOSE_FILE.read_text()), env or {})


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    """The compose file as Compose sees it with an empty environment (no .env)."""
    return resolved()


@pytest.fixture(scope="module")
def services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return doc["services"]


def environment(service: Mapping[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = [item.partition("=") for item in env]
        return {key: (value if sep else None) for key, sep, value in pairs}
    return {key: _env_value(value) for key, value in env.items()}


def _env_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def mounts(service: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Volumes in long form: type, source, target, read_only."""
    result = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            result.append({"read_only": False, **volume})
            continue
        source, _, rest = volume.partition(":")
        target, _, mode = rest.partition(":")
        if not rest:  # `/path` alone: an anonymous volume
            source, target = "", source
        kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
        result.append(
            {"type": kind, "source": source, "target": target, "read_only": "ro" in mode.split(",")}
        )
    return result


def argv(service: Mapping[str, Any]) -> list[str]:
    """What the container runs, when the service sets both entrypoint and command."""
    parts = []
    for key in ("entrypoint", "command"):
        value = service.get(key) or []
        parts += shlex.split(value) if isinstance(value, str) else list(value)
    return parts


def registration(services: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The one service that registers search attributes."""
    found = [(n, s) for n, s in services.items() if "search-attribute create" in " ".join(argv(s))]
    assert len(found) == 1, f"services registering search attributes: {[n for n, _ in found]}"
    return found[0]


def published_ports(service: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port."""
    result = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            if port.get("published") is not None:
                result.append((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
            continue
        parts = str(port).split("/")[0].rsplit(":", 2)
        if len(parts) == 1:
            continue  # container port only: a random host port
        host_ip = parts[0] if len(parts) == 3 else ""
        result.append((host_ip, int(parts[-2]), int(parts[-1])))
    return result


def healthcheck_url(service: Mapping[str, Any]) -> tuple[int, str]:
    test = service["healthcheck"]["test"]
    text = test if isinstance(test, str) else " ".join(test)
    match = re.search(r"https?://(?:127\.0\.0\.1|localhost):(\d+)(/[^\s'\"]*)", text)
    assert match, f"no local URL in the healthcheck {test!r}"
    return int(match.group(1)), match.group(2)


def metrics_port(service: Mapping[str, Any]) -> int:
    address = environment(service)["PEERSYNC_METRICS_ADDRESS"]
    assert address, "PEERSYNC_METRICS_ADDRESS is empty"
    return int(address.rpartition(":")[2])


def peersync_services(services: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in services.items()
        if (svc.get("build") or {}).get("dockerfile") == DOCKERFILE
    }


def walk_env_names(node: Any) -> Iterator[str]:
    """Every variable name set anywhere: mapping keys and `NAME=value` list items, anchors included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from walk_env_names(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, str) and re.fullmatch(r"[A-Z][A-Z0-9_]*(=.*)?", item, re.S):
                yield item.partition("=")[0]
            else:
                yield from walk_env_names(item)


def env_example() -> dict[str, str]:
    """Variables of .env.example, set (NAME=value) or shown commented out (# NAME=value)."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := re.fullmatch(r"#? ?([A-Z][A-Z0-9_]*)=(.*)", line.strip()):
            found[match.group(1)] = match.group(2).strip()
    return found


def referenced_variables() -> set[str]:
    seen: set[str] = set()
    resolve_tree(yaml.safe_load(COMPOSE_FILE.read_text()), {}, seen)
    return seen


def cli_type(key: Any) -> str:
    """The Temporal CLI's name of a search attribute type: KEYWORD_LIST -> KeywordList."""
    return "".join(part.capitalize() for part in key.indexed_value_type.name.split("_"))


def load_with(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str | None]) -> Settings:
    """Settings as the container would build them from this environment (nothing else set)."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    return load_settings()


# --- the checks -------------------------------------------------------------------------------------------


def test_parses_and_every_service_has_an_image_or_a_build(raw: dict[str, Any]) -> None:
    assert isinstance(raw.get("services"), dict) and raw["services"], "no services"
    for name, service in raw["services"].items():
        assert service.get("image") or service.get("build"), f"{name}: neither image nor build"


def test_third_party_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if service.get("build"):
            continue
        image = service["image"]
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        assert tag and tag != "latest", f"{name}: image {image} is not pinned to a version"


def test_every_peersync_variable_is_a_setting(raw: dict[str, Any]) -> None:
    names = {name for name in walk_env_names(raw) if name.startswith("PEERSYNC_")}
    assert names, "no PEERSYNC_* variable is set"
    assert names <= ENV_NAMES, f"not settings of workers.settings.Settings: {sorted(names - ENV_NAMES)}"


def test_every_setting_reaches_the_worker(services: dict[str, Any]) -> None:
    missing = ENV_NAMES - set(environment(services["worker"]))
    assert not missing, f"settings the worker's environment does not pass: {sorted(missing)}"


def test_env_example_lists_known_variables_and_all_the_compose_file_reads() -> None:
    example = set(env_example())
    unknown = {
        v for v in example if v not in ENV_NAMES and not v.startswith("TEMPORAL_") and v not in COMPOSE_ONLY
    }
    assert not unknown, f".env.example: neither settings, TEMPORAL_* nor compose-only: {sorted(unknown)}"
    used = referenced_variables()
    assert not example - used, (
        f".env.example lists variables the compose file never reads: {sorted(example - used)}"
    )
    assert not used - example, (
        f"the compose file reads variables .env.example omits: {sorted(used - example)}"
    )


def test_depends_on_targets_exist_and_their_conditions_can_be_met(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on {target}, which is not a service"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} healthy: no healthcheck"
            if condition == "service_completed_successfully":
                restart = services[target].get("restart")
                assert restart in (None, "no", False), (
                    f"{name} waits for one-shot {target}: restart {restart}"
                )
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        if name not in order:
            for target in depends_on(services[name]):
                visit(target, (*path, name))
            order.append(name)

    for name in services:
        visit(name, ())


def test_long_running_services_restart_unless_stopped(services: dict[str, Any]) -> None:
    one_shot = {
        target
        for service in services.values()
        for target, condition in depends_on(service).items()
        if condition == "service_completed_successfully"
    }
    for name, service in services.items():
        if name not in one_shot:
            assert service.get("restart") == "unless-stopped", f"{name}: restart {service.get('restart')}"


def test_published_host_ports_are_unique(services: dict[str, Any]) -> None:
    owners: dict[int, str] = {}
    for name, service in services.items():
        for _, host_port, _ in published_ports(service):
            assert host_port not in owners, f"host port {host_port}: {owners[host_port]} and {name}"
            owners[host_port] = name
    assert 7233 in owners and owners[7233] == "temporal", "Temporal's gRPC port 7233 is not published"


def test_peersync_health_checks_hit_the_published_metrics_port(services: dict[str, Any]) -> None:
    watcher_routes = {r.canonical for r in _health_app(SimpleNamespace(connected=True)).router.resources()}
    assert "/healthz" in watcher_routes
    expected_path = {"worker": "/metrics", "watcher": "/healthz"}
    assert set(peersync_services(services)) == set(expected_path)
    for name, path in expected_path.items():
        service = services[name]
        port = metrics_port(service)
        assert healthcheck_url(service) == (port, path), f"{name}: healthcheck is not GET {path} on :{port}"
        assert port in {container for _, _, container in published_ports(service)}, (
            f"{name}: :{port} unpublished"
        )
        test = service["healthcheck"]["test"]
        assert not re.search(r"\b(curl|wget)\b", " ".join(test)), f"{name}: no curl/wget in python:slim"


def test_search_attributes_are_exactly_the_codes(services: dict[str, Any]) -> None:
    name, service = registration(services)
    script = " ".join(argv(service))
    pairs = re.findall(r"--name\s+(\S+)\s+--type\s+(\S+)", script)
    assert len(pairs) == len(dict(pairs)), f"registered twice: {pairs}"
    assert dict(pairs) == {key.name: cli_type(key) for key in ALL_KEYS}
    for peersync in peersync_services(services).values():
        assert depends_on(peersync).get(name) == "service_completed_successfully"
        assert depends_on(peersync).get("temporal") == "service_healthy"


@pytest.mark.parametrize("env", [{}, {"TEMPORAL_NAMESPACE": "ops"}], ids=["defaults", "namespace-set"])
def test_search_attributes_go_to_peersyncs_namespace(env: dict[str, str]) -> None:
    services = resolved(env)["services"]
    script = " ".join(argv(registration(services)[1]))
    worker = environment(services["worker"])
    assert set(re.findall(r"--namespace\s+(\S+)", script)) == {worker["TEMPORAL_NAMESPACE"]}
    assert set(re.findall(r"--address\s+(\S+)", script)) == {worker["TEMPORAL_ADDRESS"]}
    assert environment(services["temporal"])["DEFAULT_NAMESPACE"] == worker["TEMPORAL_NAMESPACE"]
    assert environment(services["watcher"])["TEMPORAL_NAMESPACE"] == worker["TEMPORAL_NAMESPACE"]
    host = worker["TEMPORAL_ADDRESS"].rpartition(":")[0]
    assert host in services and "7233" in worker["TEMPORAL_ADDRESS"]


FAKE_TEMPORAL = """#!/bin/sh
echo "$*" >> "$FAKE_LOG"
if [ "$3" = create ]; then
    printf '%s\\n' "$FAKE_CREATE_OUTPUT"
    exit "$FAKE_CREATE_RC"
fi
"""


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.parametrize(
    ("output", "rc", "ok"),
    [
        ("Search attributes have been added", 0, True),
        ("unable to add search attributes: Search attribute PeersyncValidator already exists.", 1, True),
        ("search attribute PeersyncValidator already exists and has different type Text", 1, False),
        ("unable to get existing search attributes: connection refused", 1, False),
    ],
    ids=["new", "already-exists", "different-type", "other-error"],
)
def test_search_attribute_registration_is_idempotent(
    services: dict[str, Any], tmp_path: Path, output: str, rc: int, ok: bool
) -> None:
    _, service = registration(services)
    fake = tmp_path / "bin" / "temporal"
    fake.parent.mkdir()
    fake.write_text(FAKE_TEMPORAL)
    fake.chmod(0o755)
    log = tmp_path / "calls"
    command = argv(service)
    command[0] = shutil.which(Path(command[0]).name) or command[0]  # /bin/sh in the image
    env = {
        **os.environ,
        "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}",
        "FAKE_LOG": str(log),
        "FAKE_CREATE_OUTPUT": output,
        "FAKE_CREATE_RC": str(rc),
    }
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith("operator search-attribute list")
    created = [re.search(r"--name (\S+)", call).group(1) for call in calls if " create " in f" {call} "]
    assert created == ([key.name for key in ALL_KEYS] if ok else [ALL_KEYS[0].name])


def test_named_volumes_are_declared_and_postgres_keeps_its_data(
    raw: dict[str, Any], services: dict[str, Any]
) -> None:
    declared = set(raw.get("volumes") or {})
    for name, service in services.items():
        for mount in mounts(service):
            if mount["type"] == "volume" and mount["source"]:
                assert mount["source"] in declared, f"{name}: volume {mount['source']} not declared"
    postgres = [svc for svc in services.values() if str(svc.get("image", "")).startswith("postgres:")]
    assert len(postgres) == 1
    data_dir = environment(postgres[0]).get("PGDATA") or "/var/lib/postgresql/data"
    on_volume = [m for m in mounts(postgres[0]) if m["type"] == "volume" and m["source"]]
    assert any(
        data_dir == m["target"] or data_dir.startswith(m["target"].rstrip("/") + "/") for m in on_volume
    )


def test_postgres_has_a_pg_isready_health_check(services: dict[str, Any]) -> None:
    test = services["postgresql"]["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))


@pytest.mark.parametrize(
    "env", [{}, {"POSTGRES_USER": "pg", "POSTGRES_PASSWORD": "s3cret"}], ids=["defaults", "set"]
)
def test_temporal_uses_the_postgres_it_waits_for(env: dict[str, str]) -> None:
    services = resolved(env)["services"]
    temporal, postgres = environment(services["temporal"]), environment(services["postgresql"])
    assert temporal["DB"] == "postgres12"
    assert temporal["POSTGRES_SEEDS"] in services
    assert depends_on(services["temporal"]).get(temporal["POSTGRES_SEEDS"]) == "service_healthy"
    assert temporal["POSTGRES_USER"] == postgres["POSTGRES_USER"]
    assert temporal["POSTGRES_PWD"] == postgres["POSTGRES_PASSWORD"]
    assert temporal["DB_PORT"] == "5432"


def test_worker_and_watcher_share_one_image_and_run_their_commands(services: dict[str, Any]) -> None:
    commands = set(typer.main.get_command(cli_app).commands)
    worker, watcher = services["worker"], services["watcher"]
    assert worker["image"] == watcher["image"] and worker["build"] == watcher["build"]
    assert worker["build"]["context"] in (".", "./")
    assert (ROOT / worker["build"]["dockerfile"]).is_file()
    assert worker["command"] == ["worker"] and watcher["command"] == ["watch"]
    assert {"worker", "watch"} <= commands
    for service in (worker, watcher):
        assert "entrypoint" not in service, "the image's ENTRYPOINT is peersync"
    assert 'ENTRYPOINT ["peersync"]' in (ROOT / DOCKERFILE).read_text()


def test_only_the_worker_mounts_a_kubeconfig_read_only(services: dict[str, Any]) -> None:
    worker, watcher = services["worker"], services["watcher"]
    kubeconfig = environment(worker).get("KUBECONFIG")
    assert kubeconfig, "the worker has no KUBECONFIG"
    mounted = [m for m in mounts(worker) if m["target"] == kubeconfig]
    assert len(mounted) == 1 and mounted[0]["type"] == "bind", (
        f"KUBECONFIG {kubeconfig} is not a mounted file"
    )
    assert mounted[0]["read_only"] is True, "the kubeconfig is mounted writable"
    assert "KUBECONFIG" not in environment(watcher)
    for mount in mounts(watcher):
        assert mount["target"] != kubeconfig and mount["source"] != mounted[0]["source"]
        assert "kube" not in f"{mount['source']} {mount['target']}", f"watcher mounts {mount}"


def test_worker_stops_after_its_graceful_shutdown(services: dict[str, Any]) -> None:
    grace = services["worker"].get("stop_grace_period", "10s")  # Docker's default
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", grace)
    assert "".join(n + u for n, u in parts) == grace, f"unreadable stop_grace_period {grace}"
    assert timedelta(seconds=sum(float(n) * units[u] for n, u in parts)) > GRACEFUL_SHUTDOWN


@pytest.mark.parametrize("name", ["worker", "watcher"])
def test_defaults_are_valid_settings(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    env = environment(services[name])
    settings = load_with(monkeypatch, env)
    defaults = load_with(monkeypatch, {})
    for field, env_name in SETTINGS_ENV.items():
        if env_name not in COMPOSE_OVERRIDES:
            assert getattr(settings, field) == getattr(defaults, field), (
                f"{env_name}: compose differs from code"
            )
    assert settings.metrics_address and settings.temporal_address == env["TEMPORAL_ADDRESS"]
    assert not settings.local_validator  # "" like None: no operator address matches


@pytest.mark.parametrize("name", ["worker", "watcher"])
def test_env_example_values_are_valid_settings(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    env = environment(resolved(env_example())["services"][name])
    settings = load_with(monkeypatch, env)
    for var, value in env_example().items():
        if var in ENV_NAMES and value:
            assert env[var] == value, f"{var} from .env does not reach the {name}"
    assert settings.cluster_id == env_example().get("PEERSYNC_CLUSTER_ID", settings.cluster_id)
