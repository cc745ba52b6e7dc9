"""numba kernels for the payload detectors: body shape features, robust z-scores against baseline windows, Luhn.

Every kernel works on numpy arrays only and writes into arrays the caller preallocates; none allocates per row.
Each one is also plain Python (`kernel.py_func`), and tests/detectors/test_kernels.py checks that both give
identical results.

Body features (columns FEATURE_*, from the body's first column in its transaction's row, see payload_rows):
log2(1 + the body's size), the byte entropy in bits per byte (0..8), and the fractions of ASCII letters, ASCII
digits, punctuation and whitespace (printable ASCII that is neither, plus tab, CR, LF), and other bytes (control
characters and bytes >= 0x7f). The four fractions sum to 1 for a non-empty body and are 0 for an empty one.
"""

from __future__ import annotations

import math

import numpy as np

from sniffer.aot import kernel

CLASS_LETTER = 0
CLASS_DIGIT = 1
CLASS_PUNCTUATION = 2  # printable ASCII that is neither letter nor digit, space and tab, CR, LF
CLASS_OTHER = 3  # control characters, DEL and every byte >= 0x80
N_CLASSES = 4

FEATURE_LENGTH = 0
FEATURE_ENTROPY = 1
FEATURE_LETTERS = 2  # FEATURE_LETTERS + class id is the column of that class's fraction
N_BODY_FEATURES = FEATURE_LETTERS + N_CLASSES
# A transaction's baseline row: its request body's features, then its response body's (see payload_rows).
RESPONSE_OFFSET = N_BODY_FEATURES
N_ROW_FEATURES = 2 * N_BODY_FEATURES

MAD_TO_SIGMA = 1.4826  # MAD times this estimates the standard deviation of normally distributed values
BYTE_VALUES = 256
DECIMAL_BASE = 10


def _byte_classes() -> np.ndarray:
    classes = np.full(BYTE_VALUES, CLASS_OTHER, dtype=np.int64)
    for value in range(BYTE_VALUES):
        character = chr(value)
        if value < 0x80 and character.isalpha():
            classes[value] = CLASS_LETTER
        elif value < 0x80 and character.isdigit():
            classes[value] = CLASS_DIGIT
        elif 0x20 <= value < 0x7F or character in "\t\r\n":
            classes[value] = CLASS_PUNCTUATION
    return classes


BYTE_CLASSES = _byte_classes()


@kernel(inline=True)
def _take_count(counts: np.ndarray, class_counts: np.ndarray, value: int, length: int) -> float:
    """p * log2(p) of byte `value` in a body of `length` bytes, its count added to its class and then zeroed (so
    a value is taken once, and `counts` is all zero again after the body); 0.0 for a value already taken."""
    count = counts[value]
    if count == 0:
        return 0.0
    probability = count / length
    class_counts[BYTE_CLASSES[value]] += count
    counts[value] = 0
    return probability * math.log2(probability)


@kernel(inline=True)
def _body_shape(
    buffer: np.ndarray, start: int, length: int, counts: np.ndarray, class_counts: np.ndarray, out: np.ndarray,
    row: int, column: int,
) -> None:  # fmt: skip
    """The entropy and class fractions of the body buffer[start:start + length] into out[row, column +
    FEATURE_ENTROPY:column + N_BODY_FEATURES]. `counts` is all zero before and after."""
    class_counts[:] = 0
    for position in range(start, start + length):
        counts[buffer[position]] += 1
    entropy = 0.0
    if length < BYTE_VALUES:
        # A short body (most API bodies): visit its distinct bytes in order of first appearance, instead of all
        # 256 values.
        for position in range(start, start + length):
            entropy -= _take_count(counts, class_counts, buffer[position], length)
    else:
        for value in range(BYTE_VALUES):
            entropy -= _take_count(counts, class_counts, value, length)
    out[row, column + FEATURE_ENTROPY] = entropy
    for class_id in range(N_CLASSES):
        out[row, column + FEATURE_LETTERS + class_id] = class_counts[class_id] / length if length > 0 else 0.0


