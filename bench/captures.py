"""Shared by the scaling and flow-memory benches: classic pcap files as numpy arrays, and measured apispy runs.

A bench that builds multi-gigabyte captures cannot afford a Python object per packet, so a capture is one uint8
array plus the offsets of its records, and every rewrite is a numpy operation over all packets at once.

Memory is measured two ways, because they answer different questions:
- the peak resident set of the main process: its VmHWM (the kernel-kept high-water mark of its memory since its
  exec), read every `HWM_INTERVAL_S` until it exits. Not `os.wait4`'s ru_maxrss: Linux carries a process's peak
  across fork and exec, so a child forked from this bench (which holds whole captures in memory) reports the
  bench's resident set when that is larger than its own (a replay of 1,000 packets read 409 MB that way).
  ru_maxrss only stands in for a process too short-lived to be sampled at all;
- the peak of the VmRSS sum over the whole process tree, sampled every `SAMPLE_INTERVAL_S`, which sees workers
  together but can miss a peak shorter than the interval.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from replay_vs_tshark import BenchError  # noqa: E402

PCAP_GLOBAL_HEADER_LEN = 24
PCAP_RECORD_HEADER_LEN = 16
PCAP_MAGICS = {0xA1B2C3D4: False, 0xA1B23C4D: True}  # magic -> nanosecond timestamps
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
SNAPLEN = 262144
LINKTYPE_ETHERNET = 1

SAMPLE_INTERVAL_S = 0.05
HWM_INTERVAL_S = 0.01  # the main process's VmHWM is one small read: taken more often, so little can follow it
KIB = 1024
MB = 1_000_000


@dataclass(frozen=True)
class Pcap:
    """A classic pcap file in memory: the global header, the record bytes, and where each record starts.

    `records` holds the records only (no global header), so copies of it can be concatenated behind one header.
    `starts[i]` is the offset of record i's 16-byte header in `records`.
    """

    header: bytes
    records: np.ndarray
    starts: np.ndarray
    byte_order: str
    linktype: int

    @property
    def packets(self) -> int:
        return len(self.starts)

    def field(self, column: int) -> np.ndarray:
        """One uint32 column of the record headers: 0 ts seconds, 1 ts fraction, 2 captured length, 3 length."""
        positions = self.starts[:, None] + np.arange(4 * column, 4 * column + 4)
        return self.records[positions].view(f"{self.byte_order}u4").ravel().astype(np.int64)

    def first(self, count: int) -> Pcap:
        """The first `count` records (all of them when count is 0 or more than there are)."""
        if count <= 0 or count >= self.packets:
            return self
        end = int(self.starts[count])
        return Pcap(self.header, self.records[:end], self.starts[:count], self.byte_order, self.linktype)


def read_pcap(path: Path) -> Pcap:
    """Loads a classic pcap (either byte order, µs or ns); pcapng is refused with the editcap line that converts it."""
    data = np.fromfile(path, dtype=np.uint8)
    head = data[:PCAP_GLOBAL_HEADER_LEN].tobytes()
    if head[:4] == PCAPNG_MAGIC:
        raise BenchError(f"{path} is pcapng; convert it first: editcap -F pcap {path} OUT.pcap")
    byte_order = next((order for order in "<>" if len(head) == 24 and struct.unpack(order + "I", head[:4])[0]
                       in PCAP_MAGICS), None)
    if byte_order is None:
        raise BenchError(f"{path} is not a pcap file")
    linktype = struct.unpack(byte_order + "I", head[20:24])[0] & 0x0FFFFFFF
    records = data[PCAP_GLOBAL_HEADER_LEN:]
    return Pcap(head, records, record_starts(records, byte_order), byte_order, linktype)


def record_starts(records: np.ndarray, byte_order: str) -> np.ndarray:
    """Offsets of every complete record; a cut last record is dropped, as tcpdump leaves one when killed."""
    buffer = records.data
    length_format = struct.Struct(byte_order + "I")
    starts = []
    offset, end = 0, len(records)
    while offset + PCAP_RECORD_HEADER_LEN <= end:
        captured = length_format.unpack_from(buffer, offset + 8)[0]
        if offset + PCAP_RECORD_HEADER_LEN + captured > end:
            break
        starts.append(offset)
        offset += PCAP_RECORD_HEADER_LEN + captured
    return np.asarray(starts, dtype=np.int64)


def pcap_global_header(linktype: int = LINKTYPE_ETHERNET) -> bytes:
    """A little-endian microsecond pcap header, version 2.4."""
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, linktype)


def write_pcap(path: Path, pcap: Pcap) -> Path:
    with path.open("wb") as file:
        file.write(pcap.header)
        pcap.records.tofile(file)
    return path


@dataclass(frozen=True)
class MeasuredRun:
    """One run of a command: wall seconds, CPU seconds, its stderr, and its memory peaks in bytes.

    `cpu_seconds` (user + system of the process and its reaped workers) is the steadier measure of cost on a
    shared machine, where wall time also counts the time other programs held the CPUs.

    `peak_rss_tree` is never below the largest single process's exact peak, which a sample may have missed.
    """

    seconds: float
    cpu_seconds: float
    stderr: str
    peak_rss_main: int
    peak_rss_tree: int

    def counter(self, name: str) -> int | None:
        """A `name=N` counter from apispy's stderr summary, or None when the summary has none."""
        match = re.search(rf"\b{name}=(\d+)", self.stderr)
        return int(match.group(1)) if match else None


def parent_pids() -> dict[int, int]:
    """pid -> parent pid of every process, from /proc/*/stat (this kernel has no /proc/PID/task/TID/children)."""
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
    return parents


def process_tree(root: int) -> list[int]:
    """The root and all its descendants alive now."""
    children: dict[int, list[int]] = {}
    for pid, parent in parent_pids().items():
        children.setdefault(parent, []).append(pid)
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def status_bytes(pid: int, key: bytes) -> int:
    """One memory line of /proc/PID/status (VmRSS, VmHWM) in bytes; 0 once the process has exited."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(key):
                    return int(line.split()[1]) * KIB
    except OSError:
        pass
    return 0


class TreeSampler(threading.Thread):
    """Until stopped: the largest VmRSS sum over the tree (every SAMPLE_INTERVAL_S), and the root's own VmHWM
    (every HWM_INTERVAL_S)."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak_tree = 0
        self.peak_root = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        next_tree = 0.0
        while not self.stopped.is_set():
            now = time.monotonic()
            if now >= next_tree:
                tree = process_tree(self.root)
                self.peak_tree = max(self.peak_tree, sum(status_bytes(pid, b"VmRSS:") for pid in tree))
                next_tree = now + SAMPLE_INTERVAL_S
            self.peak_root = max(self.peak_root, status_bytes(self.root, b"VmHWM:"))
            self.stopped.wait(HWM_INTERVAL_S)


def run_measured(command: list[str]) -> MeasuredRun:
    """Runs a command with stdout discarded, timing it and measuring its memory; a failure raises with stderr.

    stderr goes to a temporary file, not a pipe, so a chatty child cannot block on a full pipe while we wait.
    """
    with tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        sampler = TreeSampler(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        sampler.stopped.set()
        sampler.join()
        stderr.seek(0)
        text = stderr.read()
    if process.returncode != 0:
        raise BenchError(f"`{' '.join(command)}` exited {process.returncode}:\n{text.strip()}")
    main_peak = sampler.peak_root or usage.ru_maxrss * KIB  # see the module docstring
    cpu_seconds = usage.ru_utime + usage.ru_stime
    return MeasuredRun(seconds, cpu_seconds, text, main_peak, max(sampler.peak_tree, main_peak))
