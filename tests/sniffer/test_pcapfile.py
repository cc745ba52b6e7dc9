"""Capture readers: formats, block boundaries, timestamps, and one-line errors for files that are not captures."""

from __future__ import annotations

import mmap
import os
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from support.samples import PCAPS
from support.tshark_oracle import PUBLIC, expected_rows

from sniffer.capture.pcapfile import CaptureError, PcapngReader, PcapReader, open_capture

PACKETS = {row["file"]: int(row["packets"]) for row in expected_rows()}


def read_all(path: Path, block_bytes: int = 8 << 20):
    reader = open_capture(str(path), block_bytes=block_bytes)
    batches = list(reader.batches())
    return reader, batches


@pytest.mark.parametrize("block_bytes", [1 << 20, 1500, 97])
def test_every_public_capture_has_tsharks_packet_count_whatever_the_block_size(block_bytes: int) -> None:
    for name, expected in PACKETS.items():
        reader, batches = read_all(PUBLIC / name, block_bytes)
        assert sum(len(batch) for batch in batches) == expected, name
        assert reader.warnings == [], name
        assert reader.bytes_consumed == reader.size, name


def test_big_endian_and_nanosecond_pcaps_give_the_same_kind_of_timestamps() -> None:
    big_reader, big = read_all(PCAPS / "edge_bigendian.pcap")
    nano_reader, nano = read_all(PCAPS / "edge_nanosecond.pcap")
    assert isinstance(big_reader, PcapReader) and big_reader.big_endian and big_reader.ns_per_tick == 1000
    assert isinstance(nano_reader, PcapReader) and not nano_reader.big_endian and nano_reader.ns_per_tick == 1
    assert int(nano[0].ts_ns[0]) == 1_700_000_000_123_456_789
    assert int(nano[0].ts_ns[1] - nano[0].ts_ns[0]) == 1_000_123
    assert int(big[0].ts_ns[0]) % 1000 == 0


def test_pcapng_interfaces_keep_their_link_types_and_resolutions() -> None:
    reader, batches = read_all(PCAPS / "edge_pcapng_multi.pcapng")
    assert isinstance(reader, PcapngReader)
    link_types = np.concatenate([batch.link_types for batch in batches])
    assert set(link_types.tolist()) == {1, 101}
    ts = np.concatenate([batch.ts_ns for batch in batches])
    assert (np.diff(ts) >= 0).all()


def test_pcapng_with_several_interfaces_from_the_public_set() -> None:
    reader, batches = read_all(PUBLIC / "zeek-pcapng-multi-interface.pcapng")
    assert sum(len(batch) for batch in batches) == 6
    assert reader.warnings == []


def test_capture_cut_mid_packet_keeps_everything_before_the_break() -> None:
    reader, batches = read_all(PCAPS / "edge_truncated_packet.pcap")
    assert sum(len(batch) for batch in batches) == 9
    assert len(reader.warnings) == 1
    assert reader.warnings[0].endswith("(90 trailing bytes ignored)")


def test_corrupt_record_length_stops_with_a_warning(tmp_path: Path) -> None:
    data = bytearray((PCAPS / "edge_bigendian.pcap").read_bytes())
    # The third record's captured length, big-endian: make it absurd.
    offset = 24
    for _ in range(2):
        offset += 16 + struct.unpack(">I", data[offset + 8 : offset + 12])[0]
    data[offset + 8 : offset + 12] = struct.pack(">I", 0x7FFFFFFF)
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(bytes(data))
    reader, batches = read_all(path)
    assert sum(len(batch) for batch in batches) == 2
    assert reader.warnings == [f"{path}: corrupt record length at byte {offset}; stopped reading there"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "not a capture (file is 0 bytes, too short for a header)"),
        (b"\xd4\xc3\xb2\xa1" + b"\x00" * 6, "truncated pcap header (10 of 24 bytes)"),
        (b"GET / HTTP/1.1\r\n\r\n", "not a pcap or pcapng capture (magic bytes 47455420)"),
        (b"\x0a\x0d\x0d\x0a" + b"\x1c\x00\x00\x00" + b"\x00\x00\x00\x00" + b"\x00" * 16,
         "not a capture (pcapng section header with a bad byte-order magic)"),
    ],
)
def test_files_that_are_not_captures_fail_at_open_with_one_line(tmp_path: Path, content, message: str) -> None:
    path = tmp_path / "input.pcap"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CaptureError) as error:
        open_capture(str(path))
    assert str(error.value) == f"{path}: {message}"


def test_a_directory_is_not_a_capture(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as error:
        open_capture(str(tmp_path))
    assert str(error.value) == f"{tmp_path}: is a directory, not a capture file"


def _packets(batches) -> list[tuple[int, bytes]]:
    """Each packet's time and captured bytes, whatever blocks they came in."""
    return [
        (int(batch.ts_ns[row]), batch.frames[offset : offset + length].tobytes())
        for batch in batches
        for row, (offset, length) in enumerate(
            zip(batch.frame_offsets.tolist(), batch.captured_lengths.tolist(), strict=True)
        )
    ]


@pytest.mark.parametrize("name", ["api_nginx_wrk.pcap", "edge_pcapng_multi.pcapng", "edge_truncated_packet.pcap"])
def test_a_pipe_gives_the_packets_the_mapped_file_gives(tmp_path: Path, name: str) -> None:
    """A regular file is read through a mapping of it; a FIFO (a pipe, standard input) by reads: same packets,
    same warnings."""
    path = PCAPS / name
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(path.read_bytes()))
    writer.start()
    piped_reader, piped = read_all(fifo, block_bytes=4096)
    writer.join()
    mapped_reader, mapped = read_all(path, block_bytes=4096)
    assert _packets(piped) == _packets(mapped)
    assert len(_packets(mapped)) > 0
    assert [w.replace(str(fifo), "x") for w in piped_reader.warnings] == [
        w.replace(str(path), "x") for w in mapped_reader.warnings
    ]


def test_a_file_that_grows_while_it_is_read_is_read_to_its_new_end(tmp_path: Path) -> None:
    """A capture still being written: what was there when the reader mapped it comes first, then what was
    written since, the record cut at the first end completed from the bytes after it."""
    data = (PCAPS / "api_nginx_wrk.pcap").read_bytes()
    cut = len(data) // 2 + 7  # mid-record, most likely; either way the count below must hold
    path = tmp_path / "growing.pcap"
    path.write_bytes(data[:cut])
    reader = open_capture(str(path))
    batches = reader.batches()
    first = [next(batches)]  # the file is mapped at its first half
    with path.open("ab") as handle:
        handle.write(data[cut:])
    growing = _packets(first + list(batches))
    _, whole = read_all(PCAPS / "api_nginx_wrk.pcap")
    assert growing == _packets(whole)
    assert reader.warnings == []
    assert reader.bytes_consumed == len(data)


def test_a_regular_file_is_mapped_not_copied() -> None:
    _, batches = read_all(PCAPS / "api_nginx_wrk.pcap")
    owner = batches[0].frames
    while isinstance(owner, np.ndarray):
        owner = owner.base
    assert isinstance(owner, memoryview) and isinstance(owner.obj, mmap.mmap)
