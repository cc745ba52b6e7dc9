"""The payload kernels give identical results compiled and as plain Python (`kernel.py_func`), and the right ones."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from support.kernels import python_body

from detectors.kernels import (
    FEATURE_ENTROPY,
    FEATURE_LENGTH,
    FEATURE_LETTERS,
    MAD_TO_SIGMA,
    N_BODY_FEATURES,
    N_ROW_FEATURES,
    RESPONSE_OFFSET,
    luhn_valid,
    payload_rows,
    score_and_learn,
    window_stats,
)

REAL_BODIES = [
    b"",
    b'{"name": "Alice Smith", "email": "alice@example.com", "age": 42, "tags": ["a", "b"]}',
    json.dumps({"items": [{"sku": f"SKU-{i}", "qty": i % 5, "price": i * 1.25} for i in range(40)]}).encode(),
    b"username=alice&password=hunter2&remember=1",
    "Grüße aus Köln — ünïcödé text".encode(),
    bytes(range(256)) * 3,
    b"\x1f\x8b\x08\x00" + bytes((i * 97 + 13) % 256 for i in range(500)),
]


def _rows_both_ways(
    requests: list[bytes], responses: list[bytes], statuses: list[int], min_shape_bytes: int = 0,
    sources: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """payload_rows compiled and as plain Python, with each body's size as its log size; no body marked a repeat
    unless `sources` says so."""
    bodies = requests + responses
    lengths = np.array([len(body) for body in bodies], dtype=np.int64)
    log_sizes = np.log2(1.0 + lengths)
    if sources is None:
        sources = np.arange(len(bodies), dtype=np.int64)
    # Only the sources' bytes, back to back; each body read where its source's lie.
    firsts = [index for index in range(len(bodies)) if sources[index] == index]
    buffer = np.frombuffer(b"".join(bodies[index] for index in firsts), dtype=np.uint8)
    first_offsets = dict(zip(firsts, np.cumsum([0] + [len(bodies[index]) for index in firsts]).tolist(), strict=False))
    offsets = np.array([first_offsets[source] for source in sources.tolist()], dtype=np.int64)
    outputs = []
    for kernel in (payload_rows, python_body(payload_rows)):
        out = np.full((len(requests), N_ROW_FEATURES), -1.0)
        kernel(buffer, offsets, lengths, sources, log_sizes, np.array(statuses, np.int64), min_shape_bytes, 200, 299,
               out)  # fmt: skip
        outputs.append(out)
    return outputs[0], outputs[1]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.binary(max_size=600), st.binary(max_size=600), st.sampled_from([0, 200, 204, 299, 301, 404])),
             min_size=1, max_size=12),
    st.integers(0, 40),
)  # fmt: skip
def test_payload_rows_compiled_equals_python_on_random_bodies(rows, min_shape_bytes):
    requests, responses, statuses = (list(column) for column in zip(*rows, strict=True))
    compiled, reference = _rows_both_ways(requests, responses, statuses, min_shape_bytes)
    np.testing.assert_array_equal(compiled, reference)


def first_of_run(bodies: list[bytes], row: int) -> int:
    """The first row of the run of equal bodies that ends at `row`."""
    while row > 0 and bodies[row - 1] == bodies[row]:
        row -= 1
    return row


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from([0, 200, 404])), min_size=1, max_size=12),
    st.integers(0, 40),
)  # fmt: skip
def test_payload_rows_of_repeated_bodies_are_those_of_each_body_alone(rows, min_shape_bytes):
    """A body marked a repeat of an earlier one (detectors.batchbodies) gets the features its own bytes give,
    even where its source's row is NaN (a non-2xx response) and nothing was computed for it."""
    pool = [b"", b"short", b'{"id": 7, "name": "Ann", "tags": ["a", "b"]}', bytes(range(200))]
    requests = [pool[request] for request, _, _ in rows]
    responses = [pool[response] for _, response, _ in rows]
    statuses = [status for _, _, status in rows]
    # Each body's first of its run of equal ones, requests apart from responses (as detectors.batchbodies has them).
    sources = np.array([first_of_run(requests, row) for row in range(len(rows))]
                       + [len(rows) + first_of_run(responses, row) for row in range(len(rows))], np.int64)  # fmt: skip
    marked, marked_reference = _rows_both_ways(requests, responses, statuses, min_shape_bytes, sources)
    alone, _ = _rows_both_ways(requests, responses, statuses, min_shape_bytes)
    np.testing.assert_array_equal(marked, alone)
    np.testing.assert_array_equal(marked_reference, alone)


