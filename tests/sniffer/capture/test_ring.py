"""The TPACKET_V3 block walker against blocks laid out as the kernel lays them out (linux/if_packet.h)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from support.kernels import python_body

from sniffer.capture.ring import PACKET_OUTGOING, TP_STATUS_USER, copy_block

PACKET_HOST = 0
BLOCK_HEADER = 48
FRAME_HEADER = 48
SOCKADDR_LL = 20
MAC_OFFSET = 80  # where the kernel puts the link-layer header: after both, 16-byte aligned, plus its reserve


def frame_record(payload: bytes, seconds: int, nanoseconds: int, packet_type: int, wire: int | None = None) -> bytes:
    """One tpacket3_hdr + sockaddr_ll + frame, padded to 16 bytes; tp_next_offset is patched in by `block`."""
    header = struct.pack("IIIIIIHH", 0, seconds, nanoseconds, len(payload), wire or len(payload), 1, MAC_OFFSET,
                         MAC_OFFSET + 14) + bytes(FRAME_HEADER - 28)  # fmt: skip
    address = struct.pack("HHiHBB8s", 17, 0x0008, 2, 1, packet_type, 6, b"")
    record = header + address + bytes(MAC_OFFSET - FRAME_HEADER - SOCKADDR_LL) + payload
    return record + bytes(-len(record) % 16)


def block(records: list[bytes], lead: int = 0) -> tuple[np.ndarray, int]:
    """A ring holding one block at byte `lead` with these frames; (ring, block offset)."""
    body = b""
    for index, record in enumerate(records):
        next_offset = len(record) if index < len(records) - 1 else 0
        body += struct.pack("I", next_offset) + record[4:]
    header = struct.pack("IIIIIIQ", 3, 0, TP_STATUS_USER, len(records), BLOCK_HEADER, BLOCK_HEADER + len(body), 7)
    header += bytes(BLOCK_HEADER - len(header))
    return np.frombuffer(bytes(lead) + header + body, np.uint8).copy(), lead


def walk(ring: np.ndarray, offset: int, skip_outgoing: bool, snaplen: int, python: bool = False):
    rows = 8
    frames = np.zeros(4096, np.uint8)
    columns = (np.zeros(rows, np.int64), np.zeros(rows, np.int32), np.zeros(rows, np.int32), np.zeros(rows, np.int64),
               np.zeros(rows, np.int32))  # fmt: skip
    kernel = python_body(copy_block) if python else copy_block
    count, position = kernel(ring, offset, skip_outgoing, snaplen, 1, frames, 0, 0, *columns)
    offsets, captured, wire, ts_ns, links = (column[:count] for column in columns)
    return count, frames[:position].tobytes(), offsets, captured, wire, ts_ns, links


@pytest.mark.parametrize("python", [False, True], ids=["compiled", "reference"])
def test_frames_rows_and_times_come_out_in_order(python: bool) -> None:
    payloads = [b"A" * 60, b"B" * 1500, b"C" * 61]
    ring, offset = block([frame_record(payload, 1_700_000_000 + n, 123_456_789 * n, PACKET_HOST)
                          for n, payload in enumerate(payloads)], lead=4096)  # fmt: skip
    count, frames, offsets, captured, wire, ts_ns, links = walk(ring, offset, True, 262_144, python)
    assert count == 3
    assert frames == b"".join(payloads)
    assert offsets.tolist() == [0, 60, 1560]
    assert captured.tolist() == wire.tolist() == [60, 1500, 61]
    assert ts_ns.tolist() == [1_700_000_000 * 10**9 + 123_456_789 * n + n * 10**9 for n in range(3)]
    assert links.tolist() == [1, 1, 1]


@pytest.mark.parametrize("python", [False, True], ids=["compiled", "reference"])
def test_outgoing_frames_are_skipped_on_loopback_only(python: bool) -> None:
    records = [frame_record(b"out", 1, 0, PACKET_OUTGOING), frame_record(b"in", 1, 1, PACKET_HOST)]
    ring, offset = block(records)
    assert walk(ring, offset, True, 100, python)[1] == b"in"
    assert walk(ring, offset, False, 100, python)[1] == b"outin"


@pytest.mark.parametrize("python", [False, True], ids=["compiled", "reference"])
def test_snaplen_cuts_frames_and_wire_length_is_kept(python: bool) -> None:
    ring, offset = block([frame_record(b"x" * 300, 1, 0, PACKET_HOST, wire=9000)])
    count, frames, _, captured, wire, _, _ = walk(ring, offset, True, 128, python)
    assert (count, len(frames), captured.tolist(), wire.tolist()) == (1, 128, [128], [9000])


def test_an_empty_block_gives_nothing() -> None:
    ring, offset = block([])
    assert walk(ring, offset, True, 100)[0] == 0


def test_a_real_ring_on_loopback_hands_over_what_was_sent() -> None:
    """The kernel's own layout: UDP datagrams sent on loopback come out of the ring once each, in order."""
    import socket
    import time

    from sniffer.capture.ring import ReceiveRing

    try:
        capture = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    except PermissionError:
        pytest.skip("an AF_PACKET socket needs CAP_NET_RAW")
    with capture, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))  # a listener, so that no ICMP error quotes the datagrams again
        capture.bind(("lo", 0))
        ring = ReceiveRing(capture, 4 << 20, block_bytes=1 << 16, retire_ms=5)
        started = time.time_ns()
        markers = [f"apispy-ring-test-{n}-{started}".encode() for n in range(5)]
        for marker in markers:
            sender.sendto(marker, receiver.getsockname())
        frames, ts_ns, found, deadline = [], [], 0, time.monotonic() + 5
        while found < len(markers) and time.monotonic() < deadline:
            ready = ring.ready()
            if ready is None:
                time.sleep(0.01)
                continue
            offset, count, _ = ready
            buffer, rows = np.zeros(1 << 16, np.uint8), np.zeros(count, np.int64)
            small = [np.zeros(count, np.int32) for _ in range(3)]
            kept, position = copy_block(ring.ring, offset, True, 65536, 1, buffer, 0, 0, rows, small[0], small[1],
                                        ts := np.zeros(count, np.int64), small[2])  # fmt: skip
            ring.release()
            frames.append(buffer[:position].tobytes())
            ts_ns.extend(ts[:kept].tolist())
            found = sum(marker in b"".join(frames) for marker in markers)
        ring.close()
    data = b"".join(frames)
    assert [data.count(marker) for marker in markers] == [1] * 5  # the outgoing copies were skipped
    assert all(started - 10**9 <= value <= time.time_ns() for value in ts_ns)
