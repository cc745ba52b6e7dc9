"""The `apispy` command. Thin: parse options, build the config, call the library, print one-line errors."""

from __future__ import annotations

import gc
import os
import signal
import sys
from typing import Any

import click

from detectors.openapi import ApiSpec, SpecError
from sniffer.alerting import AlertOutputs
from sniffer.capture.pcapfile import CaptureError
from sniffer.config import ConfigError, load_config
from sniffer.outputs import MetricOutputs, default_source
from sniffer.replay import open_all, replay
from sniffer.sinks.jsonl import JsonLinesSink
from sniffer.summary import render_summary

EXIT_USAGE = 2


def fail(message: str) -> None:
    click.echo(f"apispy: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


class StopFlag:
    """Set by SIGINT or SIGTERM: the run stops reading, flushes everything and exits 0."""

    def __init__(self) -> None:
        self.stopped = False

    def __call__(self) -> bool:
        return self.stopped

    def install(self) -> None:
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signal_number, self._stop)

    def _stop(self, _signal_number: int, _frame: Any) -> None:
        self.stopped = True


def flag_overrides(**flags: Any) -> dict[str, dict[str, Any]]:
    """Command-line flags as config overrides: only those given."""
    names = {
        "influx_url": ("influx", "url"), "influx_token": ("influx", "token"), "influx_org": ("influx", "org"),
        "influx_bucket": ("influx", "bucket"), "interval": ("metrics", "interval_s"),
    }
    overrides: dict[str, dict[str, Any]] = {}
    for flag, value in flags.items():
        if value is not None:
            section, key = names[flag]
            overrides.setdefault(section, {})[key] = value
    return overrides


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="apispy")
def main() -> None:
    """apispy: passive monitor for HTTP API traffic."""
    # The pipeline allocates many short-lived objects per packet and few cycles: collect young objects less
    # often, and leave what was imported at start-up out of every collection.
    gc.set_threshold(50_000, 20, 100)
    gc.freeze()


@main.command("replay")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, allow_dash=True))
@click.option("--transactions", "transactions_path", metavar="PATH|-", help="Write one JSON line per transaction.")
@click.option("--config", "config_path", metavar="PATH", help="Configuration file (TOML, YAML or JSON).")
@click.option("--influx-url", help="InfluxDB URL (env INFLUX_URL); enables writing time series.")
@click.option("--influx-token", help="InfluxDB token, or user:password for 1.8+ (env INFLUX_TOKEN).")
@click.option("--influx-org", help="InfluxDB organisation (env INFLUX_ORG).")
@click.option("--influx-bucket", help="InfluxDB bucket, or database/retention-policy for 1.8+ (env INFLUX_BUCKET).")
@click.option("--interval", type=float, metavar="SECONDS", help="Time-series interval in seconds (default 10).")
@click.option("--line-protocol", "line_protocol_path", metavar="PATH", help="Write the time series as line protocol.")
@click.option("--alerts", "alerts_path", metavar="PATH|-", help="Write one JSON line per alert.")
@click.option("--spec", "spec_path", metavar="OPENAPI_FILE", help="OpenAPI 3 spec (YAML or JSON) of the API.")
@click.option("--inventory", "inventory_path", metavar="PATH", help="Write the observed API as OpenAPI 3.")
@click.option("--quiet", is_flag=True, help="No summary on stderr.")
def replay_command(
    files: tuple[str, ...],
    transactions_path: str | None,
    config_path: str | None,
    influx_url: str | None,
    influx_token: str | None,
    influx_org: str | None,
    influx_bucket: str | None,
    interval: float | None,
    line_protocol_path: str | None,
    alerts_path: str | None,
    spec_path: str | None,
    inventory_path: str | None,
    quiet: bool,
) -> None:
    """Read capture FILEs (pcap or pcapng; - for stdin) in order as one stream and report their HTTP traffic."""
    overrides = flag_overrides(influx_url=influx_url, influx_token=influx_token, influx_org=influx_org,
                               influx_bucket=influx_bucket, interval=interval)
    try:
        config = load_config(config_path, overrides, dict(os.environ))
        spec = ApiSpec.load(spec_path) if spec_path else None
        readers = open_all(list(files))
    except (ConfigError, CaptureError, SpecError) as error:
        fail(str(error))
    outputs = None
    if config.influx.url or line_protocol_path:
        try:
            outputs = MetricOutputs(config, default_source(list(files)), line_protocol_path)
        except OSError as error:
            fail(f"{error.filename}: {error.strerror}")
    alerting = None
    if config.detectors.enabled:
        try:
            alerting = AlertOutputs(config, alerts_path, outputs.emit if outputs is not None else None, spec,
                                    inventory_path)
        except OSError as error:
            fail(f"{error.filename}: {error.strerror}")
    sink = JsonLinesSink(transactions_path) if transactions_path else None
    on_transaction = sink.write if sink else (lambda transaction: None)
    total_bytes = sum(reader.size for reader in readers)
    stop = StopFlag()
    stop.install()
    try:
        if sys.stderr.isatty() and not quiet and total_bytes:
            with click.progressbar(length=total_bytes, label="reading", file=sys.stderr) as bar:
                result = replay(readers, config, on_transaction, bar.update, outputs, stop, alerting, spec)
        else:
            result = replay(readers, config, on_transaction, None, outputs, stop, alerting, spec)
    except BrokenPipeError:
        sys.exit(0)
    finally:
        if sink:
            sink.close()
    for warning in result.warnings:
        click.echo(f"apispy: warning: {warning}", err=True)
    if not quiet:
        click.echo(render_summary(result.counters, result.endpoints, []), err=True)
