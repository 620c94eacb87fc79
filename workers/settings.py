"""peersync's settings: environment variables, optionally a YAML file (`--config`), then defaults.

The variable names are a fixed interface (DESIGN.md): Temporal's own `TEMPORAL_*`, `KUBECONFIG`, and
`PEERSYNC_*` for the rest. A bad value stops the process at start with a message naming the variable; so
does a `--config` file that is not YAML or has a key that is no setting (unknown `PEERSYNC_*` environment
variables are not refused: the environment is shared).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from activities.config import ActivityConfig
from core.policy import ALLOW_CIDRS_SETTING, EndpointPolicy, PolicyConfigError
from workers.settings_file import SettingsError, read_config_file
from workflows.policies import PROBE

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _env(name: str) -> Any:
    # The env var name is the alias; the field name is also accepted in YAML files.
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, case_sensitive=False)

    temporal_address: str = Field(
        "localhost:7233",
        validation_alias=_env("TEMPORAL_ADDRESS"),
        json_schema_extra={"accepts": "host:port"},  # for docs/settings.md
        description="host:port of the Temporal frontend (gRPC, no scheme)",
    )
    temporal_namespace: str = Field(
        "default",
        min_length=1,
        validation_alias=_env("TEMPORAL_NAMESPACE"),
        description="Temporal namespace of every peersync workflow and schedule",
    )
    kubeconfig: Path | None = Field(
        None,
        validation_alias=_env("KUBECONFIG"),
        description="kubeconfig file of the cluster the worker manages; unset: the pod's service account "
        "when in a cluster, else ~/.kube/config",
    )
    cluster_id: str = Field(
        "default",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        validation_alias=_env("PEERSYNC_CLUSTER_ID"),
        description="names this cluster: task queue peersync-<id>, label peersync.io/cluster=<id>",
    )
    local_validator: str | None = Field(
        None,
        validation_alias=_env("PEERSYNC_LOCAL_VALIDATOR"),
        description="operator address (valoper) of the validator this cluster runs: never its own peer",
    )
    chain_rpc_url: str = Field(
        "http://127.0.0.1:26657",
        validation_alias=_env("PEERSYNC_CHAIN_RPC_URL"),
        json_schema_extra={"accepts": "http(s) URL"},  # for docs/settings.md
        description="CometBFT RPC of a provider-chain node (the watcher's websocket is its /websocket, "
        "over ws or wss)",
    )
    chain_rest_url: str = Field(
        "http://127.0.0.1:1317",
        validation_alias=_env("PEERSYNC_CHAIN_REST_URL"),
        json_schema_extra={"accepts": "http(s) URL"},  # for docs/settings.md
        description="Cosmos REST (LCD) of a provider-chain node: validators and ICS consumers",
    )
    bech32_prefix: str = Field(
        "cosmos",
        pattern=r"^[a-z][a-z0-9]{0,15}$",
        validation_alias=_env("PEERSYNC_BECH32_PREFIX"),
        description="account prefix of the provider chain (valoper/valcons prefixes derive from it)",
    )
    endpoint_allow_cidrs: Annotated[list[Network], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("PEERSYNC_ENDPOINT_ALLOW_CIDRS"),
        description="comma list of CIDRs exempt from the public-address policy",
    )
    max_parallel_rollouts: int = Field(
        1,
        ge=1,
        le=100,
        validation_alias=_env("PEERSYNC_MAX_PARALLEL_ROLLOUTS"),
        description="consumer workloads of this cluster that may restart at the same time",
    )
    require_approval: bool = Field(
        False,
        validation_alias=_env("PEERSYNC_REQUIRE_APPROVAL"),
        description="hold every restart until an operator approves it (`peersync approve`)",
    )
    registry_refresh: timedelta = Field(
        timedelta(seconds=60),
        validation_alias=_env("PEERSYNC_REGISTRY_REFRESH"),
        description="how often the registry re-reads every validator from the chain (the watcher makes "
        "changes immediate; this repairs anything it missed)",
    )
    reconcile_every: timedelta = Field(
        timedelta(minutes=5),
        validation_alias=_env("PEERSYNC_RECONCILE_EVERY"),
        description="interval of the reconcile schedule that repairs drifted ConfigMaps and rollouts",
    )
    probe_budget: timedelta = Field(
        PROBE.total,
        validation_alias=_env("PEERSYNC_PROBE_BUDGET"),
        description="how long a new endpoint may take to answer before its change is shown as blocked",
    )
    catch_up_deadline: timedelta = Field(
        timedelta(minutes=10),
        le=timedelta(minutes=30),
        validation_alias=_env("PEERSYNC_CATCH_UP_DEADLINE"),
        description="after a restart, how long the nodes may take to catch up (CometBFT `catching_up` false, "
        "height advancing) before the sync fails; the next consumer waits until then",
    )
    metrics_address: str | None = Field(
        None,
        validation_alias=_env("PEERSYNC_METRICS_ADDRESS"),
        json_schema_extra={"accepts": "host:port"},  # for docs/settings.md
        description="host:port where `worker` and `watch` serve /metrics (and the watcher /healthz); "
        "unset: none",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        validation_alias=_env("PEERSYNC_LOG_FORMAT"),
        description="`json`: one JSON object per line, with the workflow/activity and consumer context",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=_env("PEERSYNC_LOG_LEVEL"), description="lowest level logged"
    )

    @field_validator("metrics_address", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `PEERSYNC_METRICS_ADDRESS=` (as compose and env files write an unset value) means none.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("temporal_address", "metrics_address")
    @classmethod
    def _host_port(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        example = _HOST_PORT_EXAMPLES[str(info.field_name)]
        host, sep, port = value.rpartition(":")
        if "://" in value:
            raise ValueError(f"{value!r} is not host:port (no scheme: e.g. {example})")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in host):
            raise ValueError(f"{value!r} is not host:port (e.g. {example})")
        return value

    @field_validator("chain_rpc_url", "chain_rest_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        """An http(s) URL with a host, no query or fragment (paths are appended to it); normalised to a
        lower-case scheme and no trailing slash, so that the watcher's `+ "/websocket"` (http -> ws,
        https -> wss) and the REST paths join cleanly."""
        value = value.strip()
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number from 0 to 65535
        except ValueError as exc:
            raise ValueError(f"{_shown(value)} is not a URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            got = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
            raise ValueError(f"{_shown(value)} must be an http:// or https:// URL ({got})")
        if not parts.hostname:
            raise ValueError(f"{_shown(value)} has no host (e.g. http://127.0.0.1:26657)")
        if parts.query or parts.fragment or "?" in value or "#" in value:
            raise ValueError(f"{_shown(value)} must not have a query or fragment (paths are appended to it)")
        if any(c.isspace() for c in value):
            raise ValueError(f"{_shown(value)} contains whitespace")
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _case(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return value.strip().lower() if value.strip().lower() in ("text", "json") else value.strip().upper()

    @field_validator("endpoint_allow_cidrs", mode="before")
    @classmethod
    def _split_cidrs(cls, value: Any) -> Any:
        try:
            return list(EndpointPolicy.from_setting(value).allow_cidrs)
        except PolicyConfigError as exc:  # the message is prefixed with the setting name by load_settings
            raise ValueError(str(exc).removeprefix(f"{ALLOW_CIDRS_SETTING}: ")) from None

    @field_validator(
        "registry_refresh", "reconcile_every", "probe_budget", "catch_up_deadline", mode="before"
    )
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if match := _DURATION.fullmatch(value.strip()):
            number, unit = match.groups()
            return timedelta(seconds=float(number) * _UNIT_SECONDS[unit or "s"])
        if value.strip().upper().startswith("P"):  # ISO 8601 (PT5M): pydantic's own parsing
            return value
        raise ValueError(f"{value!r} is not a positive duration (e.g. 30s, 5m, 1h, 500ms)")

    @field_validator("registry_refresh", "reconcile_every", "probe_budget", "catch_up_deadline", mode="after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    @property
    def task_queue(self) -> str:
        return f"peersync-{self.cluster_id}"

    def activity_config(self) -> ActivityConfig:
        """The narrow view the activities get (activities never see the process settings)."""
        return ActivityConfig(
            cluster_id=self.cluster_id,
            kubeconfig=self.kubeconfig,
            chain_rest_url=self.chain_rest_url,
            bech32_prefix=self.bech32_prefix,
            local_validator=self.local_validator,
            endpoint_allow_cidrs=tuple(self.endpoint_allow_cidrs),
            max_parallel_rollouts=self.max_parallel_rollouts,
            require_approval=self.require_approval,
            probe_budget=self.probe_budget,
            catch_up_deadline=self.catch_up_deadline,
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if _file_data is not None:  # the --config file, already read and checked by load_settings
            sources += (InitSettingsSource(settings_cls, init_kwargs=_file_data),)
        return sources


_file_data: dict[str, Any] | None = None
_HOST_PORT_EXAMPLES = {"temporal_address": "localhost:7233", "metrics_address": "0.0.0.0:9464"}


def _shown(url: str) -> str:
    """A URL for an error message, without any user:password in it."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    if sep and "@" in netloc:
        return repr(f"{scheme}://***@{netloc.rpartition('@')[2]}{slash}{path}")
    return repr(url)


def setting_name(loc: tuple[Any, ...]) -> str:
    """The environment variable behind a validation error location."""
    field = str(loc[0]) if loc else "?"
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field.upper()


def _known_keys() -> dict[str, str]:
    """Every key a settings file may use (lower case: keys match without regard to case) -> its variable."""
    keys: dict[str, str] = {}
    for field, info in Settings.model_fields.items():
        keys[field] = setting_name((field,))
        if isinstance(info.validation_alias, AliasChoices):
            keys.update((str(choice).lower(), keys[field]) for choice in info.validation_alias.choices)
    return keys


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; raise SettingsError naming each bad variable (or the bad --config file)."""
    global _file_data
    _file_data = read_config_file(config_file, _known_keys()) if config_file is not None else None
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            dict.fromkeys(
                f"{setting_name(err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
                for err in exc.errors()
            )
        )
        raise SettingsError(f"invalid setting {problems}") from None
    finally:
        _file_data = None
