"""One configuration tree, read from a file (TOML, YAML or JSON), the environment, then flags, in that order.

Every key is validated once at start; a bad key or value raises ConfigError with a message naming it, which
the CLI prints as one line.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from detectors.engine import DetectorSettings
from parsers.http1 import ParserLimits
from sniffer.flows import FlowLimits
from sniffer.metrics import MetricsSettings
from sniffer.sinks.influx import InfluxSettings
from sniffer.sinks.webhooks import WebhookSettings, webhook_targets_from_config


class ConfigError(Exception):
    """A configuration problem, described in one line that names the key."""


@dataclass
class FlowConfig:
    max_flows: int = 100_000
    max_buffered_bytes: int = 1 << 20
    max_total_buffered_bytes: int = 256 << 20
    idle_timeout_s: float = 120.0
    max_pending_requests: int = 256


@dataclass
class HttpConfig:
    max_header_bytes: int = 65536
    max_body_keep_bytes: int = 65536
    max_decoded_body_bytes: int = 65536
    # Read every message head with h11 (the reference parser) instead of the numba fast path, which hands h11
    # whatever it is not sure of and gives the same transactions (a test compares both on every capture).
    strict: bool = False


@dataclass
class TemplatingConfig:
    learn_min_distinct: int = 20
    max_tracked_prefixes: int = 10_000


@dataclass
class IdentityConfig:
    trusted_proxies: list[str] = field(default_factory=list)
    api_key_headers: list[str] = field(default_factory=lambda: ["x-api-key"])
    salt: str = ""


@dataclass
class Config:
    flows: FlowConfig = field(default_factory=FlowConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    templating: TemplatingConfig = field(default_factory=TemplatingConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    influx: InfluxSettings = field(default_factory=InfluxSettings)
    detectors: DetectorSettings = field(default_factory=DetectorSettings)
    webhook_delivery: WebhookSettings = field(default_factory=WebhookSettings)
    # [[webhooks]] tables: kind (slack, teams, pagerduty, generic), url, min_severity, routing_key, headers
    webhooks: list[dict] = field(default_factory=list)

    def flow_limits(self) -> FlowLimits:
        return FlowLimits(
            max_flows=self.flows.max_flows,
            max_buffered_bytes=self.flows.max_buffered_bytes,
            max_total_buffered_bytes=self.flows.max_total_buffered_bytes,
            idle_timeout_s=self.flows.idle_timeout_s,
            max_pending_requests=self.flows.max_pending_requests,
            parser=ParserLimits(
                max_header_bytes=self.http.max_header_bytes,
                max_body_keep_bytes=self.http.max_body_keep_bytes,
                strict=self.http.strict,
            ),
        )


def _yaml_loads(text: str) -> Any:
    """YAML's loader, imported here: a run with no YAML file to read is spared the 30 ms its import took at
    start-up. Its errors come out as ValueError, as tomllib's and json's do."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(str(error)) from None


def _read_file(path: str) -> dict[str, Any]:
    source = Path(path)
    try:
        text = source.read_text()
    except OSError as error:
        raise ConfigError(f"config file {path}: {error.strerror}") from None
    try:
        if source.suffix == ".toml":
            data = tomllib.loads(text)
        elif source.suffix == ".json":
            data = json.loads(text)
        else:
            data = _yaml_loads(text) or {}
    except ValueError as error:  # TOMLDecodeError and JSONDecodeError are ValueErrors, and so is YAML's here
        first_line = str(error).splitlines()[0]
        raise ConfigError(
            f"config file {path}: not valid {source.suffix.lstrip('.') or 'YAML'}: {first_line}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of sections")
    return data


def _apply(target: Any, values: dict[str, Any], where: str) -> None:
    known = {item.name: item for item in dataclasses.fields(target)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown config key {where}{key} (known: {', '.join(sorted(known))})")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {where}{key} must be a section")
            _apply(current, value, f"{where}{key}.")
            continue
        setattr(target, key, _coerce(value, current, f"{where}{key}"))
    # A section's own checks (its __post_init__) judge the values the file and flags gave it.
    check = getattr(target, "__post_init__", None)
    if check is not None:
        try:
            check()
        except ValueError as error:
            raise ConfigError(f"config section {where.rstrip('.') or 'top level'}: {error}") from None


# No count, size or time in the configuration comes near this; the compiled build holds them as C integers.
MAX_CONFIG_NUMBER = 1 << 62
# A batch's columns take some 200 bytes a transaction beside the transactions themselves.
MAX_DETECTOR_BATCH = 1_000_000
# The metrics' interval: at least a millisecond (a shorter one, under a nanosecond, made no interval at all), and
# in nanoseconds a C integer in the compiled build (sniffer/metrics.pxd), about 31 years at most.
MIN_INTERVAL_S = 0.001
MAX_INTERVAL_S = 1_000_000_000


def _coerce(value: Any, current: Any, name: str) -> Any:
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {name} must be true or false, not {value!r}")
    if isinstance(current, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {name} must be a number, not {value!r}")
        if value < 0:
            raise ConfigError(f"config key {name} must not be negative")
        if value > MAX_CONFIG_NUMBER:
            raise ConfigError(f"config key {name} must be at most {MAX_CONFIG_NUMBER:,}, not {value!r}")
        return type(current)(value)
    if isinstance(current, list) and name == "webhooks":
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise ConfigError("config key webhooks must be a list of tables ([[webhooks]] in TOML)")
        return value
    if isinstance(current, tuple):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"config key {name} must be a list")
        return tuple(str(item) for item in value)
    if isinstance(current, list):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"config key {name} must be a list")
        return [str(item) for item in value]
    return str(value)


# Environment variables and the config keys they set, applied between the file and the flags.
ENVIRONMENT = {
    "INFLUX_URL": ("influx", "url"),
    "INFLUX_TOKEN": ("influx", "token"),
    "INFLUX_ORG": ("influx", "org"),
    "INFLUX_BUCKET": ("influx", "bucket"),
}


def _from_environment(environment: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for variable, (section, key) in ENVIRONMENT.items():
        if environment.get(variable):
            values.setdefault(section, {})[key] = environment[variable]
    return values


def load_config(
    path: str | None = None, overrides: dict[str, Any] | None = None, environment: dict[str, str] | None = None
) -> Config:
    """Builds the configuration: defaults, then the file, then the environment, then `overrides` (flags)."""
    config = Config()
    if path:
        _apply(config, _read_file(path), "")
    if environment:
        _apply(config, _from_environment(environment), "")
    if overrides:
        _apply(config, overrides, "")
    if config.flows.max_flows < 1:
        raise ConfigError("config key flows.max_flows must be at least 1")
    if not MIN_INTERVAL_S <= config.metrics.interval_s <= MAX_INTERVAL_S:
        raise ConfigError(f"config key metrics.interval_s must be from {MIN_INTERVAL_S:g} to {MAX_INTERVAL_S:,} s")
    if not 1 <= config.detectors.batch_size <= MAX_DETECTOR_BATCH:
        raise ConfigError(f"config key detectors.batch_size must be from 1 to {MAX_DETECTOR_BATCH:,}")
    try:
        webhook_targets_from_config(config.webhooks)
    except ValueError as error:
        raise ConfigError(f"config: {error}") from None
    if config.influx.url and not config.influx.url.startswith(("http://", "https://")):
        raise ConfigError(f"config key influx.url must be an http:// or https:// URL, not {config.influx.url!r}")
    return config
