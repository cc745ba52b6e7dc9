"""numba kernels that index the records of a pcap or pcapng block without a Python object per packet.

Each kernel walks a block from a start offset, writes one row per complete record into preallocated arrays and
returns how far it got; the caller keeps the incomplete tail for the next block. A kernel never raises: a
corrupt length comes back as a status code that the reader turns into a one-line error or warning.
"""

from __future__ import annotations

import numpy as np

from sniffer.aot import kernel
from sniffer.capture.formats import (
    MAX_SANE_FRAME,
    PCAP_RECORD_HEADER_LEN,
    PCAPNG_EPB,
    PCAPNG_OPB,
    PCAPNG_SHB,
    PCAPNG_SPB,
)

STATUS_NEED_MORE = 0  # stopped at an incomplete record: read more bytes
STATUS_CORRUPT = 1  # a record length that cannot be right
STATUS_FULL = 2  # output arrays full
STATUS_OTHER_BLOCK = 3  # pcapng: a block the Python side handles (SHB, IDB, statistics, ...)


@kernel(inline=True)
def read_u32(buf: np.ndarray, pos: int, big_endian: bool) -> int:
    if big_endian:
        return (
            (np.int64(buf[pos]) << 24) | (np.int64(buf[pos + 1]) << 16) | (np.int64(buf[pos + 2]) << 8) | buf[pos + 3]
        )
    return (np.int64(buf[pos + 3]) << 24) | (np.int64(buf[pos + 2]) << 16) | (np.int64(buf[pos + 1]) << 8) | buf[pos]


@kernel(inline=True)
def read_u16(buf: np.ndarray, pos: int, big_endian: bool) -> int:
    if big_endian:
        return (np.int64(buf[pos]) << 8) | buf[pos + 1]
    return (np.int64(buf[pos + 1]) << 8) | buf[pos]


@kernel("readonly u1[::1]", "i8", "i8", "b1", "i8", "i8[::1]", "i4[::1]", "i4[::1]", "i8[::1]")
def index_pcap_records(buf, start, end, big_endian, ns_per_tick, frame_offsets, captured_lengths, wire_lengths, ts_ns):
    """Index classic pcap records in buf[start:end]; returns (records, next_offset, status)."""
    n = 0
    pos = start
    capacity = len(frame_offsets)
    while True:
        if n >= capacity:
            return n, pos, STATUS_FULL
        if pos + PCAP_RECORD_HEADER_LEN > end:
            return n, pos, STATUS_NEED_MORE
        seconds = read_u32(buf, pos, big_endian)
        fraction = read_u32(buf, pos + 4, big_endian)
        captured = read_u32(buf, pos + 8, big_endian)
        wire = read_u32(buf, pos + 12, big_endian)
        if captured > MAX_SANE_FRAME:
            return n, pos, STATUS_CORRUPT
        if pos + PCAP_RECORD_HEADER_LEN + captured > end:
            return n, pos, STATUS_NEED_MORE
        frame_offsets[n] = pos + PCAP_RECORD_HEADER_LEN
        captured_lengths[n] = captured
        wire_lengths[n] = wire if wire >= captured else captured
        ts_ns[n] = seconds * 1_000_000_000 + fraction * ns_per_tick
        n += 1
        pos += PCAP_RECORD_HEADER_LEN + captured


@kernel(
    "readonly u1[::1]", "i8", "i8", "b1", "i4[::1]", "i8[::1]", "i8[::1]", "i8[::1]", "i4[::1]", "i4[::1]", "i8[::1]",
    "i4[::1]",
)  # fmt: skip
def index_pcapng_packets(
    buf,
    start,
    end,
    big_endian,
    if_link_types,
    if_ticks_per_s,
    if_snaplens,
    frame_offsets,
    captured_lengths,
    wire_lengths,
    ts_ns,
    link_types,
):
    """Index pcapng packet blocks (EPB, SPB, OPB) in buf[start:end]; returns (records, next_offset, status).

    Stops with STATUS_OTHER_BLOCK at any other block type so Python can read interface descriptions and section
    headers, which change the interface table passed in here.
    """
    n = 0
    pos = start
    capacity = len(frame_offsets)
    n_interfaces = len(if_link_types)
    while True:
        if n >= capacity:
            return n, pos, STATUS_FULL
        if pos + 12 > end:
            return n, pos, STATUS_NEED_MORE
        block_type = read_u32(buf, pos, big_endian)
        if block_type == PCAPNG_SHB:
            # A section header may switch byte order, so its length is read by Python once the order is known.
            return n, pos, STATUS_OTHER_BLOCK
        block_len = read_u32(buf, pos + 4, big_endian)
        if block_len < 12 or block_len % 4 != 0 or block_len > MAX_SANE_FRAME + 64:
            return n, pos, STATUS_CORRUPT
        if pos + block_len > end:
            return n, pos, STATUS_NEED_MORE
        if block_type == PCAPNG_EPB or block_type == PCAPNG_OPB:
            if block_type == PCAPNG_EPB:
                interface = read_u32(buf, pos + 8, big_endian)
            else:
                interface = read_u16(buf, pos + 8, big_endian)
            ts_high = read_u32(buf, pos + 12, big_endian)
            ts_low = read_u32(buf, pos + 16, big_endian)
            captured = read_u32(buf, pos + 20, big_endian)
            wire = read_u32(buf, pos + 24, big_endian)
            if interface >= n_interfaces or 28 + captured > block_len:
                return n, pos, STATUS_CORRUPT
            ticks = (ts_high << 32) | ts_low
            per_s = if_ticks_per_s[interface]
            seconds = ticks // per_s
            remainder = ticks - seconds * per_s
            ts_ns[n] = seconds * 1_000_000_000 + (remainder * 1_000_000_000) // per_s
            frame_offsets[n] = pos + 28
            captured_lengths[n] = captured
            wire_lengths[n] = wire if wire >= captured else captured
            link_types[n] = if_link_types[interface]
            n += 1
        elif block_type == PCAPNG_SPB:
            if n_interfaces == 0:
                return n, pos, STATUS_CORRUPT
            wire = read_u32(buf, pos + 8, big_endian)
            captured = min(wire, block_len - 16)
            if if_snaplens[0] > 0:
                captured = min(captured, if_snaplens[0])
            # A Simple Packet Block has no timestamp: it inherits the previous packet's time.
            ts_ns[n] = ts_ns[n - 1] if n > 0 else 0
            frame_offsets[n] = pos + 12
            captured_lengths[n] = captured
            wire_lengths[n] = wire
            link_types[n] = if_link_types[0]
            n += 1
        else:
            return n, pos, STATUS_OTHER_BLOCK
        pos += block_len
