"""Writes captured frames to pcap files, rotating them by size and keeping a bounded number of old ones.

Files are nanosecond pcap (magic 0xa1b23c4d) with the link type of the frames; a batch of frames of another
link type starts a new file. Rotation: when the current file passes `rotate_mb`, it becomes PATH.1, PATH.1
becomes PATH.2 and so on; files past `keep` are deleted. SIGHUP reopens (for logrotate).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from sniffer.batch import PacketBatch

PCAP_NSEC_HEADER = struct.Struct("<IHHiIII")
RECORD_HEADER = struct.Struct("<IIII")
PCAP_MAGIC_NSEC = 0xA1B23C4D


@dataclass(frozen=True, slots=True)
class PcapTarget:
    """Where `live --write-pcap` writes. With several processes (`--workers N`), each writes the frames it
    captured to its own files, PATH.workerK (K = 0 for the parent), rotated as PATH.workerK.1 and so on:
    together they hold the capture, as Suricata's multi-threaded pcap-log does."""

    path: str
    rotate_mb: float = 100.0
    keep: int = 10
    snaplen: int = 262_144

    def writer(self, worker: int | None = None) -> RotatingPcapWriter:
        """The writer of one process; `worker` None when there is only one."""
        path = self.path if worker is None else f"{self.path}.worker{worker}"
        return RotatingPcapWriter(path, self.rotate_mb, self.keep, self.snaplen)


class RotatingPcapWriter:
    def __init__(self, path: str, rotate_mb: float = 100.0, keep: int = 10, snaplen: int = 262_144) -> None:
        self.path = path
        self.rotate_bytes = int(rotate_mb * 1_000_000) if rotate_mb > 0 else 0
        self.keep = keep
        self.snaplen = snaplen
        self.link_type: int | None = None
        self.size = 0
        self.frames = 0
        self._handle: BinaryIO | None = None

    def write(self, batch: PacketBatch) -> None:
        frames = batch.frames
        for start, captured, wire, ts, link in zip(
            batch.frame_offsets.tolist(), batch.captured_lengths.tolist(), batch.wire_lengths.tolist(),
            batch.ts_ns.tolist(), batch.link_types.tolist(), strict=True,
        ):
            if self._handle is None or link != self.link_type:
                self._open(link)
            elif self.rotate_bytes and self.size >= self.rotate_bytes:
                self._rotate()
            record = RECORD_HEADER.pack(ts // 1_000_000_000, ts % 1_000_000_000, captured, wire)
            self._handle.write(record)
            self._handle.write(np.asarray(frames[start : start + captured]).tobytes())
            self.size += len(record) + captured
            self.frames += 1
        if self._handle is not None:
            self._handle.flush()

    def _open(self, link_type: int) -> None:
        if self._handle is not None:
            self._rotate_files()
        self.link_type = link_type
        self._handle = open(self.path, "wb")  # noqa: SIM115
        self._handle.write(PCAP_NSEC_HEADER.pack(PCAP_MAGIC_NSEC, 2, 4, 0, 0, self.snaplen, link_type))
        self.size = PCAP_NSEC_HEADER.size

    def _rotate(self) -> None:
        self._rotate_files()
        self._open(self.link_type)

    def _rotate_files(self) -> None:
        """Closes the current file and shifts PATH -> PATH.1 -> ... -> PATH.keep; the oldest is deleted."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self.keep <= 0:
            os.remove(self.path)
            return
        oldest = f"{self.path}.{self.keep}"
        if os.path.exists(oldest):
            os.remove(oldest)
        for number in range(self.keep - 1, 0, -1):
            if os.path.exists(f"{self.path}.{number}"):
                os.replace(f"{self.path}.{number}", f"{self.path}.{number + 1}")
        os.replace(self.path, f"{self.path}.1")

    def reopen(self) -> None:
        """After logrotate moved the file away: continue in a new file at PATH."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