def test_payload_rows_compiled_equals_python_on_real_bodies():
    compiled, reference = _rows_both_ways(REAL_BODIES, REAL_BODIES[::-1], [200] * len(REAL_BODIES), 16)
    np.testing.assert_array_equal(compiled, reference)


def test_payload_rows_values_for_known_bodies():
    compiled, _ = _rows_both_ways([b"", b"ab", b"a1,\x00", bytes(range(256))], [b"ab", b"", b"ab", b"a1,\x00"],
                                  [200, 200, 404, 0])  # fmt: skip
    np.testing.assert_array_equal(compiled[0, :N_BODY_FEATURES], [0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(compiled[1, :N_BODY_FEATURES], [math.log2(3), 1.0, 1.0, 0, 0, 0])
    np.testing.assert_array_equal(compiled[2, :N_BODY_FEATURES], [math.log2(5), 2.0, 0.25, 0.25, 0.25, 0.25])
    assert compiled[3, FEATURE_LENGTH] == math.log2(257)
    assert compiled[3, FEATURE_ENTROPY] == 8.0
    np.testing.assert_allclose(compiled[3, FEATURE_LETTERS:N_BODY_FEATURES], [52 / 256, 10 / 256, 36 / 256, 158 / 256])
    # Responses: their own columns, and none at all where the status is not a 2xx.
    np.testing.assert_array_equal(compiled[0, RESPONSE_OFFSET:], [math.log2(3), 1.0, 1.0, 0, 0, 0])
    np.testing.assert_array_equal(compiled[1, RESPONSE_OFFSET:], [0, 0, 0, 0, 0, 0])
    assert np.isnan(compiled[2:, RESPONSE_OFFSET:]).all()


def test_payload_rows_leave_short_bodies_without_shape():
    compiled, _ = _rows_both_ways([b"abc", b"x" * 16], [b"{}", b"y" * 15], [200, 200], min_shape_bytes=16)
    assert compiled[0, FEATURE_LENGTH] == 2.0
    assert np.isnan(compiled[0, FEATURE_ENTROPY:N_BODY_FEATURES]).all()
    np.testing.assert_array_equal(compiled[1, :N_BODY_FEATURES], [math.log2(17), 0.0, 1.0, 0, 0, 0])
    assert compiled[1, RESPONSE_OFFSET + FEATURE_LENGTH] == 4.0
    assert np.isnan(compiled[1, RESPONSE_OFFSET + FEATURE_ENTROPY :]).all()


def _random_windows(seed: int, slots: int, window: int, features: int, fill_fraction: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    windows = rng.normal(100.0, 15.0, size=(slots, window, features)).astype(np.float32)
    windows[rng.random(windows.shape) < fill_fraction] = np.nan
    return windows


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 64), st.integers(1, 40), st.floats(0.0, 0.5))
def test_window_stats_compiled_equals_python(seed, fill, min_samples, nan_fraction):
    windows = _random_windows(seed, 3, 64, 5, nan_fraction)
    floors = np.full(5, 0.5)
    outputs = []
    for kernel in (window_stats, python_body(window_stats)):
        medians = np.full((3, 5), -1.0)
        scales = np.full((3, 5), -1.0)
        kernel(windows, 1, min_samples, floors, fill, medians, scales)
        outputs.append((medians, scales))
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
    np.testing.assert_array_equal(outputs[0][1], outputs[1][1])


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 64), st.integers(1, 3), st.floats(0.0, 0.5))
def test_window_stats_equal_numpys_median_and_mad_with_few_distinct_values(seed, fill, distinct, nan_fraction):
    """Few distinct values, often only one (a constant feature takes the kernel's short path): the same median
    and scale as numpy's median and MAD."""
    rng = np.random.default_rng(seed)
    windows = rng.choice(np.array([3.0, 4.5, 1000.0])[:distinct], size=(1, 64, 4)).astype(np.float32)
    windows[rng.random(windows.shape) < nan_fraction] = np.nan
    floors = np.array([0.0, 0.5, 2.0, 0.01])
    medians = np.full((1, 4), -1.0)
    scales = np.full((1, 4), -1.0)
    window_stats(windows, 0, 1, floors, fill, medians, scales)
    for feature in range(4):
        samples = windows[0, :fill, feature].astype(np.float64)
        samples = samples[~np.isnan(samples)]
        if samples.size == 0:
            assert np.isnan(medians[0, feature]) and np.isnan(scales[0, feature])
            continue
        median = np.median(samples)
        assert medians[0, feature] == median
        assert scales[0, feature] == max(MAD_TO_SIGMA * np.median(np.abs(samples - median)), floors[feature])


