"""The `apispy` command. Thin: parse options, build the config, call the library, print one-line errors."""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from detectors.openapi import ApiSpec, SpecError
from parsers.transaction import Transaction
from sniffer.alerting import AlertOutputs
from sniffer.capture.pcapfile import CaptureError
from sniffer.config import Config, ConfigError, load_config
from sniffer.entry import GC_THRESHOLDS, load_numba_registries
from sniffer.outputs import MetricOutputs, default_source
from sniffer.replay import ReplayResult, Run, open_all, replay
from sniffer.sinks.jsonl import JsonLinesSink
from sniffer.sinks.pcapwriter import PcapTarget
from sniffer.summary import render_summary

if TYPE_CHECKING:  # imported when --workers asks for it: with multiprocessing, 16M of a start-up's 768M instructions
    from sniffer.sharded import ShardedRun

EXIT_USAGE = 2


def fail(message: str) -> None:
    click.echo(f"apispy: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


class Signals:
    """SIGINT and SIGTERM stop the run (which flushes everything and exits 0); SIGHUP asks to reopen files."""

    def __init__(self) -> None:
        self.stopped = False
        self.reopen_requested = False

    def __call__(self) -> bool:
        return self.stopped

    def install(self) -> None:
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signal_number, self._stop)
        signal.signal(signal.SIGHUP, self._reopen)

    def _stop(self, _signal_number: int, _frame: Any) -> None:
        self.stopped = True

    def _reopen(self, _signal_number: int, _frame: Any) -> None:
        self.reopen_requested = True


def flag_overrides(**flags: Any) -> dict[str, dict[str, Any]]:
    """Command-line flags as config overrides: only those given."""
    names = {
        "influx_url": ("influx", "url"),
        "influx_token": ("influx", "token"),
        "influx_org": ("influx", "org"),
        "influx_bucket": ("influx", "bucket"),
        "interval": ("metrics", "interval_s"),
        "strict": ("http", "strict"),
    }
    overrides: dict[str, dict[str, Any]] = {}
    for flag, value in flags.items():
        if value is not None:
            section, key = names[flag]
            overrides.setdefault(section, {})[key] = value
    return overrides


