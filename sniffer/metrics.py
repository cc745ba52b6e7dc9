"""Per-interval time series of API traffic and of the sniffer's own health, stamped with packet time.

Transactions are bucketed by the interval of their request's first byte (`ts`), into one series per (endpoint,
method, status, host). A transaction is reported when its response ends, so an interval cannot close when
packet time passes its end: it closes once packet time has passed its end by `max_lateness_s` AND no request
of it is still waiting for its answer (the flow table says which is the oldest waiting request; a request never
answered becomes a transaction when its flow ends or times out). Then it turns into points. A transaction for an
interval already closed (possible only for a request whose head arrived more than the lateness bound after its
first byte) is counted as `late` and left out, so the sum of `count` equals the transactions written minus the
late ones. Replaying the same capture gives the same points with the same timestamps, so a second replay
overwrites instead of double counting.

Memory is bounded: at most `max_endpoint_series` distinct endpoint tags (the rest fold into `endpoint=other`,
counted), and at most `max_latency_samples` latencies kept per series and interval for the percentiles (a
deterministic reservoir beyond that).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from math import exp, floor, log, log1p

import numpy as np

from parsers.transaction import Transaction
from sniffer.sinks.lineprotocol import Point

REQUESTS_MEASUREMENT = "api_requests"
CAPTURE_MEASUREMENT = "apispy_capture"
ALERTS_MEASUREMENT = "api_alerts"
OTHER_ENDPOINT = "other"
NO_STATUS = "none"
NS_PER_S = 1_000_000_000
_STATUS_TEXTS = [str(status) for status in range(100, 600)]  # the tag of status 100 + i
MAX_SKIP_WEIGHT = 1.0 - 1e-12  # Algorithm L's W stays inside (0, 1): 1 - random() may be exactly 1
MIN_SKIP_WEIGHT = 1e-300
WHOLE_DOUBLES_FROM = 2.0**52


@dataclass
class MetricsSettings:
    """The `[metrics]` section of the configuration."""

    interval_s: float = 10.0
    max_lateness_s: float = 10.0
    max_endpoint_series: int = 2000
    max_latency_samples: int = 4096  # per series and interval, for the percentiles
    source: str = ""  # the `source` tag of apispy_capture; default: the first capture's file name


class SeriesAggregate:
    """One series' figures in one interval, updated per transaction (an extension type in the compiled build)."""

    __slots__ = (
        "count", "errors", "req_bytes", "resp_bytes", "latencies", "latencies_seen", "draw", "draw_bits",
        "next_sampled", "skip_weight",
    )  # fmt: skip

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.req_bytes = 0
        self.resp_bytes = 0
        self.latencies: list[float] = []
        self.latencies_seen = 0
        # The `random` and `getrandbits` of the series' generator, made when the reservoir fills up and bound once:
        # each draw was a method looked up by name (some 300 instructions).
        self.draw: Callable[[], float] | None = None
        self.draw_bits: Callable[[int], int] | None = None
        self.next_sampled = 0  # the number (1-based) of the next latency that enters the full reservoir
        self.skip_weight = 0.0  # Algorithm L's W


@dataclass(slots=True)
class CaptureCounters:
    """The sniffer's own cumulative counters, read at each interval close; points carry the deltas (packets,
    bytes and transactions are instead counted exactly per interval, by packet time)."""

    packets: int = 0
    bytes: int = 0
    dropped: int = 0
    flows_active: int = 0
    flows_evicted: int = 0
    gaps: int = 0
    parse_errors: int = 0


def packet_counts(ts_ns: np.ndarray, wire_lengths: np.ndarray, interval_ns: int) -> list[tuple[int, int, int]]:
    """(interval start, packets, bytes) of each interval the packets fall in."""
    starts = ts_ns - ts_ns % interval_ns
    unique, inverse = np.unique(starts, return_inverse=True)
    packets = np.bincount(inverse)
    sizes = np.bincount(inverse, weights=wire_lengths)
    return [(start, count, int(size)) for start, count, size in zip(unique.tolist(), packets.tolist(),
                                                                    sizes.tolist(), strict=True)]


