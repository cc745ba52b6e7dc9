"""Readers for pcap and pcapng files that hand out columnar PacketBatches of large blocks.

A regular file is mapped into memory and taken in windows of `block_bytes`, a pipe read in blocks of that size; a
numba kernel indexes every complete record of a block, and the next block starts with the incomplete tail. A file
that is not a capture fails at open with a CaptureError whose message names the file and the reason; a capture cut
in the middle of a record is read up to the break and leaves a warning, so nothing already captured is lost.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
import sys
from collections.abc import Generator, Iterator
from typing import BinaryIO

import numpy as np

from sniffer.batch import PacketBatch
from sniffer.capture import kernels
from sniffer.capture.formats import (
    PCAP_GLOBAL_HEADER_LEN,
    PCAP_MAGIC_NSEC,
    PCAP_MAGIC_USEC,
    PCAPNG_BYTE_ORDER_MAGIC,
    PCAPNG_IDB,
    PCAPNG_OPT_END,
    PCAPNG_OPT_IF_TSRESOL,
    PCAPNG_SHB,
)

DEFAULT_BLOCK_BYTES = 8 << 20
MAX_RECORDS_PER_BATCH = 1 << 17


class CaptureError(Exception):
    """A file that cannot be read as a capture; the message is one line naming the file and the reason."""


class CaptureReader:
    """The block loop shared by both formats; subclasses index one block at a time.

    `_index_block` yields the batches of a block and returns how many of its bytes it consumed, or -1 when the
    file is corrupt from there on (a warning says where). The unconsumed tail starts the next block.
    """

    data_start = 0

    def __init__(self, path: str, handle: BinaryIO, first_bytes: bytes, block_bytes: int = DEFAULT_BLOCK_BYTES) -> None:
        self.path = path
        self.handle = handle
        self.first_bytes = first_bytes  # read from `handle` to identify the format
        self.block_bytes = block_bytes
        self.size = os.fstat(handle.fileno()).st_size if handle.seekable() else 0
        self.bytes_consumed = 0
        self.warnings: list[str] = []

    def batches(self) -> Iterator[PacketBatch]:
        """Blocks as they come: windows of a regular file mapped into memory, else whatever each read gives."""
        with self.handle as handle:
            self.bytes_consumed = self.data_start
            mapped = _mapped(handle)
            if mapped is None:
                yield from self._read_blocks(handle, self.first_bytes[self.data_start :])
                return
            tail_start = yield from self._mapped_blocks(mapped)
            if tail_start is None:  # corrupt from there on: warned
                return
            if os.fstat(handle.fileno()).st_size > len(mapped):
                # The file grew while it was read (a capture still being written): the rest is read as it comes.
                handle.seek(len(mapped))
                yield from self._read_blocks(handle, mapped[tail_start:].tobytes())
            else:
                self._warn_if_cut(len(mapped) - tail_start)

    def _mapped_blocks(self, mapped: np.ndarray) -> Generator[PacketBatch, None, int | None]:
        """The file's bytes where they are in the page cache, `block_bytes` at a time: each read copied a block
        into a new bytes object (and its tail into the next), and that copy and the faults of the fresh pages cost
        some 100 ms of the bench capture's 118 MB, where the mapping costs about 20. A record longer than the
        window widens it until the record fits, as the tail carried over does when reading. Returns where the
        unread tail starts, or None when the file is corrupt from there on."""
        start, end, window = self.data_start, len(mapped), self.block_bytes
        while True:
            stop = min(start + window, end)
            consumed = yield from self._index_block(mapped[start:stop])
            if consumed < 0:
                return None
            start += consumed
            if stop == end:
                return start
            window = window + self.block_bytes if consumed == 0 else self.block_bytes

    def _read_blocks(self, handle: BinaryIO, pending: bytes) -> Iterator[PacketBatch]:
        """Whatever each read gives (a pipe, standard input), the incomplete tail carried into the next block."""
        while True:
            chunk = handle.read1(self.block_bytes)
            at_eof = not chunk
            data = pending + chunk if pending else chunk
            consumed = yield from self._index_block(np.frombuffer(data, dtype=np.uint8))
            if consumed < 0:
                return
            if at_eof:
                self._warn_if_cut(len(data) - consumed)
                return
            pending = data[consumed:]

    def _warn_if_cut(self, trailing: int) -> None:
        if trailing:
            self.warnings.append(
                f"{self.path}: capture truncated mid-packet at byte {self.bytes_consumed} ({trailing} trailing bytes"
                " ignored)"
            )

    def _index_block(self, block: np.ndarray) -> Generator[PacketBatch, None, int]:
        raise NotImplementedError

    def _corrupt(self, what: str) -> int:
        self.warnings.append(f"{self.path}: corrupt {what} at byte {self.bytes_consumed}; stopped reading there")
        return -1


def _mapped(handle: BinaryIO) -> np.ndarray | None:
    """A regular file's whole content as a read-only byte array over a private mapping; None for a pipe, a
    terminal, an empty file, or where mapping fails (the reader then reads). The mapping lives as long as the last
    array or batch that views it, and is unmapped with it. It covers the file as it was at open; what is written to
    it later is read after (see `batches`). A file cut shorter while it is mapped would end the run with SIGBUS:
    replay a copy of a capture that something may truncate."""
    try:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # ValueError: an empty file, which has nothing to map
        return None
    return np.frombuffer(mapping, dtype=np.uint8)


def _new_columns(capacity: int) -> tuple[np.ndarray, ...]:
    return (
        np.empty(capacity, np.int64),
        np.empty(capacity, np.int32),
        np.empty(capacity, np.int32),
        np.empty(capacity, np.int64),
    )


class PcapReader(CaptureReader):
    """Classic libpcap files: either byte order, micro- or nanosecond timestamps, one link type per file."""

    def __init__(self, path: str, handle: BinaryIO, header: bytes, block_bytes: int = DEFAULT_BLOCK_BYTES) -> None:
        super().__init__(path, handle, header, block_bytes)
        self.data_start = PCAP_GLOBAL_HEADER_LEN
        magic_le = struct.unpack("<I", header[:4])[0]
        self.big_endian = magic_le not in (PCAP_MAGIC_USEC, PCAP_MAGIC_NSEC)
        order = ">" if self.big_endian else "<"
        magic = struct.unpack(order + "I", header[:4])[0]
        self.ns_per_tick = 1 if magic == PCAP_MAGIC_NSEC else 1000
        # The upper bits of the link-type field carry FCS information (pcap-savefile(5)); the type is the low 16.
        self.link_type = struct.unpack(order + "I", header[20:24])[0] & 0xFFFF

    def _index_block(self, block: np.ndarray) -> Generator[PacketBatch, None, int]:
        position = 0
        while True:
            offsets, captured, wire, ts = _new_columns(MAX_RECORDS_PER_BATCH)
            count, position_after, status = kernels.index_pcap_records(
                block, position, len(block), self.big_endian, self.ns_per_tick, offsets, captured, wire, ts
            )
            self.bytes_consumed += position_after - position
            position = position_after
            if count:
                link_types = np.full(count, self.link_type, np.int32)
                yield PacketBatch(block, offsets[:count], captured[:count], wire[:count], ts[:count], link_types)
            if status == kernels.STATUS_CORRUPT:
                return self._corrupt("record length")
            if status != kernels.STATUS_FULL:
                return position


class PcapngReader(CaptureReader):
    """pcapng files: several sections and interfaces, each with its own link type and timestamp resolution."""

    def __init__(self, path: str, handle: BinaryIO, header: bytes, block_bytes: int = DEFAULT_BLOCK_BYTES) -> None:
        super().__init__(path, handle, header, block_bytes)
        self.big_endian = False
        self._interfaces: list[tuple[int, int, int]] = []  # (link type, ticks per second, snap length)
        self._interface_arrays = self._arrays()

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self._interfaces or [(0, 1_000_000, 0)]
        return (
            np.array([r[0] for r in rows], np.int32)[: len(self._interfaces)],
            np.array([r[1] for r in rows], np.int64)[: len(self._interfaces)],
            np.array([r[2] for r in rows], np.int64)[: len(self._interfaces)],
        )

    def _read_other_block(self, block: np.ndarray, position: int) -> int:
        """Handles a non-packet block at `position`; returns its length, or 0 when it is not whole in `block`."""
        raw = block[position : position + 12].tobytes()
        block_type = struct.unpack(("<", ">")[self.big_endian] + "I", raw[:4])[0]
        if block_type == PCAPNG_SHB:
            magic = raw[8:12]
            if magic == struct.pack("<I", PCAPNG_BYTE_ORDER_MAGIC):
                self.big_endian = False
            elif magic == struct.pack(">I", PCAPNG_BYTE_ORDER_MAGIC):
                self.big_endian = True
            else:
                raise CaptureError(f"{self.path}: not a capture (pcapng section header with a bad byte-order magic)")
            self._interfaces = []
        order = ("<", ">")[self.big_endian]
        block_len = struct.unpack(order + "I", raw[4:8])[0]
        if block_len < 12 or position + block_len > len(block):
            return 0
        if block_type == PCAPNG_IDB:
            body = block[position + 8 : position + block_len - 4].tobytes()
            link_type, _, snaplen = struct.unpack(order + "HHI", body[:8])
            self._interfaces.append((link_type, self._ticks_per_second(body[8:], order), snaplen))
        self._interface_arrays = self._arrays()
        return block_len

    @staticmethod
    def _ticks_per_second(options: bytes, order: str) -> int:
        """if_tsresol: high bit set means a power of two, else a power of ten; absent means microseconds."""
        pos = 0
        while pos + 4 <= len(options):
            code, length = struct.unpack(order + "HH", options[pos : pos + 4])
            if code == PCAPNG_OPT_END:
                break
            if code == PCAPNG_OPT_IF_TSRESOL and length >= 1:
                value = options[pos + 4]
                return 2 ** (value & 0x7F) if value & 0x80 else 10 ** (value & 0x7F)
            pos += 4 + ((length + 3) & ~3)
        return 1_000_000

    def _index_block(self, block: np.ndarray) -> Generator[PacketBatch, None, int]:
        position = 0
        while True:
            offsets, captured, wire, ts = _new_columns(MAX_RECORDS_PER_BATCH)
            link_types = np.empty(MAX_RECORDS_PER_BATCH, np.int32)
            count, position_after, status = kernels.index_pcapng_packets(
                block,
                position,
                len(block),
                self.big_endian,
                *self._interface_arrays,
                offsets,
                captured,
                wire,
                ts,
                link_types,
            )
            self.bytes_consumed += position_after - position
            position = position_after
            if count:
                yield PacketBatch(
                    block, offsets[:count], captured[:count], wire[:count], ts[:count], link_types[:count]
                )
            if status == kernels.STATUS_OTHER_BLOCK:
                block_len = self._read_other_block(block, position)
                if block_len == 0:
                    return position
                position += block_len
                self.bytes_consumed += block_len
            elif status == kernels.STATUS_CORRUPT:
                return self._corrupt("pcapng block")
            elif status != kernels.STATUS_FULL:
                return position


def open_capture(path: str, block_bytes: int = DEFAULT_BLOCK_BYTES) -> CaptureReader:
    """Identifies the format by its magic number; raises CaptureError with a one-line reason otherwise.

    `-` reads standard input, so `tcpdump -w - | apispy replay -` works; the file stays open in the reader.
    """
    try:
        handle = os.fdopen(os.dup(sys.stdin.fileno()), "rb") if path == "-" else open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise CaptureError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CaptureError(f"{path}: is a directory, not a capture file") from None
    except OSError as error:
        raise CaptureError(f"{path}: cannot read ({error.strerror})") from None
    try:
        header = _read_header(handle)
        return _reader_for(path, handle, header, block_bytes)
    except (CaptureError, OSError) as error:
        handle.close()
        if isinstance(error, CaptureError):
            raise
        raise CaptureError(f"{path}: cannot read ({error.strerror})") from None


def _read_header(handle: BinaryIO) -> bytes:
    header = b""
    while len(header) < PCAP_GLOBAL_HEADER_LEN:
        chunk = handle.read(PCAP_GLOBAL_HEADER_LEN - len(header))
        if not chunk:
            break
        header += chunk
    return header


def _reader_for(path: str, handle: BinaryIO, header: bytes, block_bytes: int) -> CaptureReader:
    if len(header) < 4:
        raise CaptureError(f"{path}: not a capture (file is {len(header)} bytes, too short for a header)")
    magic_le, magic_be = struct.unpack("<I", header[:4])[0], struct.unpack(">I", header[:4])[0]
    if PCAP_MAGIC_USEC in (magic_le, magic_be) or PCAP_MAGIC_NSEC in (magic_le, magic_be):
        if len(header) < PCAP_GLOBAL_HEADER_LEN:
            raise CaptureError(f"{path}: truncated pcap header ({len(header)} of {PCAP_GLOBAL_HEADER_LEN} bytes)")
        return PcapReader(path, handle, header, block_bytes)
    if magic_le == PCAPNG_SHB:
        if len(header) < 12:
            raise CaptureError(f"{path}: truncated pcapng section header ({len(header)} bytes)")
        if header[8:12] not in (struct.pack("<I", PCAPNG_BYTE_ORDER_MAGIC), struct.pack(">I", PCAPNG_BYTE_ORDER_MAGIC)):
            raise CaptureError(f"{path}: not a capture (pcapng section header with a bad byte-order magic)")
        return PcapngReader(path, handle, header, block_bytes)
    raise CaptureError(f"{path}: not a pcap or pcapng capture (magic bytes {header[:4].hex()})")
