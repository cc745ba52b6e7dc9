"""Interval aggregation: buckets by packet time, lateness, bounded tags and samples, deterministic points."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.transaction import Transaction
from sniffer.metrics import (
    CAPTURE_MEASUREMENT,
    REQUESTS_MEASUREMENT,
    IntervalMetrics,
    MetricsSettings,
    _below,
    linear_percentiles,
)
from sniffer.sinks.lineprotocol import Point

S = 1_000_000_000


def transaction(
    ts: float, endpoint: str = "/a", status: int | None = 200, latency: float | None = 5.0, method: str = "GET"
) -> Transaction:
    return Transaction(
        ts=ts,
        src_ip="10.0.0.1",
        src_port=1,
        dst_ip="10.0.0.2",
        dst_port=80,
        method=method,
        uri=endpoint,
        host="api",
        path=endpoint,
        query="",
        http_version="1.1",
        endpoint=endpoint,
        status=status,
        latency_ms=latency,
        req_body_bytes=10,
        resp_body_bytes=100,
    )


def collect(settings: MetricsSettings) -> tuple[IntervalMetrics, list[Point]]:
    points: list[Point] = []
    return IntervalMetrics(settings, "test", points.extend), points


def requests(points: list[Point]) -> list[Point]:
    return [point for point in points if point.measurement == REQUESTS_MEASUREMENT]


def test_transactions_fall_in_the_interval_of_their_first_byte() -> None:
    metrics, points = collect(MetricsSettings(interval_s=10))
    for ts in (100.0, 109.999, 110.0):
        metrics.add(transaction(ts))
    metrics.close_all()
    assert [(p.ts_ns, p.fields["count"]) for p in requests(points)] == [(100 * S, 2), (110 * S, 1)]


def test_transactions_out_of_order_go_back_to_their_own_open_interval() -> None:
    """The interval the last transaction went to is kept for the next (IntervalMetrics.open_series): one that goes
    elsewhere, and one after an interval closed, still find their own."""
    metrics, points = collect(MetricsSettings(interval_s=10, max_lateness_s=30))
    for ts in (100.0, 111.0, 102.0, 112.0, 113.0, 104.0):
        metrics.add(transaction(ts))
    metrics.advance(140 * S)  # closes 100
    for ts in (125.0, 115.0, 126.0):
        metrics.add(transaction(ts))
    metrics.close_all()
    assert [(p.ts_ns, p.fields["count"]) for p in requests(points)] == [(100 * S, 3), (110 * S, 4), (120 * S, 2)]
    assert metrics.late_transactions == 0


@pytest.mark.parametrize("status, tag", [(100, "100"), (200, "200"), (404, "404"), (599, "599"), (99, "99"),
                                         (600, "600"), (999, "999"), (None, "none")])  # fmt: skip
def test_every_status_is_tagged_by_its_number(status: int | None, tag: str) -> None:
    metrics, points = collect(MetricsSettings(interval_s=10))
    metrics.add(transaction(100.0, status=status))
    metrics.close_all()
    assert [point.tags["status"] for point in requests(points)] == [tag]


def test_fields_count_errors_bytes_and_latency_percentiles() -> None:
    metrics, points = collect(MetricsSettings(interval_s=10))
    for latency in range(1, 101):
        metrics.add(transaction(100.0, latency=float(latency)))
    metrics.add(transaction(100.0, status=503, latency=1.0))
    metrics.add(transaction(100.0, status=None, latency=None))
    metrics.close_all()
    by_status = {point.tags["status"]: point.fields for point in requests(points)}
    assert by_status["200"]["count"] == 100 and by_status["200"]["errors"] == 0
    assert by_status["200"]["latency_p50_ms"] == 50.5
    assert by_status["200"]["latency_p99_ms"] == 99.01
    assert by_status["200"]["latency_max_ms"] == 100.0
    assert by_status["200"]["req_bytes"] == 1000
    assert by_status["503"]["errors"] == 1
    assert by_status["none"] == {"count": 1, "errors": 1, "req_bytes": 10, "resp_bytes": 100}


def test_an_interval_closes_once_packet_time_passes_it_by_the_lateness_bound() -> None:
    metrics, points = collect(MetricsSettings(interval_s=10, max_lateness_s=30))
    metrics.add(transaction(100.0))
    metrics.advance(139 * S)
    assert points == []
    metrics.advance(140 * S)
    assert [p.ts_ns for p in requests(points)] == [100 * S]
    metrics.add(transaction(105.0))
    assert metrics.late_transactions == 1


def test_endpoint_tags_past_the_bound_fold_into_other() -> None:
    metrics, points = collect(MetricsSettings(max_endpoint_series=2))
    for endpoint in ("/a", "/b", "/c", "/d", "/a"):
        metrics.add(transaction(100.0, endpoint=endpoint))
    metrics.close_all()
    counts = {point.tags["endpoint"]: point.fields["count"] for point in requests(points)}
    assert counts == {"/a": 2, "/b": 1, "other": 2}
    assert metrics.folded_endpoints == 2


def test_latency_reservoir_is_bounded_and_deterministic() -> None:
    results = []
    for _ in range(2):
        metrics, points = collect(MetricsSettings(max_latency_samples=50))
        for index in range(5000):
            metrics.add(transaction(100.0, latency=float(index % 997)))
        assert len(next(iter(metrics.open.values()))[("/a", "GET", "200", "api")].latencies) == 50
        metrics.close_all()
        results.append(requests(points)[0].fields)
    assert results[0] == results[1]
    assert results[0]["count"] == 5000


def test_capture_points_count_packets_per_interval_exactly() -> None:
    metrics, points = collect(MetricsSettings(interval_s=10))
    metrics.add_packets(np.array([100 * S, 101 * S, 115 * S], np.int64), np.array([60, 1500, 40], np.int32))
    metrics.add(transaction(101.0))
    metrics.close_all()
    capture = {p.ts_ns: p.fields for p in points if p.measurement == CAPTURE_MEASUREMENT}
    assert (capture[100 * S]["packets"], capture[100 * S]["bytes"], capture[100 * S]["transactions"]) == (2, 1560, 1)
    assert (capture[110 * S]["packets"], capture[110 * S]["transactions"]) == (1, 0)
    assert all(p.tags == {"source": "test"} for p in points if p.measurement == CAPTURE_MEASUREMENT)


def test_an_interval_with_a_request_still_waiting_stays_open_past_the_lateness_bound() -> None:
    metrics, points = collect(MetricsSettings(interval_s=10, max_lateness_s=5))
    waiting = {"since": 103 * S}
    metrics.pending_since = lambda: waiting["since"]
    metrics.add(transaction(101.0))
    metrics.add(transaction(125.0))
    metrics.advance(200 * S)
    assert points == []  # 100..110 holds a request asked at 103 s and not yet answered
    metrics.add(transaction(103.0, latency=90_000.0))
    waiting["since"] = None
    metrics.advance(200 * S)
    assert [(p.ts_ns, p.fields["count"]) for p in requests(points)] == [(100 * S, 2), (120 * S, 1)]
    assert metrics.late_transactions == 0


def test_latency_reservoir_is_a_uniform_sample_of_the_whole_interval() -> None:
    """Algorithm L keeps every latency with the same probability, early or late in the interval: over many
    series (each its own seeded generator), each tenth of the stream holds a tenth of the samples."""
    size, stream = 50, 10_000
    metrics, _ = collect(MetricsSettings(max_latency_samples=size))
    endpoints = [f"/e{n}" for n in range(100)]
    for index in range(stream):
        for endpoint in endpoints:
            metrics.add(transaction(100.0, endpoint=endpoint, latency=float(index)))
    series = next(iter(metrics.open.values())).values()
    samples = np.concatenate([np.asarray(aggregate.latencies) for aggregate in series])
    assert len(samples) == size * len(endpoints)
    tenths = np.bincount((samples * 10 // stream).astype(np.int64), minlength=10) / len(samples)
    assert np.abs(tenths - 0.1).max() < 0.02
    assert abs(samples.mean() / (stream - 1) - 0.5) < 0.02


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**64), bound=st.one_of(st.integers(1, 70_000), st.sampled_from([1, 2, 1024, 1025, 2**40])))
def test_the_reservoir_draws_its_slots_as_randrange_does(seed: int, bound: int) -> None:
    """Algorithm L's slot for a sampled latency is drawn without randrange's Python frames, but must be the very
    number randrange draws from the same generator, and leave the generator where randrange leaves it: replays keep
    the latencies, and so the quantiles, they kept."""
    ours, theirs = random.Random(seed), random.Random(seed)
    for _ in range(5):
        assert _below(ours.getrandbits, bound, bound.bit_length()) == theirs.randrange(bound)
    assert ours.getstate() == theirs.getstate()


LATENCIES = st.one_of(
    st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    st.integers(0, 50).map(lambda whole: whole / 1000),  # repeated values, as whole microseconds give
)


@settings(max_examples=400, deadline=None)
@given(st.lists(LATENCIES, min_size=1, max_size=600))
def test_linear_percentiles_are_numpys_to_the_last_bit(latencies: list[float]) -> None:
    expected = [float(value) for value in np.percentile(np.asarray(latencies), [50, 95, 99])]
    assert linear_percentiles(latencies, (50, 95, 99)) == expected