def test_window_stats_median_mad_floor_and_nan_samples():
    windows = np.full((1, 8, 2), np.nan, dtype=np.float32)
    windows[0, :6, 0] = [1, 2, 3, 4, 100, np.nan]
    windows[0, :6, 1] = 7.0
    medians = np.empty((1, 2))
    scales = np.empty((1, 2))
    window_stats(windows, 0, 3, np.array([0.1, 0.25]), 6, medians, scales)
    assert medians[0, 0] == 3.0
    assert scales[0, 0] == MAD_TO_SIGMA * 1.0
    assert medians[0, 1] == 7.0
    assert scales[0, 1] == 0.25
    window_stats(windows, 0, 6, np.array([0.1, 0.25]), 6, medians, scales)
    assert math.isnan(medians[0, 0]) and math.isnan(scales[0, 0])
    assert medians[0, 1] == 7.0


def _run_score_and_learn(kernel, windows, slots, values, min_samples=5, divisor=4):
    n_slots, _, n_features = windows.shape
    state = {
        "windows": windows.copy(),
        "fills": np.zeros(n_slots, dtype=np.int64),
        "cursors": np.zeros(n_slots, dtype=np.int64),
        "medians": np.full((n_slots, n_features), np.nan),
        "scales": np.full((n_slots, n_features), np.nan),
        "pending": np.zeros(n_slots, dtype=np.int64),
        "changed": np.zeros(n_slots, dtype=np.bool_),
    }
    z_scores = np.full(values.shape, -1.0)
    medians = np.full(values.shape, -1.0)
    largest = np.full(len(values), -1.0)
    kernel(
        state["windows"], state["fills"], state["cursors"], state["medians"], state["scales"], state["pending"],
        state["changed"], slots, values, min_samples, np.full(n_features, 0.01), divisor, z_scores, medians, largest,
    )  # fmt: skip
    np.testing.assert_array_equal(largest, np.nanmax(np.abs(z_scores), axis=1, initial=0.0))
    return state, z_scores, medians


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.integers(1, 4), st.integers(1, 20), st.integers(1, 16))
def test_score_and_learn_compiled_equals_python(seed, rows, n_slots, min_samples, divisor):
    rng = np.random.default_rng(seed)
    windows = np.full((n_slots, 32, 3), np.nan, dtype=np.float32)
    slots = rng.integers(0, n_slots, rows).astype(np.int64)
    values = rng.normal(50.0, 5.0, size=(rows, 3))
    values[rng.random(values.shape) < 0.1] = np.nan
    compiled = _run_score_and_learn(score_and_learn, windows, slots, values, min_samples, divisor)
    reference = _run_score_and_learn(python_body(score_and_learn), windows, slots, values, min_samples, divisor)
    for name in compiled[0]:
        np.testing.assert_array_equal(compiled[0][name], reference[0][name], err_msg=name)
    np.testing.assert_array_equal(compiled[1], reference[1])
    np.testing.assert_array_equal(compiled[2], reference[2])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 400), st.integers(1, 3), st.integers(1, 16))
