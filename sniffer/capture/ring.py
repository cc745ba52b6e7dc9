"""A TPACKET_V3 receive ring on an AF_PACKET socket: the kernel writes frames into shared memory, block by block.

Reading a socket costs a system call and a few Python steps per frame, some 3 us; on a busy mirror port that
alone eats a third of a core at 100k packets/s. With a receive ring (what libpcap, tcpdump, Suricata and Zeek
use on Linux) the kernel packs frames, each with its header (lengths, timestamp, packet type), into fixed-size
blocks of a memory map shared with the process. A block goes to the process when it is full or when
`retire_ms` passes; a numba kernel then copies its frames into the batch arrays and the block goes straight back
to the kernel. Frames take their own size plus about 80 bytes in a block, instead of a socket buffer's per-packet
accounting of 700 bytes and more, so the same memory rides out a longer burst.

The ring's size is fixed at open (`ring_bytes`, rounded to whole blocks): memory stays bounded whatever the
traffic. When the process falls behind, the kernel drops frames and counts them in PACKET_STATISTICS, as for a
plain socket.

Layouts (linux/if_packet.h, the same on every architecture): a block starts with `tpacket_block_desc` (status at
byte 8, number of frames at 12, offset of the first frame at 16, bytes used at 20); each frame with
`tpacket3_hdr` (offset of the next frame at 0, seconds at 4, nanoseconds at 8, captured length at 12, wire length
at 16, offset of the link-layer header at 24), followed by the `sockaddr_ll` at 48 whose packet type is at 58.
"""

from __future__ import annotations

import mmap
import socket
import struct

import numpy as np

from sniffer.aot import kernel

PACKET_RX_RING = 5
PACKET_VERSION = 10
TPACKET_V3 = 2
SOL_PACKET = 263
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
PACKET_OUTGOING = 4

BLOCK_STATUS = 8
BLOCK_NUM_PACKETS = 12
BLOCK_FIRST_PACKET = 16
BLOCK_LENGTH = 20
FRAME_NEXT = 0
FRAME_SECONDS = 4
FRAME_NANOSECONDS = 8
FRAME_SNAPLEN = 12
FRAME_LENGTH = 16
FRAME_MAC = 24
FRAME_PACKET_TYPE = 48 + 10  # sockaddr_ll after the 48-byte tpacket3_hdr; sll_pkttype is its byte 10
MIN_FRAME_FOOTPRINT = 64  # header and sockaddr_ll, 16-byte aligned: no frame takes less room in a block

DEFAULT_BLOCK_BYTES = 1 << 20
DEFAULT_RETIRE_MS = 20
NS_PER_S = 1_000_000_000


@kernel(inline=True)
def _u32(ring: np.ndarray, at: int) -> int:
    return (
        np.int64(ring[at])
        | (np.int64(ring[at + 1]) << 8)
        | (np.int64(ring[at + 2]) << 16)
        | (np.int64(ring[at + 3]) << 24)
    )


@kernel(
    "u1[::1]", "i8", "b1", "i8", "i8", "u1[::1]", "i8", "i8", "i8[::1]", "i4[::1]", "i4[::1]", "i8[::1]",
    "i4[::1]",
)  # fmt: skip
def copy_block(
    ring: np.ndarray,
    block: int,
    skip_outgoing: bool,
    snaplen: int,
    link_type: int,
    frames: np.ndarray,
    position: int,
    count: int,
    offsets: np.ndarray,
    captured: np.ndarray,
    wire: np.ndarray,
    ts_ns: np.ndarray,
    link_types: np.ndarray,
) -> tuple[int, int]:
    """Copies the frames of the block at byte `block` of `ring` into `frames` from `position` and their rows into
    the arrays from row `count`; returns the new (count, position). Frames the host itself sent are skipped when
    `skip_outgoing` (loopback shows every packet twice). The caller makes sure the block fits."""
    frame = block + _u32(ring, block + BLOCK_FIRST_PACKET)
    for _ in range(_u32(ring, block + BLOCK_NUM_PACKETS)):
        if not (skip_outgoing and ring[frame + FRAME_PACKET_TYPE] == PACKET_OUTGOING):
            kept = min(_u32(ring, frame + FRAME_SNAPLEN), snaplen)
            start = frame + (np.int64(ring[frame + FRAME_MAC]) | (np.int64(ring[frame + FRAME_MAC + 1]) << 8))
            frames[position : position + kept] = ring[start : start + kept]
            offsets[count] = position
            captured[count] = kept
            wire[count] = _u32(ring, frame + FRAME_LENGTH)
            ts_ns[count] = _u32(ring, frame + FRAME_SECONDS) * NS_PER_S + _u32(ring, frame + FRAME_NANOSECONDS)
            link_types[count] = link_type
            position += kept
            count += 1
        frame += _u32(ring, frame + FRAME_NEXT)
    return count, position


class ReceiveRing:
    """The mapped ring of one socket, read block by block in the kernel's order."""

    def __init__(self, sock: socket.socket, ring_bytes: int, block_bytes: int = DEFAULT_BLOCK_BYTES,
                 retire_ms: int = DEFAULT_RETIRE_MS) -> None:  # fmt: skip
        """Raises OSError when the kernel refuses the ring (the caller then reads the socket frame by frame)."""
        page = mmap.PAGESIZE
        self.block_bytes = max(page, block_bytes // page * page)
        self.blocks = max(2, ring_bytes // self.block_bytes)
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        # tpacket_req3: block size, block count, frame size, frame count, retire timeout (ms), private bytes,
        # feature word. V3 frames have no fixed size; frame size and count only have to be consistent.
        frame_size = 2048
        request = struct.pack(
            "IIIIIII", self.block_bytes, self.blocks, frame_size, self.block_bytes // frame_size * self.blocks,
            retire_ms, 0, 0,
        )  # fmt: skip
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
        self.map = mmap.mmap(sock.fileno(), self.block_bytes * self.blocks, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)  # fmt: skip
        self.ring = np.frombuffer(self.map, np.uint8)
        self.words = np.frombuffer(self.map, np.uint32)
        self.next_block = 0

    def ready(self) -> tuple[int, int, int] | None:
        """(byte offset, frames, bytes used) of the next block the kernel handed over, or None."""
        block = self.next_block * self.block_bytes
        word = block // 4
        if not self.words[word + BLOCK_STATUS // 4] & TP_STATUS_USER:
            return None
        return block, int(self.words[word + BLOCK_NUM_PACKETS // 4]), int(self.words[word + BLOCK_LENGTH // 4])

    def release(self) -> None:
        """Gives the current block back to the kernel and moves to the next."""
        block = self.next_block * self.block_bytes
        self.words[block // 4 + BLOCK_STATUS // 4] = TP_STATUS_KERNEL
        self.next_block = (self.next_block + 1) % self.blocks

    def close(self) -> None:
        """Unmaps the ring, or leaves that to the collector while some frame of a stopped read still holds a view
        of it (a signal can stop a read mid-call)."""
        self.ring = self.words = np.empty(0, np.uint8)
        try:
            self.map.close()
        except BufferError:
            pass
