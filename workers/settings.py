"""peersync's settings: environment variables, optionally a YAML file (`--config`), then defaults.

The variable names are a fixed interface (DESIGN.md): Temporal's own `TEMPORAL_*`, `KUBECONFIG`, and
`PEERSYNC_*` for the rest. A bad value stops the process at start with a message naming the variable.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from activities.policy import ALLOW_CIDRS_SETTING, EndpointPolicy, PolicyConfigError
from workflows.policies import PROBE

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _env(name: str) -> Any:
    # The env var name is the alias; the field name is also accepted in YAML files.
    return AliasChoices(name, name.lower())


class SettingsError(ValueError):
    """Settings that cannot be used; the message names every offending variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, case_sensitive=False)

    temporal_address: str = Field(
        "localhost:7233",
        validation_alias=_env("TEMPORAL_ADDRESS"),
        description="host:port of the Temporal frontend (gRPC)",
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
        description="CometBFT RPC of a provider-chain node (the watcher's websocket is its /websocket)",
    )
    chain_rest_url: str = Field(
        "http://127.0.0.1:1317",
        validation_alias=_env("PEERSYNC_CHAIN_REST_URL"),
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
    metrics_address: str | None = Field(
        None,
        validation_alias=_env("PEERSYNC_METRICS_ADDRESS"),
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

    @field_validator("metrics_address")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536 or " " in host:
            raise ValueError(f"{value!r} is not host:port (e.g. 0.0.0.0:9464)")
        return value

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

    @field_validator("registry_refresh", "reconcile_every", "probe_budget", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
            number, unit = match.groups()
            return timedelta(seconds=float(number) * _UNIT_SECONDS[unit or "s"])
        return value

    @field_validator("registry_refresh", "reconcile_every", "probe_budget", mode="after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    @property
    def task_queue(self) -> str:
        return f"peersync-{self.cluster_id}"

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
        if _yaml_file is not None:
            sources += (YamlConfigSettingsSource(settings_cls, yaml_file=_yaml_file),)
        return sources


_yaml_file: Path | None = None


def setting_name(loc: tuple[Any, ...]) -> str:
    """The environment variable behind a validation error location."""
    field = str(loc[0]) if loc else "?"
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field.upper()


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; raise SettingsError naming each bad variable."""
    global _yaml_file
    if config_file is not None and not config_file.is_file():
        raise SettingsError(f"--config {config_file}: no such file")
    _yaml_file = config_file
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
        _yaml_file = None
