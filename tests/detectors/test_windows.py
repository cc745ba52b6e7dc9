"""Window kernels: compiled and plain-Python bodies agree, and the counts are the obvious ones."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.kernels import python_body

from detectors.windows import BITMAP_WORDS, robust_threshold, window_counts, window_distinct

# The Python bodies wrap 64-bit hashes with numpy scalars, which warn where the kernels are silent.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

events = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 40), st.integers(0, 3)), min_size=1, max_size=200)


def run_counts(kernel, rows, buckets=5):
    rows = sorted(rows, key=lambda row: row[1])
    slots = np.array([row[0] for row in rows], np.int64)
    subs = np.array([row[1] for row in rows], np.int64)
    increments = np.array([row[2] for row in rows], np.int64)
    counts = np.zeros((5, buckets), np.int64)
    tags = np.full((5, buckets), -1, np.int64)
    totals = np.zeros(len(rows), np.int64)
    kernel(slots, subs, increments, counts, tags, totals)
    return totals, rows


@settings(max_examples=200, deadline=None)
@given(events)
def test_window_counts_matches_its_python_body_and_a_brute_force_count(rows) -> None:
    compiled, ordered = run_counts(window_counts, rows)
    reference, _ = run_counts(python_body(window_counts), rows)
    np.testing.assert_array_equal(compiled, reference)
    for i, (slot, sub, _) in enumerate(ordered):
        expected = sum(inc for s, b, inc in ordered[: i + 1] if s == slot and sub - 5 < b <= sub)
        assert compiled[i] == expected


def run_distinct(kernel, rows):
    rows = sorted(rows, key=lambda row: row[1])
    slots = np.array([row[0] for row in rows], np.int64)
    subs = np.array([row[1] for row in rows], np.int64)
    hashes = np.array([row[2] for row in rows], np.uint64)
    bitmaps = np.zeros((5, 4, BITMAP_WORDS), np.uint64)
    tags = np.full((5, 4), -1, np.int64)
    estimates = np.zeros(len(rows), np.float64)
    kernel(slots, subs, hashes, bitmaps, tags, estimates)
    return estimates, rows


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 30), st.integers(0, 2**32)), min_size=1, max_size=150))
def test_window_distinct_matches_its_python_body(rows) -> None:
    compiled, _ = run_distinct(window_distinct, rows)
    reference, _ = run_distinct(python_body(window_distinct), rows)
    np.testing.assert_allclose(compiled, reference)


def test_distinct_estimate_is_close_for_hundreds_of_values() -> None:
    rows = [(0, 7, zlib.crc32(str(value).encode())) for value in range(300)]
    estimates, _ = run_distinct(window_distinct, rows)
    assert estimates[0] == pytest.approx(1.0, abs=0.01)
    assert estimates[-1] == pytest.approx(300, rel=0.08)
    repeated, _ = run_distinct(window_distinct, [(0, 7, 12345)] * 50)
    assert repeated[-1] == pytest.approx(1.0, abs=0.01)


def test_robust_threshold_ignores_one_outlier_and_keeps_its_floor() -> None:
    values = np.array([10, 11, 9, 10, 12, 10, 500], np.float64)
    assert robust_threshold(values, 10.0, 0.0) == pytest.approx(10 + 10 * 1.4826 * 1.0)
    assert robust_threshold(values, 10.0, 60.0) == 60.0
    assert robust_threshold(values, 10.0, 60.0) == python_body(robust_threshold)(values, 10.0, 60.0)
    assert robust_threshold(np.zeros(0), 3.0, 5.0) == 5.0