@kernel(
    "readonly u1[::1]", "i8[::1]", "i8[::1]", "i8[::1]", "f8[::1]", "i8[::1]", "i8", "i8", "i8", "f8[:, ::1]",
)  # fmt: skip
def payload_rows(
    buffer: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    sources: np.ndarray,
    log_sizes: np.ndarray,
    statuses: np.ndarray,
    min_shape_bytes: int,
    ok_low: int,
    ok_high: int,
    out: np.ndarray,
) -> None:
    """The baseline rows of a batch of transactions into out (count x N_ROW_FEATURES): row i holds its request
    body's features from column 0, its response body's from RESPONSE_OFFSET.

    Bodies are numbered j: the count request bodies, then the count response bodies. Body j's bytes are
    buffer[offsets[j]:offsets[j] + lengths[j]] (uint8). sources[j] is an earlier body with the very same bytes, or
    j (detectors.batchbodies): a repeated body takes the entropy and class fractions its bytes gave once. log_sizes[j]
    goes into body j's FEATURE_LENGTH column (the caller takes the logarithm: numpy's log2 and the C library's
    differ in the last bit now and then). Entropy and class fractions are NaN for a body shorter than
    min_shape_bytes, and every response column is NaN where the status is not within ok_low..ok_high (statuses
    int64, one per row).
    """
    count = out.shape[0]
    counts = np.zeros(BYTE_VALUES, dtype=np.int64)  # all zero between bodies
    class_counts = np.zeros(N_CLASSES, dtype=np.int64)
    shapes = np.empty((2 * count, N_BODY_FEATURES), dtype=np.float64)  # by source body, once computed
    shaped = np.zeros(2 * count, dtype=np.bool_)
    for body in range(2 * count):
        length = lengths[body]
        row = body if body < count else body - count
        column = 0 if body < count else RESPONSE_OFFSET
        if body >= count and not ok_low <= statuses[row] <= ok_high:
            for feature in range(N_BODY_FEATURES):
                out[row, column + feature] = np.nan
        else:
            out[row, column + FEATURE_LENGTH] = log_sizes[body]
            if length < min_shape_bytes:
                for feature in range(FEATURE_ENTROPY, N_BODY_FEATURES):
                    out[row, column + feature] = np.nan
            else:
                source = sources[body]
                if not shaped[source]:  # the same bytes as its source: computed here, for both
                    _body_shape(buffer, offsets[body], length, counts, class_counts, shapes, source, 0)
                    shaped[source] = True
                for feature in range(FEATURE_ENTROPY, N_BODY_FEATURES):
                    out[row, column + feature] = shapes[source, feature]


@kernel()
def window_stats(
    windows: np.ndarray,
    slot: int,
    min_samples: int,
    scale_floors: np.ndarray,
    fill: int,
    medians: np.ndarray,
    scales: np.ndarray,
) -> None:
    """Median and scale of every feature over the first `fill` samples of windows[slot], into medians[slot] and
    scales[slot].

    `windows` is (slots, window, features) float32; NaN samples do not count. scale = max(MAD_TO_SIGMA * MAD,
    scale_floors[feature]), so a baseline whose samples are all equal still gives finite z-scores. Both are NaN for
    a feature with fewer than max(1, min_samples) samples.
    """
    samples = np.empty(fill, dtype=np.float64)
    for feature in range(windows.shape[2]):
        n_samples = 0
        low = np.inf
        high = -np.inf
        for index in range(fill):
            sample = np.float64(windows[slot, index, feature])
            if not np.isnan(sample):
                samples[n_samples] = sample
                n_samples += 1
                low = min(low, sample)
                high = max(high, sample)
        if n_samples == 0 or n_samples < min_samples:
            medians[slot, feature] = np.nan
            scales[slot, feature] = np.nan
            continue
        if low == high:
            # Every sample alike (an endpoint that always answers the same size, say): the median is that value
            # and the MAD 0, without selecting.
            medians[slot, feature] = low
            scales[slot, feature] = max(0.0, scale_floors[feature])
            continue
        median = np.median(samples[:n_samples])
        mad = np.median(np.abs(samples[:n_samples] - median))
        medians[slot, feature] = median
        scales[slot, feature] = max(MAD_TO_SIGMA * mad, scale_floors[feature])


