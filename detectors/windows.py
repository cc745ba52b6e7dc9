"""Sliding-window counters and distinct counters per key, as numba kernels over columns of events.

A key (a client, or a client and endpoint) owns a slot in fixed-size arrays. Its window of `buckets` sub-windows
is a ring: cell `b % buckets` holds the count of absolute sub-window `b`, tagged with `b` so a stale cell is
recognised and reset. The count over the window at an event is the sum of the ring cells whose tag lies within
the last `buckets` sub-windows. Distinct values (ids walked by one client) are counted the same way with a small
bitmap per cell (linear counting), so memory per slot is constant whatever the traffic.

Events must come in time order within a call; an event older than a slot's ring is counted into nothing (its
window is gone), never into the wrong sub-window.
"""

from __future__ import annotations

import numpy as np

from sniffer.aot import kernel

BITMAP_WORDS = 16  # 1024 bits per sub-window for distinct counting
BITMAP_BITS = BITMAP_WORDS * 64


@kernel("i8[::1]", "i8[::1]", "i8[::1]", "i8[:, ::1]", "i8[:, ::1]", "i8[::1]")
def window_counts(slots, sub_windows, increments, counts, tags, totals):
    """Adds each event's increment to its slot's ring and writes the slot's window total after it to `totals`."""
    buckets = counts.shape[1]
    for i in range(len(slots)):
        slot = slots[i]
        sub_window = sub_windows[i]
        cell = sub_window % buckets
        if tags[slot, cell] != sub_window:
            if tags[slot, cell] < sub_window:
                tags[slot, cell] = sub_window
                counts[slot, cell] = 0
        if tags[slot, cell] == sub_window:
            counts[slot, cell] += increments[i]
        total = 0
        oldest = sub_window - buckets
        for k in range(buckets):
            if tags[slot, k] > oldest and tags[slot, k] <= sub_window:
                total += counts[slot, k]
        totals[i] = total


@kernel()
def _popcount64(word):
    count = 0
    while word:
        word &= word - np.uint64(1)
        count += 1
    return count


@kernel()
def _mix64(x):
    """splitmix64's finaliser: linear counting needs bits that behave as random, which crc32's low bits do not."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


@kernel("i8[::1]", "i8[::1]", "u8[::1]", "u8[:, :, ::1]", "i8[:, ::1]", "f8[::1]")
def window_distinct(slots, sub_windows, value_hashes, bitmaps, tags, estimates):
    """Marks each event's value in its slot's ring of bitmaps; writes the estimated distinct values in the window.

    The estimate is linear counting over the union of the window's bitmaps: -m ln(zero bits / m), exact while
    the values are few compared with the m = 1024 bits, within a few percent up to several thousand.
    """
    buckets = bitmaps.shape[1]
    union = np.zeros(BITMAP_WORDS, np.uint64)
    for i in range(len(slots)):
        slot = slots[i]
        sub_window = sub_windows[i]
        cell = sub_window % buckets
        if tags[slot, cell] < sub_window:
            tags[slot, cell] = sub_window
            for w in range(BITMAP_WORDS):
                bitmaps[slot, cell, w] = 0
        if tags[slot, cell] == sub_window:
            bit = _mix64(np.uint64(value_hashes[i])) % np.uint64(BITMAP_BITS)
            bitmaps[slot, cell, bit // np.uint64(64)] |= np.uint64(1) << (bit % np.uint64(64))
        for w in range(BITMAP_WORDS):
            union[w] = 0
        oldest = sub_window - buckets
        for k in range(buckets):
            if tags[slot, k] > oldest and tags[slot, k] <= sub_window:
                for w in range(BITMAP_WORDS):
                    union[w] |= bitmaps[slot, k, w]
        set_bits = 0
        for w in range(BITMAP_WORDS):
            set_bits += _popcount64(union[w])
        zero_bits = BITMAP_BITS - set_bits
        if zero_bits == 0:
            zero_bits = 1
        estimates[i] = -BITMAP_BITS * np.log(zero_bits / BITMAP_BITS)


@kernel("f8[::1]", "f8", "f8")
def robust_threshold(values, k, floor):
    """median + k * MAD * 1.4826 of `values` (the population), but at least `floor`."""
    if len(values) == 0:
        return floor
    ordered = np.sort(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else 0.5 * (ordered[middle - 1] + ordered[middle])
    deviations = np.sort(np.abs(values - median))
    mad = deviations[middle] if len(deviations) % 2 else 0.5 * (deviations[middle - 1] + deviations[middle])
    threshold = median + k * 1.4826 * mad
    return threshold if threshold > floor else floor