def output_options(command: Callable) -> Callable:
    """The options every capturing command shares: what to write where, and the configuration."""
    options = [
        click.option(
            "--transactions", "transactions_path", metavar="PATH|-", help="Write one JSON line per transaction."
        ),
        click.option("--config", "config_path", metavar="PATH", help="Configuration file (TOML, YAML or JSON)."),
        click.option("--influx-url", help="InfluxDB URL (env INFLUX_URL); enables writing time series."),
        click.option("--influx-token", help="InfluxDB token, or user:password for 1.8+ (env INFLUX_TOKEN)."),
        click.option("--influx-org", help="InfluxDB organisation (env INFLUX_ORG)."),
        click.option("--influx-bucket", help="InfluxDB bucket, or database/retention-policy (env INFLUX_BUCKET)."),
        click.option("--interval", type=float, metavar="SECONDS", help="Time-series interval in seconds (default 10)."),
        click.option(
            "--line-protocol", "line_protocol_path", metavar="PATH", help="Write the time series as line protocol."
        ),
        click.option("--alerts", "alerts_path", metavar="PATH|-", help="Write one JSON line per alert."),
        click.option("--spec", "spec_path", metavar="OPENAPI_FILE", help="OpenAPI 3 spec (YAML or JSON) of the API."),
        click.option("--inventory", "inventory_path", metavar="PATH", help="Write the observed API as OpenAPI 3."),
        click.option("--quiet", is_flag=True, help="No summary on stderr."),
        click.option(
            "--strict", is_flag=True, default=None,
            help="Read every HTTP head with h11, the reference parser, instead of the fast path (same results).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass
class Outputs:
    """Everything a run writes, built from the shared options; `open_captures` runs between config and outputs
    so that every one-line error comes before any output file is created."""

    config: Config
    spec: ApiSpec | None
    metrics: MetricOutputs | None
    alerting: AlertOutputs | None
    transactions: JsonLinesSink | None

    def on_transaction(self) -> Callable[[Transaction], None] | None:
        """Where each transaction is written: the transaction log, or nowhere (None, which the runs skip without a
        call per transaction)."""
        return self.transactions.write if self.transactions else None

    def reopen(self) -> None:
        for sink in (self.transactions, self.metrics, self.alerting):
            if sink is not None:
                sink.reopen()

    def close(self) -> None:
        if self.transactions is not None:
            self.transactions.close()


def build_outputs(
    options: dict[str, Any],
    source: str,
    open_captures: Callable[[Config, ApiSpec | None], Any],
    cross_flow_only: bool = False,
) -> tuple[Outputs, Any]:
    """`cross_flow_only`: worker processes run the flow-local detectors (see sniffer.sharded)."""
    overrides = flag_overrides(
        influx_url=options["influx_url"],
        influx_token=options["influx_token"],
        influx_org=options["influx_org"],
        influx_bucket=options["influx_bucket"],
        interval=options["interval"],
        strict=options["strict"],
    )
    try:
        config = load_config(options["config_path"], overrides, dict(os.environ))
        spec = ApiSpec.load(options["spec_path"]) if options["spec_path"] else None
        captures = open_captures(config, spec)
    except (ConfigError, CaptureError, SpecError) as error:
        fail(str(error))
    try:
        metrics = None
        if config.influx.url or options["line_protocol_path"]:
            metrics = MetricOutputs(config, source, options["line_protocol_path"])
        alerting = None
        if config.detectors.enabled:
            alerting = AlertOutputs(
                config,
                options["alerts_path"],
                metrics.emit if metrics is not None else None,
                spec,
                options["inventory_path"],
                cross_flow_only,
            )
        transactions = JsonLinesSink(options["transactions_path"]) if options["transactions_path"] else None
    except OSError as error:
        fail(f"{error.filename}: {error.strerror}")
    return Outputs(config, spec, metrics, alerting, transactions), captures


def report(result: ReplayResult, quiet: bool) -> None:
    for warning in result.warnings:
        click.echo(f"apispy: warning: {warning}", err=True)
    if not quiet:
        click.echo(render_summary(result.counters, result.endpoints, []), err=True)


def build_name() -> str:
    """How this apispy was built: `pip install .` compiles its hot modules with Cython where it can, and its numba
    kernels ahead of time (see setup.py); an editable install, `APISPY_COMPILE=0` or a failed compile leave plain
    Python, some 30% slower, and kernels that numba compiles when first called."""
    import parsers.http1
    from sniffer.aot import compiled_module

    name = "compiled with Cython" if Path(parsers.http1.__file__).suffix in (".so", ".pyd") else "plain Python"
    return name + (", kernels compiled ahead of time" if compiled_module() is not None else "")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="apispy", message=f"%(prog)s %(version)s ({build_name()})")
def main() -> None:
    """apispy: passive monitor for HTTP API traffic."""
    # The pipeline allocates many short-lived objects per packet and few cycles: collect young objects less
    # often, and leave what was imported at start-up out of every collection (the entry point imported it with
    # the collector off: see sniffer.entry).
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()
    gc.enable()


@main.command("replay")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, allow_dash=True))
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes to parse with; connections are shared out by a hash of their addresses and ports.",
)
@output_options
def replay_command(files: tuple[str, ...], workers: int, **options: Any) -> None:
    """Read capture FILEs (pcap or pcapng; - for stdin) in order as one stream and report their HTTP traffic."""
    if workers > 1 and "-" in files:
        fail("--workers needs capture files: every worker reads them, and stdin can be read only once")
    load_numba_registries()
    started: list[ShardedRun] = []

    def open_captures(config: Config, spec: ApiSpec | None) -> Any:
        readers = open_all(list(files))
        if workers == 1:
            return readers
        for reader in readers:
            reader.handle.close()  # opened only to check them: every worker opens them again
        from sniffer.sharded import ShardedRun

        run = ShardedRun(workers, list(files), config, spec=spec)
        run.start(time_series=bool(config.influx.url or options["line_protocol_path"]))  # before output threads
        started.append(run)
        return run

    try:
        outputs, captures = build_outputs(options, default_source(list(files)), open_captures, workers > 1)
    except SystemExit:
        for run in started:
            run.abort()  # an output could not be opened: the workers stop too
        raise
    if workers > 1:
        _replay_sharded(captures, outputs, options["quiet"])
        return
    readers = captures
    signals = Signals()
    signals.install()
    total_bytes = sum(reader.size for reader in readers)
    arguments = (readers, outputs.config, outputs.on_transaction())
    extra = dict(outputs=outputs.metrics, should_stop=signals, alerting=outputs.alerting, spec=outputs.spec)
    try:
        if sys.stderr.isatty() and not options["quiet"] and total_bytes:
            with click.progressbar(length=total_bytes, label="reading", file=sys.stderr) as bar:
                result = replay(*arguments, bar.update, **extra)
        else:
            result = replay(*arguments, None, **extra)
    except BrokenPipeError:
        sys.exit(0)
    finally:
        outputs.close()
    report(result, options["quiet"])


