"""Offline replay: several capture files read in order as one stream, through the pipeline, into the sinks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from detectors.openapi import ApiSpec
from parsers.templating import EndpointTemplater
from parsers.transaction import Transaction
from sniffer.alerting import AlertOutputs
from sniffer.batch import PacketBatch
from sniffer.capture.pcapfile import CaptureReader, open_capture
from sniffer.config import Config
from sniffer.identity import ClientIdentity
from sniffer.outputs import MetricOutputs
from sniffer.pipeline import Pipeline, Shard
from sniffer.records import TransactionBuilder
from sniffer.summary import EndpointSummary


@dataclass
class ReplayResult:
    counters: dict[str, int]
    endpoints: EndpointSummary
    warnings: list[str] = field(default_factory=list)


def build_pipeline(
    config: Config,
    on_transaction: Callable[[Transaction], None],
    spec: ApiSpec | None = None,
    shard: Shard | None = None,
) -> Pipeline:
    builder = TransactionBuilder(
        templater_of(config),
        ClientIdentity(config.identity.trusted_proxies, config.identity.salt.encode()),
        api_key_headers=tuple(name.lower().encode() for name in config.identity.api_key_headers),
        max_decoded_body_bytes=config.http.max_decoded_body_bytes,
        spec=spec,
    )
    return Pipeline(config.flow_limits(), builder, on_transaction, shard)


def templater_of(config: Config) -> EndpointTemplater:
    """A templater that learns as the configuration says."""
    return EndpointTemplater(
        learn_min_distinct=config.templating.learn_min_distinct,
        max_tracked_prefixes=config.templating.max_tracked_prefixes,
    )


def open_all(paths: list[str]) -> list[CaptureReader]:
    """Opens every file first, so a bad one fails before any output is written (CaptureError)."""
    return [open_capture(path) for path in paths]


class Run:
    """One pass of the pipeline with its outputs, whatever feeds it (files for replay, sockets for live)."""

    __slots__ = ("alerting", "batches", "endpoints", "engine", "metrics", "on_transaction", "outputs", "pipeline")

    def __init__(
        self,
        config: Config,
        on_transaction: Callable[[Transaction], None] | None,
        outputs: MetricOutputs | None = None,
        alerting: AlertOutputs | None = None,
        spec: ApiSpec | None = None,
        dropped: Callable[[], int] = lambda: 0,
    ) -> None:
        """`on_transaction`: where each transaction goes besides the outputs (None: nowhere). `dropped` counts
        packets the capture lost before the pipeline saw them (live capture's drops)."""
        self.endpoints = EndpointSummary()
        self.outputs = outputs
        self.alerting = alerting
        self.metrics = outputs.metrics if outputs is not None else None
        self.on_transaction = on_transaction
        # Each transaction goes to the engine's batch collector straight away (a C call when compiled), and the
        # engine inspects the batches it seals.
        self.engine = alerting.engine if alerting is not None else None
        self.batches = alerting.engine.collector if alerting is not None else None
        self.pipeline = build_pipeline(config, self._record, spec)
        if outputs is not None:
            outputs.watch(self.pipeline, dropped)

    def _record(self, transaction: Transaction) -> None:
        self.endpoints.add(transaction)
        if self.metrics is not None:
            self.metrics.add(transaction)
        if self.batches is not None and self.batches.add(transaction, -1, ()):
            self.engine.inspect_sealed()
        if self.on_transaction is not None:
            self.on_transaction(transaction)

    def feed(self, batch: PacketBatch) -> None:
        self.pipeline.process(batch)
        if self.metrics is not None:
            self.metrics.add_packets(batch.ts_ns, batch.wire_lengths)
            self.metrics.advance(self.pipeline.stats.last_ts_ns)

    def tick(self, now_ns: int) -> None:
        """Time passes without packets (live capture): idle flows expire, finished intervals are written and a
        batch of transactions waiting too long for the detectors is inspected."""
        self.pipeline.flows.expire(now_ns)
        if self.metrics is not None:
            self.metrics.advance(now_ns)
        if self.alerting is not None:
            self.alerting.flush_due(now_ns)

    def finish(self, warnings: list[str], extra_counters: dict[str, int] | None = None) -> ReplayResult:
        """Flushes every flow, alert and interval; the summary's counters and warnings."""
        self.pipeline.finish()
        result = ReplayResult(counters(self.pipeline), self.endpoints, warnings)
        result.counters.update(extra_counters or {})
        if self.alerting is not None:
            self.alerting.close()
            result.counters.update(self.alerting.counters())
        if self.outputs is not None:
            result.warnings.extend(self.outputs.close())
            result.counters.update(self.outputs.counters())
        return result


def replay(
    readers: list[CaptureReader],
    config: Config,
    on_transaction: Callable[[Transaction], None] | None,
    on_progress: Callable[[int], None] | None = None,
    outputs: MetricOutputs | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    alerting: AlertOutputs | None = None,
    spec: ApiSpec | None = None,
) -> ReplayResult:
    """Reads every capture in order; stops early (flushing everything) once `should_stop()` says so."""
    run = Run(config, on_transaction, outputs, alerting, spec)
    warnings: list[str] = []
    for reader in readers:
        reported = 0
        for batch in reader.batches():
            run.feed(batch)
            if on_progress is not None:
                on_progress(reader.bytes_consumed - reported)
                reported = reader.bytes_consumed
            if should_stop():
                break
        warnings.extend(reader.warnings)
        if should_stop():
            warnings.append("interrupted: stopped reading; everything read so far was flushed")
            break
    return run.finish(warnings)


def counters(pipeline: Pipeline) -> dict[str, int]:
    stats, flows = pipeline.stats, pipeline.flows.stats
    return {
        "packets": stats.packets,
        "bytes": stats.bytes,
        "tcp_packets": stats.tcp_packets,
        "tcp_flows": flows.tcp_flows,
        "http_flows": flows.http_flows,
        "non_http_flows": flows.non_http_flows,
        "transactions": stats.transactions,
        "parse_errors": flows.parse_errors,
        "gaps": flows.gaps,
        "gap_bytes": flows.gap_bytes,
        "evictions": flows.evictions,
        "timeouts": flows.timeouts,
        "malformed_packets": stats.malformed_packets,
        "fragments_reassembled": pipeline.fragments.reassembled,
        "overlap_conflicts": flows.overlap_conflicts,
        "tunnel_bytes": flows.tunnel_bytes,
        "stale_retransmissions": pipeline.flows.stale_retransmissions,
        "reassembly_memcap_hits": pipeline.flows.budget.overruns,
    }