class IntervalMetrics:
    """Aggregates transactions and packets per interval and hands closed intervals to `emit` as points."""

    __slots__ = (
        "closed_before_ns", "emit", "endpoints", "folded_endpoints", "health", "health_fields", "interval_ns",
        "late_transactions", "lateness_ns", "max_latency_samples", "open", "open_series", "open_start", "packets",
        "pending_since", "points_emitted", "previous_counters", "sample_bits", "settings", "source",
    )  # fmt: skip

    def __init__(self, settings: MetricsSettings, source: str, emit: Callable[[list[Point]], None]) -> None:
        self.settings = settings
        self.source = source
        self.emit = emit
        self.interval_ns = int(settings.interval_s * NS_PER_S)
        self.lateness_ns = int(settings.max_lateness_s * NS_PER_S)
        # Read per transaction: compiled, a C field (sniffer/metrics.pxd), where the settings' was looked up by name.
        self.max_latency_samples = settings.max_latency_samples
        self.sample_bits = settings.max_latency_samples.bit_length()  # what a reservoir slot is drawn with
        self.open: dict[int, dict[tuple[str, str, str, str], SeriesAggregate]] = {}
        # The open interval the last transaction went to, and its series: most transactions go where the one before
        # went, and are then added without looking their interval up. None once any interval closes, so that a closed
        # interval's series go at once (a transaction for a closed interval is late, and never reaches this).
        self.open_start = 0
        self.open_series: dict[tuple[str, str, str, str], SeriesAggregate] | None = None
        self.packets: dict[int, list[int]] = {}  # interval start -> [packets, bytes]
        self.closed_before_ns = -1  # every interval starting before this is closed
        self.endpoints: set[str] = set()
        self.folded_endpoints = 0
        self.late_transactions = 0
        self.points_emitted = 0
        self.previous_counters = CaptureCounters()
        self.health: Callable[[], CaptureCounters] = CaptureCounters
        # Packet time of the oldest request not yet a transaction (None when there is none): its interval stays
        # open until it is answered, or its flow ends, so a slow answer is never late.
        self.pending_since: Callable[[], int | None] = lambda: None
        self.health_fields: Callable[[], dict[str, int]] = dict

    def interval_of(self, ts_ns: int) -> int:
        interval = self.interval_ns  # compiled, a C integer (the configuration bounds it), as ts_ns is
        return ts_ns - ts_ns % interval

    def add_packets(self, ts_ns: np.ndarray, wire_lengths: np.ndarray) -> None:
        """Counts a batch's packets and bytes into their intervals (a batch may span several)."""
        self.add_packet_counts(packet_counts(ts_ns, wire_lengths, self.interval_ns))

    def add_packet_counts(self, counts: list[tuple[int, int, int]]) -> None:
        """Adds (interval start, packets, bytes) rows, as `packet_counts` makes them."""
        for start, count, size in counts:
            row = self.packets.setdefault(start, [0, 0])
            row[0] += count
            row[1] += size

    def add(self, transaction: Transaction) -> None:
        scaled = transaction.ts * NS_PER_S
        # From 2**52 on, every double is a whole number, which round() gives back as it is: there (packet times
        # from some 52 days past the epoch on) int() alone gives what int(round()) gives, without calling round(),
        # some 760 instructions a transaction when compiled.
        ts_ns = int(scaled) if scaled >= WHOLE_DOUBLES_FROM else int(round(scaled))
        start = self.interval_of(ts_ns)
        if start < self.closed_before_ns:
            self.late_transactions += 1
            return
        endpoint = transaction.endpoint or "-"
        if endpoint not in self.endpoints:
            endpoint = self._endpoint_tag(endpoint)
        status = transaction.status
        if status is None:
            status_text = NO_STATUS
        elif 100 <= status < 600:
            status_text = _STATUS_TEXTS[status - 100]  # a list: no hash, no comparison of int objects
        else:
            status_text = str(status)
        key = (endpoint, transaction.method or "-", status_text, transaction.host or "-")
        series = self.open_series
        if series is None or start != self.open_start:
            series = self.open.get(start)
            if series is None:
                series = self.open[start] = {}
            self.open_start, self.open_series = start, series
        aggregate = series.get(key)
        if aggregate is None:
            aggregate = series[key] = SeriesAggregate()
        aggregate.count += 1
        if status is None or status >= 500:
            aggregate.errors += 1
        # Read into C integers first (metrics.pxd): added to an object, each sum made two int objects.
        request_bytes, response_bytes = transaction.req_body_bytes, transaction.resp_body_bytes
        aggregate.req_bytes += request_bytes
        aggregate.resp_bytes += response_bytes
        latency_ms = transaction.latency_ms
        if latency_ms is not None:
            seen = aggregate.latencies_seen = aggregate.latencies_seen + 1
            if seen <= self.max_latency_samples:
                aggregate.latencies.append(latency_ms)
            elif seen == aggregate.next_sampled or aggregate.draw is None:
                self._sample(aggregate, key, start, latency_ms)

    def _endpoint_tag(self, endpoint: str) -> str:
        if endpoint in self.endpoints:
            return endpoint
        if len(self.endpoints) < self.settings.max_endpoint_series:
            self.endpoints.add(endpoint)
            return endpoint
        self.folded_endpoints += 1
        return OTHER_ENDPOINT

    def _sample(self, aggregate: SeriesAggregate, key: tuple, start: int, latency_ms: float) -> None:
        """A latency past a full reservoir: a uniform sample of all the series' latencies is kept, by Li's
        Algorithm L, which draws how many latencies to pass over instead of a random number per latency. The
        generator is seeded by the series and interval: the same capture keeps the same sample, so replays stay
        deterministic."""
        size = self.max_latency_samples
        if aggregate.draw is None:
            sampler = random.Random(zlib.crc32(repr((key, start)).encode()))
            aggregate.draw, aggregate.draw_bits = sampler.random, sampler.getrandbits
            aggregate.skip_weight = _weight_factor(aggregate.draw, size)
            aggregate.next_sampled = size + _skip(aggregate.draw, aggregate.skip_weight) + 1
        if aggregate.latencies_seen == aggregate.next_sampled:
            draw = aggregate.draw
            aggregate.latencies[_below(aggregate.draw_bits, size, self.sample_bits)] = latency_ms
            aggregate.skip_weight *= _weight_factor(draw, size)
            aggregate.next_sampled += _skip(draw, aggregate.skip_weight) + 1

    def advance(self, now_ns: int) -> None:
        """Packet time reached `now_ns`: closes every interval that ended more than the lateness bound ago,
        except those a request still waiting for its answer belongs to (`pending_since`)."""
        limit = now_ns - self.lateness_ns - self.interval_ns
        starts = set(self.open) | set(self.packets)
        if not starts or min(starts) > limit:
            return
        oldest_pending = self.pending_since()
        if oldest_pending is not None:
            limit = min(limit, self.interval_of(oldest_pending) - self.interval_ns)
        for start in sorted(start for start in starts if start <= limit):
            self._close(start)

    def close_all(self) -> None:
        for start in sorted(set(self.open) | set(self.packets)):
            self._close(start)

    def _close(self, start: int) -> None:
        series = self.open.pop(start, {})
        self.open_series = None
        points = [self._request_point(start, key, aggregate) for key, aggregate in sorted(series.items())]
        points.append(self._capture_point(start, sum(aggregate.count for aggregate in series.values())))
        self.closed_before_ns = max(self.closed_before_ns, start + self.interval_ns)
        self.points_emitted += len(points)
        self.emit(points)

    def _request_point(self, start: int, key: tuple[str, str, str, str], aggregate: SeriesAggregate) -> Point:
        endpoint, method, status, host = key
        fields: dict[str, int | float] = {
            "count": aggregate.count,
            "errors": aggregate.errors,
            "req_bytes": aggregate.req_bytes,
            "resp_bytes": aggregate.resp_bytes,
        }
        if aggregate.latencies:
            p50, p95, p99 = linear_percentiles(aggregate.latencies, (50, 95, 99))
            fields.update(
                latency_p50_ms=round(p50, 3),
                latency_p95_ms=round(p95, 3),
                latency_p99_ms=round(p99, 3),
                latency_max_ms=round(max(aggregate.latencies), 3),
            )
        tags = {"endpoint": endpoint, "method": method, "status": status, "host": host}
        return Point(REQUESTS_MEASUREMENT, tags, fields, start)

    def _capture_point(self, start: int, transactions: int) -> Point:
        packets, size = self.packets.pop(start, (0, 0))
        now = self.health()
        before = self.previous_counters
        self.previous_counters = now
        fields: dict[str, int | float] = {
            "packets": packets,
            "bytes": size,
            "dropped": now.dropped - before.dropped,
            "flows_active": now.flows_active,
            "flows_evicted": now.flows_evicted - before.flows_evicted,
            "gaps": now.gaps - before.gaps,
            "parse_errors": now.parse_errors - before.parse_errors,
            "transactions": transactions,
            "late_transactions": self.late_transactions,
            "folded_endpoints": self.folded_endpoints,
        }
        fields.update(self.health_fields())
        return Point(CAPTURE_MEASUREMENT, {"source": self.source}, fields, start)