@kernel(
    "f4[:, :, ::1]", "i8[::1]", "i8[::1]", "f8[:, ::1]", "f8[:, ::1]", "i8[::1]", "b1[::1]", "i8[::1]", "f8[:, ::1]",
    "i8", "f8[::1]", "i8", "f8[:, ::1]", "f8[:, ::1]", "f8[::1]",
)  # fmt: skip
def score_and_learn(
    windows: np.ndarray,
    fills: np.ndarray,
    cursors: np.ndarray,
    medians: np.ndarray,
    scales: np.ndarray,
    pending: np.ndarray,
    changed: np.ndarray,
    slots: np.ndarray,
    values: np.ndarray,
    min_samples: int,
    scale_floors: np.ndarray,
    refresh_divisor: int,
    z_out: np.ndarray,
    median_out: np.ndarray,
    max_abs_z_out: np.ndarray,
) -> None:
    """Row by row, in order: the robust z-scores of values[row] against the baseline of slots[row], then the row
    joins that baseline's window.

    Per slot: `windows[slot]` is a ring buffer of the last `window` rows (`fills` filled, next write at
    `cursors`); `medians`/`scales` cache window_stats, recomputed before a row is scored once `pending` (rows
    appended since the last computation) reaches max(1, fill // refresh_divisor): at every row while a baseline
    is young, every 16th row of a full 256-row window with refresh_divisor 16. z = (value - median) / scale, NaN
    where the value or the baseline feature is NaN; median_out holds the median each row was compared with, and
    max_abs_z_out the largest |z| of each row (0.0 when every z is NaN), which decides whether it is looked at.

    `changed[slot]` says whether the window's samples changed since they were last computed: a full window whose
    new rows equal the rows they push out (an endpoint sending the same body again and again) holds the very same
    samples, whose medians and scales are those already cached, and is not computed again.
    """
    window = windows.shape[1]
    for row in range(values.shape[0]):
        slot = slots[row]
        fill = fills[slot]
        if pending[slot] > 0 and pending[slot] >= max(1, fill // refresh_divisor):
            if changed[slot]:
                window_stats(windows, slot, min_samples, scale_floors, fill, medians, scales)
                changed[slot] = False
            pending[slot] = 0
        cursor = cursors[slot]
        largest = 0.0
        if fill < window:
            changed[slot] = True  # a sample more
        for feature in range(values.shape[1]):
            value = values[row, feature]
            stored = np.float32(value)
            pushed_out = windows[slot, cursor, feature]
            if stored != pushed_out and not (np.isnan(stored) and np.isnan(pushed_out)):
                changed[slot] = True
            median = medians[slot, feature]
            median_out[row, feature] = median
            if np.isnan(median) or np.isnan(value):
                z_out[row, feature] = np.nan
            else:
                z = (value - median) / scales[slot, feature]
                z_out[row, feature] = z
                largest = max(largest, abs(z))
            windows[slot, cursor, feature] = stored
        max_abs_z_out[row] = largest
        cursors[slot] = (cursor + 1) % window
        if fill < window:
            fills[slot] = fill + 1
        pending[slot] += 1


@kernel("u1[::1]", "i8[::1]", "i8[::1]", "b1[::1]")
def luhn_valid(digits: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, out: np.ndarray) -> None:
    """out[i] = whether the digit values digits[offsets[i]:offsets[i] + lengths[i]] (0..9) pass the Luhn check."""
    for row in range(offsets.shape[0]):
        start = offsets[row]
        length = lengths[row]
        total = 0
        for index in range(length):
            digit = np.int64(digits[start + length - 1 - index])
            if index % 2 == 1:
                digit *= 2
                if digit > DECIMAL_BASE - 1:
                    digit -= DECIMAL_BASE - 1
            total += digit
        out[row] = length > 0 and total % DECIMAL_BASE == 0
