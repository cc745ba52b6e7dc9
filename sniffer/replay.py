"""Offline replay: several capture files read in order as one stream, through the pipeline, into the sinks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from parsers.templating import EndpointTemplater
from parsers.transaction import Transaction
from sniffer.capture.pcapfile import CaptureReader, open_capture
from sniffer.config import Config
from sniffer.identity import ClientIdentity
from sniffer.pipeline import Pipeline
from sniffer.records import TransactionBuilder
from sniffer.summary import EndpointSummary


@dataclass
class ReplayResult:
    counters: dict[str, int]
    endpoints: EndpointSummary
    warnings: list[str] = field(default_factory=list)


def build_pipeline(config: Config, on_transaction: Callable[[Transaction], None]) -> Pipeline:
    builder = TransactionBuilder(
        EndpointTemplater(
            learn_min_distinct=config.templating.learn_min_distinct,
            max_tracked_prefixes=config.templating.max_tracked_prefixes,
        ),
        ClientIdentity(config.identity.trusted_proxies, config.identity.salt.encode()),
        api_key_headers=tuple(name.lower().encode() for name in config.identity.api_key_headers),
        max_decoded_body_bytes=config.http.max_decoded_body_bytes,
    )
    return Pipeline(config.flow_limits(), builder, on_transaction)


def open_all(paths: list[str]) -> list[CaptureReader]:
    """Opens every file first, so a bad one fails before any output is written (CaptureError)."""
    return [open_capture(path) for path in paths]


def replay(
    readers: list[CaptureReader],
    config: Config,
    on_transaction: Callable[[Transaction], None],
    on_progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    endpoints = EndpointSummary()

    def record(transaction: Transaction) -> None:
        endpoints.add(transaction)
        on_transaction(transaction)

    pipeline = build_pipeline(config, record)
    warnings: list[str] = []
    for reader in readers:
        reported = 0
        for batch in reader.batches():
            pipeline.process(batch)
            if on_progress is not None:
                on_progress(reader.bytes_consumed - reported)
                reported = reader.bytes_consumed
        warnings.extend(reader.warnings)
    pipeline.finish()
    return ReplayResult(counters(pipeline), endpoints, warnings)


def counters(pipeline: Pipeline) -> dict[str, int]:
    stats, flows = pipeline.stats, pipeline.flows.stats
    return {
        "packets": stats.packets,
        "bytes": stats.bytes,
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
        "stale_retransmissions": pipeline.flows.stale_retransmissions,
    }