def linear_percentiles(values: list[float], percents: tuple[int, ...]) -> list[float]:
    """What `np.percentile(values, percents)` gives (its default, linear method), to the last bit: the same
    virtual index, (n - 1) * percent / 100, and the same interpolation as numpy's `_lerp`, from the upper value
    when past half way. Not np.percentile itself: in numpy 2.4 it calls np.unique, whose first call imports
    numpy.ma (44 ms, on the first interval a run closes). Sorting the list takes what making an array of it took
    (some 350 us for a full reservoir of 4,096). `values` hold no NaN (they are latencies)."""
    ordered = sorted(values)
    last = len(ordered) - 1
    results = []
    for percent in percents:
        index = last * (percent / 100)
        if index >= last:
            results.append(ordered[last])
            continue
        below = floor(index)
        gamma = index - below
        low, high = ordered[below], ordered[below + 1]
        difference = high - low
        results.append(high - difference * (1 - gamma) if gamma >= 0.5 else low + difference * gamma)
    return results


def _skip(draw: Callable[[], float], weight: float) -> int:
    """Algorithm L's number of latencies to pass over, for its weight W (kept inside (0, 1)). Compiled, the clamp
    and the arithmetic are on C doubles (sniffer/metrics.pxd), and the math functions are looked up as globals:
    callgrind counted some 2,290 instructions a draw, 3,030 with `min`, `max` and `math.` calls on Python floats."""
    if weight < MIN_SKIP_WEIGHT:
        weight = MIN_SKIP_WEIGHT
    elif weight > MAX_SKIP_WEIGHT:
        weight = MAX_SKIP_WEIGHT
    uniform = 1.0 - draw()
    return floor(log(uniform) / log1p(-weight))


def _below(draw_bits: Callable[[int], int], bound: int, bits: int) -> int:
    """`sampler.randrange(bound)` of the generator whose `getrandbits` is `draw_bits`, drawn as CPython draws it
    (Random._randbelow_with_getrandbits: `bits`, the bits `bound` has, drawn again until the number is below it),
    without randrange's two Python frames, which cost some 1,800 instructions a sampled latency when compiled.
    tests/sniffer/test_metrics.py holds it to randrange, which keeps replays' reservoirs, and so their quantiles,
    what they were."""
    value = draw_bits(bits)
    while value >= bound:
        value = draw_bits(bits)
    return value


def _weight_factor(draw: Callable[[], float], size: int) -> float:
    """Algorithm L's draw for W: u ** (1 / size), u uniform in (0, 1] (on C doubles when compiled, as _skip)."""
    uniform = 1.0 - draw()
    return exp(log(uniform) / size)
