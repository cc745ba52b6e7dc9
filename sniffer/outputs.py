"""The time-series outputs of a run: the interval aggregator and the sinks its points go to.

Built once from the configuration; the replay (and live) loop feeds it transactions and packet batches, and
closes it at the end, which flushes every interval and every sink.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from sniffer.config import Config
from sniffer.metrics import CaptureCounters, IntervalMetrics
from sniffer.pipeline import Pipeline
from sniffer.sinks.influx import InfluxWriter
from sniffer.sinks.lineprotocol import LineProtocolFile, Point


class MetricOutputs:
    """Aggregates per interval and writes the points to InfluxDB and/or a line-protocol file."""

    def __init__(self, config: Config, source: str, line_protocol_path: str | None) -> None:
        self.influx = InfluxWriter(config.influx) if config.influx.url else None
        self.line_protocol = LineProtocolFile(line_protocol_path) if line_protocol_path else None
        self.metrics = IntervalMetrics(config.metrics, config.metrics.source or source, self.emit)
        if self.influx is not None:
            self.metrics.health_fields = self.influx.counters

    def watch(self, pipeline: Pipeline, dropped: Callable[[], int] = lambda: 0) -> None:
        """Reads the sniffer's own counters from `pipeline` (and the capture's drop count) at each interval close."""
        stats, flows = pipeline.stats, pipeline.flows

        def health() -> CaptureCounters:
            return CaptureCounters(
                packets=stats.packets, bytes=stats.bytes, dropped=dropped(), flows_active=len(flows),
                flows_evicted=flows.stats.evictions, gaps=flows.stats.gaps, parse_errors=flows.stats.parse_errors,
            )

        self.metrics.health = health
        self.metrics.pending_since = flows.oldest_pending_ts

    def emit(self, points: list[Point]) -> None:
        if self.influx is not None:
            self.influx.write(points)
        if self.line_protocol is not None:
            self.line_protocol.write(points)

    def reopen(self) -> None:
        if self.line_protocol is not None:
            self.line_protocol.reopen()

    def close(self) -> list[str]:
        """Closes every interval and sink; returns messages for the user (points left in a spill file)."""
        self.metrics.close_all()
        messages = []
        if self.line_protocol is not None:
            self.line_protocol.close()
        if self.influx is not None:
            message = self.influx.close()
            if message:
                messages.append(message)
        return messages

    def counters(self) -> dict[str, int]:
        counters = {"points": self.metrics.points_emitted, "late_transactions": self.metrics.late_transactions,
                    "folded_endpoints": self.metrics.folded_endpoints}
        if self.influx is not None:
            counters.update(self.influx.counters())
        return counters


def default_source(paths: list[str]) -> str:
    return os.path.basename(paths[0]) if paths and paths[0] != "-" else "stdin"