def test_a_window_whose_samples_did_not_change_keeps_its_stats(seed, rows, n_slots, divisor):
    """Skipping the stats of a full window whose new rows equal the rows they pushed out gives what computing
    them at every refresh gives: the same rows, one at a time, each time with `changed` set."""
    rng = np.random.default_rng(seed)
    pool = np.array([[1.0, 2.0], [1.0, np.nan], [3.5, 2.0], [1.0, 2.0000001]])
    values = pool[rng.choice(len(pool), size=rows, p=[0.85, 0.05, 0.05, 0.05])]
    slots = rng.integers(0, n_slots, rows).astype(np.int64)
    windows = np.full((n_slots, 8, 2), np.nan, dtype=np.float32)
    at_once = _run_score_and_learn(score_and_learn, windows, slots, values, 3, divisor)
    state = {name: np.array(array, copy=True) for name, array in _run_score_and_learn(
        score_and_learn, windows, slots[:0], values[:0], 3, divisor)[0].items()}  # fmt: skip
    z_scores, medians = np.empty_like(values), np.empty_like(values)
    for row in range(rows):
        state["changed"][:] = True
        largest = np.empty(1)
        score_and_learn(
            state["windows"], state["fills"], state["cursors"], state["medians"], state["scales"], state["pending"],
            state["changed"], slots[row : row + 1], values[row : row + 1], 3, np.full(2, 0.01), divisor,
            z_scores[row : row + 1], medians[row : row + 1], largest,
        )  # fmt: skip
    np.testing.assert_array_equal(at_once[1], z_scores)
    np.testing.assert_array_equal(at_once[2], medians)
    for name in ("windows", "fills", "cursors", "medians", "scales", "pending"):
        np.testing.assert_array_equal(at_once[0][name], state[name], err_msg=name)


def test_score_and_learn_compiled_equals_python_on_real_feature_rows():
    sizes = np.log2(1.0 + np.array([88, 91, 90, 95, 87, 89, 92, 90, 94, 88] * 6 + [200104, 8192, 90], dtype=float))
    values = np.column_stack((sizes, np.full(len(sizes), 4.45), np.full(len(sizes), 0.62)))
    slots = np.zeros(len(values), dtype=np.int64)
    windows = np.full((1, 256, 3), np.nan, dtype=np.float32)
    compiled = _run_score_and_learn(score_and_learn, windows, slots, values, 30, 16)
    reference = _run_score_and_learn(python_body(score_and_learn), windows, slots, values, 30, 16)
    np.testing.assert_array_equal(compiled[1], reference[1])
    z_scores = compiled[1]
    assert np.isnan(z_scores[:30]).all()
    assert np.isfinite(z_scores[30:]).all()
    assert z_scores[60, 0] > 50 and z_scores[61, 0] > 20 and abs(z_scores[62, 0]) < 1


def test_score_and_learn_ring_buffer_keeps_the_last_window_samples():
    values = np.arange(10, dtype=float).reshape(10, 1)
    state, _, _ = _run_score_and_learn(score_and_learn, np.full((1, 4, 1), np.nan, dtype=np.float32),
                                       np.zeros(10, dtype=np.int64), values)  # fmt: skip
    assert state["fills"][0] == 4
    assert state["cursors"][0] == 10 % 4
    assert sorted(state["windows"][0, :, 0].tolist()) == [6.0, 7.0, 8.0, 9.0]


def _luhn_both_ways(numbers: list[str]) -> tuple[np.ndarray, np.ndarray]:
    digits = np.frombuffer("".join(numbers).encode(), dtype=np.uint8) - ord("0")
    lengths = np.array([len(number) for number in numbers], dtype=np.int64)
    offsets = np.zeros(len(numbers), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    compiled = np.zeros(len(numbers), dtype=np.bool_)
    reference = np.zeros(len(numbers), dtype=np.bool_)
    luhn_valid(digits, offsets, lengths, compiled)
    python_body(luhn_valid)(digits, offsets, lengths, reference)
    return compiled, reference


def _luhn_reference(number: str) -> bool:
    total = 0
    for index, character in enumerate(reversed(number)):
        digit = int(character) * (2 if index % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return bool(number) and total % 10 == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text("0123456789", max_size=20), min_size=1, max_size=20))
def test_luhn_compiled_equals_python_and_reference(numbers):
    compiled, reference = _luhn_both_ways(numbers)
    np.testing.assert_array_equal(compiled, reference)
    assert compiled.tolist() == [_luhn_reference(number) for number in numbers]


def test_luhn_known_card_numbers():
    valid = ["4111111111111111", "5500005555555559", "378282246310005", "6011111111111117", "4012888888881881"]
    invalid = ["4111111111111112", "1234567812345678", "378282246310006", ""]
    compiled, reference = _luhn_both_ways(valid + invalid)
    assert compiled.tolist() == [True] * len(valid) + [False] * len(invalid)
    np.testing.assert_array_equal(compiled, reference)