def _replay_sharded(run: ShardedRun, outputs: Outputs, quiet: bool) -> None:
    from sniffer.sharded import WorkerError

    signals = Signals()
    signals.install()
    run.attach(outputs.on_transaction(), outputs.metrics, outputs.alerting)
    total_bytes = sum(os.path.getsize(path) for path in run.paths)
    try:
        if sys.stderr.isatty() and not quiet and total_bytes:
            with click.progressbar(length=total_bytes, label="reading", file=sys.stderr) as bar:
                result = run.run(bar.update, signals)
        else:
            result = run.run(None, signals)
    except WorkerError as error:
        outputs.close()
        fail(str(error))
    except BrokenPipeError:
        sys.exit(0)
    finally:
        outputs.close()
    report(result, quiet)


@main.command("live")
@click.option(
    "-i",
    "--interface",
    "interfaces",
    multiple=True,
    required=True,
    metavar="IFACE",
    help="Interface to capture on (repeat for several).",
)
@click.option("--bpf", metavar="EXPR", help="Kernel capture filter (tcpdump syntax), e.g. 'tcp port 80'.")
@click.option("--no-promisc", is_flag=True, help="Do not put the interfaces in promiscuous mode.")
@click.option(
    "--snaplen", type=click.IntRange(64, 262_144), default=262_144, show_default=True, help="Bytes kept of each frame."
)
@click.option(
    "--buffer-mb",
    type=click.IntRange(2, 4096),
    default=64,
    show_default=True,
    help="Receive ring (or socket buffer) per interface and worker: how long a burst the capture rides out.",
)
@click.option(
    "--no-ring",
    is_flag=True,
    help="Read the socket frame by frame instead of through a TPACKET_V3 receive ring.",
)
@click.option("--duration", type=float, metavar="SECONDS", help="Stop after this many seconds.")
@click.option("--write-pcap", "pcap_path", metavar="PATH", help="Also write the captured frames to pcap files.")
@click.option(
    "--rotate-mb", type=float, default=100.0, show_default=True, help="Rotate --write-pcap files at this size."
)
@click.option("--keep", type=int, default=10, show_default=True, help="Rotated --write-pcap files to keep.")
@click.option("--user", metavar="NAME", help="Drop root to this user once the sockets are open.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes to capture and parse with; the kernel shares connections out among them (PACKET_FANOUT).",
)
@output_options
def live_command(
    interfaces: tuple[str, ...],
    bpf: str | None,
    no_promisc: bool,
    snaplen: int,
    buffer_mb: int,
    no_ring: bool,
    duration: float | None,
    pcap_path: str | None,
    rotate_mb: float,
    keep: int,
    user: str | None,
    workers: int,
    **options: Any,
) -> None:
    """Capture from network interfaces (a mirror port) and report their HTTP traffic until stopped."""
    # Imported here: scapy costs a few tenths of a second of start-up that a replay need not pay.
    from sniffer.capture.live import (
        LiveCaptureError,
        LiveSettings,
        LiveSource,
        check_can_capture,
        drop_privileges,
        load_ring_kernel,
    )
    from sniffer.warmup import warm_up

    load_numba_registries()
    settings = LiveSettings(snaplen=snaplen, promiscuous=not no_promisc, bpf=bpf,
                            socket_buffer_bytes=buffer_mb << 20, ring=not no_ring)  # fmt: skip

    def open_sockets(config: Config, spec: ApiSpec | None) -> Any:
        # Every kernel is loaded before the sockets open: on a first run after installing, numba compiles them,
        # which takes seconds a receive ring would overflow in. A missing interface or privilege is said first.
        try:
            for interface in interfaces:
                check_can_capture(interface)
        except LiveCaptureError as error:
            raise CaptureError(str(error)) from None
        warm_up(config)
        load_ring_kernel(settings)
        try:
            sources = [LiveSource(list(interfaces), settings, [] if workers > 1 else None)]
            sources += [LiveSource(list(interfaces), settings, sources[0].fanout_groups, counts_interface_drops=False)
                        for _ in range(1, workers)]
            if user:
                drop_privileges(user)
        except LiveCaptureError as error:
            raise CaptureError(str(error)) from None
        if workers == 1:
            return sources[0]
        from sniffer.live_sharded import LiveShardedRun

        pcap = PcapTarget(pcap_path, rotate_mb, keep, snaplen) if pcap_path else None
        run = LiveShardedRun(sources, config, spec, pcap)
        run.start()  # forks the workers now, before any output thread exists
        return run

    outputs, source = build_outputs(options, "+".join(interfaces), open_sockets, cross_flow_only=workers > 1)
    if workers > 1:
        _live_sharded(source, outputs, interfaces, settings, bpf, duration, options["quiet"])
        return
    signals = Signals()
    signals.install()
    writer = PcapTarget(pcap_path, rotate_mb, keep, snaplen).writer() if pcap_path else None
    deadline = time.monotonic() + duration if duration else None

    def should_stop() -> bool:
        return signals.stopped or (deadline is not None and time.monotonic() >= deadline)

    run = Run(outputs.config, outputs.on_transaction(), outputs.metrics, outputs.alerting, outputs.spec,
              dropped=lambda: source.dropped)
    reported_drops = 0
    if not options["quiet"]:
        mode = "promiscuous" if settings.promiscuous else "not promiscuous"
        click.echo(f"apispy: capturing on {', '.join(interfaces)} ({mode}, filter {bpf or 'none'})", err=True)
    try:
        for batch in source.batches(should_stop):
            if signals.reopen_requested:
                signals.reopen_requested = False
                outputs.reopen()
                if writer is not None:
                    writer.reopen()
            if batch is None:
                run.tick(time.time_ns())
                continue
            if writer is not None:
                writer.write(batch)
            run.feed(batch)
            if source.kernel_drops > reported_drops:
                click.echo(
                    f"apispy: warning: the kernel dropped {source.kernel_drops - reported_drops} packets "
                    "(capture could not keep up)",
                    err=True,
                )
                reported_drops = source.kernel_drops
    finally:
        source.close()
        if writer is not None:
            writer.close()
    warnings = []
    if source.dropped:
        warnings.append(f"{source.dropped} packets were dropped before apispy read them "
                        f"({source.kernel_drops} by the socket queue, {source.interface_drops} by the interface)")
    result = run.finish(warnings, {"kernel_received": source.kernel_received, "dropped": source.dropped})
    outputs.close()
    report(result, options["quiet"])


def _live_sharded(run: Any, outputs: Outputs, interfaces: tuple[str, ...], settings: Any, bpf: str | None,
                  duration: float | None, quiet: bool) -> None:
    signals = Signals()
    signals.install()
    run.attach(outputs.on_transaction(), outputs.metrics, outputs.alerting)
    deadline = time.monotonic() + duration if duration else None
    reported_drops = 0

    def should_stop() -> bool:
        return signals.stopped or (deadline is not None and time.monotonic() >= deadline)

    def on_batch() -> None:
        nonlocal reported_drops
        if signals.reopen_requested:
            signals.reopen_requested = False
            outputs.reopen()
            run.reopen_pcaps()
        if run.dropped > reported_drops:
            click.echo(f"apispy: warning: {run.dropped - reported_drops} packets were dropped "
                       "(capture could not keep up)", err=True)
            reported_drops = run.dropped

    if not quiet:
        mode = "promiscuous" if settings.promiscuous else "not promiscuous"
        click.echo(f"apispy: capturing on {', '.join(interfaces)} ({mode}, filter {bpf or 'none'}, "
                   f"{run.workers} workers)", err=True)
    try:
        result = run.run(should_stop, on_batch)
    finally:
        outputs.close()
    report(result, quiet)
