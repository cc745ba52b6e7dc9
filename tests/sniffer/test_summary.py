"""The end-of-run summary's latency histogram."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

import sniffer.summary as summary
from sniffer.summary import BUCKETS, latency_bucket


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 5_000_000).map(lambda us: us / 1000),
                          st.floats(0, 1e8, allow_nan=False)), max_size=50))  # fmt: skip
def test_remembered_buckets_are_the_computed_ones(latencies) -> None:
    for latency in latencies + latencies:  # the second time from the memo
        expected = 0 if latency <= 0.001 else min(BUCKETS - 1, int(math.log(latency / 0.001) / math.log(1.04)) + 1)
        assert latency_bucket(latency) == expected


def test_remembered_buckets_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(summary, "BUCKET_MEMO_ENTRIES", 10)
    monkeypatch.setattr(summary, "_buckets", {})
    for microseconds in range(1, 100):
        latency_bucket(microseconds / 1000)
    assert len(summary._buckets) <= 10


def test_rows_count_errors_and_latencies_by_method_and_endpoint() -> None:
    from parsers.transaction import Transaction
    from sniffer.summary import EndpointSummary, bucket_upper_ms

    rows = EndpointSummary()
    for number, (status, latency) in enumerate([(200, 1.0), (200, 2.0), (503, 40.0), (None, None), (200, 2.0)]):
        transaction = Transaction(
            ts=1.0 + number, src_ip="10.0.0.1", src_port=1, dst_ip="10.0.0.2", dst_port=80, method="GET",
            uri="/a/1", host="api", path="/a/1", query="", http_version="1.1", endpoint="/a/{id}",
        )  # fmt: skip
        transaction.status, transaction.latency_ms = status, latency
        rows.add(transaction)
    ((key, row),) = rows.top()
    assert key == ("GET", "/a/{id}") and (row.count, row.errors) == (5, 2)  # a 5xx and an unanswered request
    assert int(row.histogram.sum()) == 4 and row.histogram[latency_bucket(2.0)] == 2
    assert row.percentile(0.5) == bucket_upper_ms(latency_bucket(2.0))
    assert row.percentile(1.0) == bucket_upper_ms(latency_bucket(40.0))


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.integers(0, 80_000).map(lambda us: us / 1000), st.floats(-1.0, 100.0, allow_nan=False)))
def test_buckets_remembered_by_the_microsecond_are_the_computed_ones(latency) -> None:
    """Whole microseconds under MICROSECOND_ENTRIES are remembered in a list by their number; any other value
    (a fraction of a microsecond, a negative or larger one) takes the dict, with the same result."""
    for _ in range(2):
        assert latency_bucket(latency) == summary._bucket_of(latency)
    micros = round(latency * 1000)
    if 0 <= latency < summary.MICROSECONDS_BELOW_MS and micros / 1000 == latency:
        assert summary._buckets_by_micros[micros] == summary._bucket_of(latency)
