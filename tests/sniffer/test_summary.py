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
