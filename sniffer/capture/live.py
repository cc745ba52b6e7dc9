"""Live capture from network interfaces into the same columnar PacketBatches as replay.

Sockets are opened through scapy's native Linux socket (AF_PACKET: promiscuous mode, kernel BPF filter), but
frames are not dissected by scapy: each is received straight into one large buffer with its kernel timestamp
(SO_TIMESTAMPNS), and a batch of them goes to the batch decoder. A batch is handed on when it is full, or after
`batch_timeout_s`, so a quiet link still flows. Kernel drops (PACKET_STATISTICS) are read and accumulated.

Errors at open become LiveCaptureError with one line saying what is wrong: no such interface, or the missing
privilege (CAP_NET_RAW).
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sniffer.batch import PacketBatch
from sniffer.capture.ring import BLOCK_LENGTH, MIN_FRAME_FOOTPRINT, ReceiveRing, copy_block
from sniffer.decode.link import LINKTYPE_ETHERNET, LINKTYPE_RAW

SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_AUXDATA = 8
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
PACKET_FANOUT = 18
PACKET_FANOUT_HASH = 0  # by the kernel's symmetric flow hash: both directions of a connection to one socket
PACKET_FANOUT_FLAG_DEFRAG = 0x8000  # IP fragments are reassembled first, so they hash with their flow
PACKET_FANOUT_FLAG_UNIQUEID = 0x2000  # the kernel picks a group id no one uses
PACKET_OUTGOING = 4
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
ANCILLARY_BYTES = 256


class LiveCaptureError(Exception):
    """A capture that cannot start; the message is one line naming the interface and the reason."""


@dataclass(frozen=True, slots=True)
class LiveSettings:
    snaplen: int = 262_144
    promiscuous: bool = True
    bpf: str | None = None
    socket_buffer_bytes: int = 64 << 20  # the receive ring's size (or the socket buffer's, without a ring)
    ring: bool = True  # a TPACKET_V3 receive ring (sniffer.capture.ring); False: one system call per frame
    batch_packets: int = 4096
    batch_bytes: int = 16 << 20
    batch_timeout_s: float = 0.05
    drain_timeout_s: float = 3.0  # at stop, how long to keep reading what the kernel already queued


def _link_type(hardware_type: int) -> int:
    """Ethernet and loopback carry an Ethernet header; tunnels and the like carry bare IP."""
    return LINKTYPE_ETHERNET if hardware_type in (ARPHRD_ETHER, ARPHRD_LOOPBACK) else LINKTYPE_RAW


@dataclass(slots=True)
class Capture:
    """One interface's socket. `listener` is scapy's socket object: it owns the file descriptor and closes it
    when collected, so it is kept as long as `raw` is used."""

    interface: str
    listener: object
    raw: socket.socket
    link_type: int
    hardware_type: int
    ring: ReceiveRing | None = None  # None: the socket is read frame by frame


def check_can_capture(interface: str) -> None:
    """Raises the error opening a socket on `interface` would, for a missing interface or privilege, before the
    seconds of warm-up that come before the sockets are opened (sniffer.cli): one line at once, not after them."""
    if not os.path.exists(f"/sys/class/net/{interface}"):
        raise LiveCaptureError(f"{interface}: no such network interface")
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except PermissionError:
        raise LiveCaptureError(_NEEDS_CAP_NET_RAW.format(interface=interface)) from None


_NEEDS_CAP_NET_RAW = (
    "{interface}: capturing needs the CAP_NET_RAW capability (run as root, give it to the service, "
    "or setcap cap_net_raw+eip on the Python interpreter; see deploy/README.md)"
)


def open_socket(interface: str, settings: LiveSettings) -> Capture:
    """An AF_PACKET socket on `interface` through scapy (promiscuous, BPF attached)."""
    check_can_capture(interface)
    try:
        # scapy warns on stderr about link types it would dissect; apispy does not ask it to dissect anything.
        logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
        from scapy.arch.linux import L2ListenSocket
        from scapy.error import Scapy_Exception

        listener = L2ListenSocket(iface=interface, promisc=settings.promiscuous, filter=settings.bpf)
    except PermissionError:
        raise LiveCaptureError(_NEEDS_CAP_NET_RAW.format(interface=interface)) from None
    except Scapy_Exception as error:
        raise LiveCaptureError(f"{interface}: cannot set the capture filter {settings.bpf!r}: {error}") from None
    except OSError as error:
        if error.errno == errno.ENODEV:
            raise LiveCaptureError(f"{interface}: no such network interface") from None
        raise LiveCaptureError(f"{interface}: cannot capture ({error.strerror})") from None
    raw = listener.ins
    # VLAN tags the NIC stripped would come as auxiliary data; the decoder does not need them for HTTP.
    raw.setsockopt(SOL_PACKET, PACKET_AUXDATA, 0)
    raw.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    try:
        raw.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, settings.socket_buffer_bytes)
    except OSError:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, settings.socket_buffer_bytes)
    raw.setblocking(False)
    hardware_type = raw.getsockname()[3]
    ring = None
    if settings.ring:
        try:
            ring = ReceiveRing(raw, settings.socket_buffer_bytes)
        except OSError as error:
            logging.getLogger(__name__).warning("%s: no receive ring (%s); reading frame by frame", interface,
                                                error.strerror)  # fmt: skip
    return Capture(interface, listener, raw, _link_type(hardware_type), hardware_type, ring)


class LiveSource:
    """One socket per interface, read in batches; `kernel_drops` accumulates what the kernel could not queue."""

    def __init__(
        self,
        interfaces: list[str],
        settings: LiveSettings | None = None,
        fanout: list[int] | None = None,
        counts_interface_drops: bool = True,
    ) -> None:
        """`fanout`: share the traffic by connection with the sources of other processes (`--workers`): [] makes
        a new PACKET_FANOUT group per interface, whose ids `fanout_groups` then gives; a list of those ids joins
        them. Only one of the sources should count the interfaces' own drops."""
        self.settings = settings or LiveSettings()
        self.interfaces = interfaces
        self.counts_interface_drops = counts_interface_drops
        self.sockets: list[Capture] = []
        self.fanout_groups: list[int] = []
        try:
            for index, interface in enumerate(interfaces):
                capture = open_socket(interface, self.settings)
                self.sockets.append(capture)
                if fanout is not None:
                    self.fanout_groups.append(_join_fanout(capture, fanout[index] if fanout else None))
        except LiveCaptureError:
            self.close()
            raise
        self.kernel_received = 0
        self.kernel_drops = 0
        # Drops before the socket (the interface's receive queue) are in the interface's own counters.
        self.interface_drops_at_start = self._interface_drops()
        self.interface_drops = 0
        self.frames = 0
        self.bytes = 0

    def batches(self, should_stop) -> Iterator[PacketBatch | None]:
        """Batches of frames; None when a batch timeout passed with nothing received (a tick for idle work)."""
        settings = self.settings
        builder = _BatchBuilder(settings, max((c.ring.block_bytes for c in self.sockets if c.ring), default=0))
        readers = [capture.raw for capture in self.sockets]
        by_fd = {capture.raw.fileno(): capture for capture in self.sockets}
        # A ring hands over a block when it is full or after its retire timeout: when draining, wait that long
        # for the last one. A socket's queue is readable at once.
        drain_wait = 0.1 if any(capture.ring for capture in self.sockets) else 0.0
        drain_until = None
        while True:
            if drain_until is None and should_stop():
                # Stopping: what the kernel already queued was captured; read it too, for a bounded time.
                drain_until = time.monotonic() + settings.drain_timeout_s
            draining = drain_until is not None
            if draining and time.monotonic() >= drain_until:
                return
            builder.start()
            deadline = time.monotonic() + (drain_wait if draining else settings.batch_timeout_s)
            while not builder.full:
                for capture in self.sockets:
                    if capture.ring is not None:
                        builder.read_ring(capture)
                if builder.full:
                    break
                remaining = deadline - time.monotonic()
                if (remaining <= 0 and not draining) or (not draining and should_stop()):
                    break
                try:
                    ready, _, _ = select.select(readers, [], [], max(0.0, remaining))
                except InterruptedError:
                    continue
                if draining and not ready:
                    break
                for sock in ready:
                    capture = by_fd[sock.fileno()]
                    if capture.ring is None:
                        builder.read_socket(capture)
            self._read_statistics()
            if builder.count == 0:
                if draining:
                    return
                yield None
                continue
            batch = builder.batch()
            self.frames += len(batch)
            self.bytes += int(batch.wire_lengths.sum())
            yield batch

    def _interface_drops(self) -> int:
        total = 0
        if not self.counts_interface_drops:
            return 0
        for interface in self.interfaces:
            for counter in ("rx_dropped", "rx_missed_errors", "rx_fifo_errors"):
                try:
                    total += int(open(f"/sys/class/net/{interface}/statistics/{counter}").read())
                except (OSError, ValueError):
                    continue
        return total

    @property
    def dropped(self) -> int:
        """Everything lost before apispy read it: by the socket queue (kernel) and by the interface."""
        return self.kernel_drops + self.interface_drops

    def _read_statistics(self) -> None:
        """PACKET_STATISTICS resets on read: the counts since the last read, added up here."""
        self.interface_drops = max(0, self._interface_drops() - self.interface_drops_at_start)
        for capture in self.sockets:
            try:
                received, dropped = struct.unpack("II", capture.raw.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            except OSError:
                continue
            self.kernel_received += received
            self.kernel_drops += dropped

    def close(self) -> None:
        for capture in self.sockets:
            if capture.ring is not None:
                capture.ring.close()
            capture.raw.close()
        self.sockets = []


def load_ring_kernel(settings: LiveSettings) -> None:
    """Loads the kernel that copies frames out of the receive ring (see `_BatchBuilder.copy_empty_block`)."""
    _BatchBuilder(settings, 0).copy_empty_block()


class _BatchBuilder:
    """The arrays one batch of frames is gathered in, reused from batch to batch.

    From a socket, frames come one by one up to the batch's limits. From a ring, whole blocks are copied, so the
    arrays also hold the largest block (`block_bytes`, at most one frame per MIN_FRAME_FOOTPRINT bytes of it).
    """

    def __init__(self, settings: LiveSettings, block_bytes: int) -> None:
        self.settings = settings
        self.packet_limit = settings.batch_packets
        self.byte_limit = settings.batch_bytes
        packets = max(settings.batch_packets, block_bytes // MIN_FRAME_FOOTPRINT)
        self.buffer = np.empty(max(settings.batch_bytes, block_bytes) + settings.snaplen, np.uint8)
        self.view = memoryview(self.buffer)
        self.offsets = np.empty(packets, np.int64)
        self.captured = np.empty(packets, np.int32)
        self.wire = np.empty(packets, np.int32)
        self.ts_ns = np.empty(packets, np.int64)
        self.link_types = np.empty(packets, np.int32)
        self.count = 0
        self.position = 0
        self.blocked = False  # a ready block did not fit: this batch is full

    def start(self) -> None:
        self.count = 0
        self.position = 0
        self.blocked = False

    @property
    def full(self) -> bool:
        return self.blocked or self.count >= self.packet_limit or self.position >= self.byte_limit

    def copy_empty_block(self) -> None:
        """Runs copy_block on a block that holds no frame, with the arguments `read_ring` passes, so that numba
        loads it (on a first run after installing, compiles it: a second or more) before packets wait."""
        empty_block = np.zeros(BLOCK_LENGTH + 4, np.uint8)  # as the mapped ring: writable bytes; no frame in it
        self.count, self.position = copy_block(
            empty_block, 0, False, self.settings.snaplen, 0, self.buffer, self.position, self.count, self.offsets,
            self.captured, self.wire, self.ts_ns, self.link_types,
        )  # fmt: skip

    def read_ring(self, capture: Capture) -> None:
        """Copies every block the kernel handed over, while they fit, and gives each back at once."""
        ring = capture.ring
        skip_outgoing = capture.hardware_type == ARPHRD_LOOPBACK
        while not self.full:
            block = ring.ready()
            if block is None:
                return
            offset, frames, used = block
            if self.count + frames > len(self.offsets) or self.position + used > len(self.buffer):
                self.blocked = True
                return
            self.count, self.position = copy_block(
                ring.ring, offset, skip_outgoing, self.settings.snaplen, capture.link_type, self.buffer,
                self.position, self.count, self.offsets, self.captured, self.wire, self.ts_ns, self.link_types,
            )  # fmt: skip
            ring.release()

    def read_socket(self, capture: Capture) -> None:
        """Receives frames one system call each until the socket is empty or the batch is full."""
        sock = capture.raw
        on_loopback = capture.hardware_type == ARPHRD_LOOPBACK
        snaplen = self.settings.snaplen
        view = self.view
        while not self.full:
            try:
                length, ancillary, _, address = sock.recvmsg_into(
                    [view[self.position : self.position + snaplen]], ANCILLARY_BYTES, socket.MSG_TRUNC
                )
            except (BlockingIOError, InterruptedError):
                return
            if on_loopback and address[2] == PACKET_OUTGOING:
                continue  # loopback shows every packet twice: once leaving, once arriving
            kept = min(length, snaplen)
            count = self.count
            self.offsets[count] = self.position
            self.captured[count] = kept
            self.wire[count] = length
            self.ts_ns[count] = _timestamp(ancillary)
            self.link_types[count] = capture.link_type
            self.position += kept
            self.count = count + 1

    def batch(self) -> PacketBatch:
        """The batch gathered so far, copied out of the reused arrays."""
        count = self.count
        return PacketBatch(self.buffer[: self.position].copy(), self.offsets[:count].copy(),
                           self.captured[:count].copy(), self.wire[:count].copy(), self.ts_ns[:count].copy(),
                           self.link_types[:count].copy())  # fmt: skip


def _join_fanout(capture: Capture, group: int | None) -> int:
    """Joins fanout group `group`, or (None) a new one whose id the kernel picks, so that no other capture on
    the machine can share it by chance; returns the group's id."""
    mode = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG
    if group is None:
        mode |= PACKET_FANOUT_FLAG_UNIQUEID
    try:
        # Packed: with the defrag flag the value passes 2**31, which an int argument may not.
        capture.raw.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("I", (group or 0) | (mode << 16)))
        (value,) = struct.unpack("I", capture.raw.getsockopt(SOL_PACKET, PACKET_FANOUT, 4))
    except OSError as error:
        raise LiveCaptureError(f"{capture.interface}: cannot share capture between workers "
                               f"(PACKET_FANOUT: {error.strerror})") from None
    return value & 0xFFFF


def _timestamp(ancillary: list[tuple[int, int, bytes]]) -> int:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds * 1_000_000_000 + nanoseconds
    return time.time_ns()


def drop_privileges(user: str) -> None:
    """Become `user` (its uid, gid and groups) once the sockets are open: capture needs no root after that."""
    import grp
    import pwd

    try:
        record = pwd.getpwnam(user)
    except KeyError:
        raise LiveCaptureError(f"--user {user}: no such user") from None
    try:
        groups = [group.gr_gid for group in grp.getgrall() if user in group.gr_mem]
        os.setgroups(groups)
        os.setgid(record.pw_gid)
        os.setuid(record.pw_uid)
    except PermissionError:
        raise LiveCaptureError(f"--user {user}: cannot switch user (only root can)") from None
