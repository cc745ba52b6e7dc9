"""Per-endpoint counts, error rates and latency percentiles for the end-of-run summary.

Latencies go into a fixed log-scale histogram per endpoint (1 µs to ~1 hour, 4% wide buckets), so memory per
endpoint is constant whatever the run's length; percentiles are read off the histogram.
"""

from __future__ import annotations

import math

import numpy as np

from parsers.transaction import Transaction

BUCKET_GROWTH = 1.04
MIN_LATENCY_MS = 0.001
LOG_GROWTH = math.log(BUCKET_GROWTH)
BUCKETS = int(math.log(3.6e6 / MIN_LATENCY_MS) / math.log(BUCKET_GROWTH)) + 2
MAX_ENDPOINT_ROWS = 10_000
OTHER = "other"


def latency_bucket(latency_ms: float) -> int:
    if 0.0 <= latency_ms < MICROSECONDS_BELOW_MS:
        micros = int(latency_ms * 1000.0 + 0.5)  # compiled, C arithmetic (summary.pxd)
        if micros / 1000.0 == latency_ms:
            by_micros = _buckets_by_micros  # a typed local when compiled: an item read in place
            bucket = by_micros[micros]
            if bucket < 0:
                bucket = by_micros[micros] = _bucket_of(latency_ms)
            return bucket
    buckets = _buckets  # a typed local when compiled: its get is a C call
    bucket = buckets.get(latency_ms)
    if bucket is None:
        if len(buckets) >= BUCKET_MEMO_ENTRIES:
            buckets.clear()
        bucket = buckets[latency_ms] = _bucket_of(latency_ms)
    return bucket


def _bucket_of(latency_ms: float) -> int:
    if latency_ms <= MIN_LATENCY_MS:
        return 0
    return min(BUCKETS - 1, int(math.log(latency_ms / MIN_LATENCY_MS) / LOG_GROWTH) + 1)


# Latencies are whole microseconds, and a busy endpoint answers in the same few hundred of them again and again:
# their buckets are remembered rather than computed with a logarithm each time. Those under MICROSECOND_ENTRIES
# microseconds by their number of microseconds, in a list (-1: not yet), where the float itself is the argument of
# `_bucket_of` (latency_bucket checks that the number gives that very float): an index, where a dict memo hashed
# the float and compared it (some 800 instructions a transaction). Others in a dict (bounded).
MICROSECOND_ENTRIES = 1 << 16
MICROSECONDS_BELOW_MS = (MICROSECOND_ENTRIES - 1) / 1000  # rounded to microseconds, within the list
_buckets_by_micros: list[int] = [-1] * MICROSECOND_ENTRIES
BUCKET_MEMO_ENTRIES = 65536
_buckets: dict[float, int] = {}


def bucket_upper_ms(bucket: int) -> float:
    return MIN_LATENCY_MS * BUCKET_GROWTH**bucket


class EndpointStats:
    """One (method, endpoint) row, updated per transaction (an extension type in the compiled build)."""

    __slots__ = ("count", "errors", "histogram", "_counts")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.histogram = np.zeros(BUCKETS, dtype=np.int64)
        # The histogram's counts as a memoryview: compiled, one += per transaction is a C increment (summary.pxd),
        # where a list's item was read, added to and stored back as int objects.
        self._counts = memoryview(self.histogram)

    def percentile(self, fraction: float) -> float | None:
        total = int(self.histogram.sum())
        if total == 0:
            return None
        rank = max(1, math.ceil(fraction * total))
        bucket = int(np.searchsorted(np.cumsum(self.histogram), rank))
        return bucket_upper_ms(bucket)


class EndpointSummary:
    """Aggregates transactions by (method, endpoint); errors are 5xx answers and requests never answered."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], EndpointStats] = {}

    def add(self, transaction: Transaction) -> None:
        rows = self.rows  # a typed local when compiled: its get is a C call
        key = (transaction.method or "-", transaction.endpoint or "-")
        row = rows.get(key)
        if row is None:
            if len(rows) >= MAX_ENDPOINT_ROWS:
                key = ("*", OTHER)
                row = rows.setdefault(key, EndpointStats())
            else:
                row = rows[key] = EndpointStats()
        row.count += 1
        if transaction.status is None or transaction.status >= 500:
            row.errors += 1
        if transaction.latency_ms is not None:
            row._counts[latency_bucket(transaction.latency_ms)] += 1

    def top(self, limit: int = 10) -> list[tuple[tuple[str, str], EndpointStats]]:
        return sorted(self.rows.items(), key=lambda item: (-item[1].count, item[0]))[:limit]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_summary(counters: dict[str, int], endpoints: EndpointSummary, warnings: list[str]) -> str:
    lines = ["apispy summary"]
    lines.append("  " + "  ".join(f"{name}={value}" for name, value in counters.items()))
    top = endpoints.top()
    if top:
        lines.append(
            f"  {'method':<8} {'endpoint':<48} {'count':>8} {'err%':>6} {'p50ms':>8} {'p95ms':>8} {'p99ms':>8}"
        )
        for (method, endpoint), row in top:
            error_rate = 100.0 * row.errors / row.count
            lines.append(
                f"  {method:<8} {endpoint[:48]:<48} {row.count:>8} {error_rate:>6.1f} {_ms(row.percentile(0.50)):>8}"
                f" {_ms(row.percentile(0.95)):>8} {_ms(row.percentile(0.99)):>8}"
            )
    lines.extend(f"  warning: {warning}" for warning in warnings)
    return "\n".join(lines)
