"""The columnar types that cross stage boundaries: a block of raw frames, and the same block decoded.

Both are structs of numpy arrays indexed by packet number within the block; no per-packet Python objects exist
on the hot path. `frames` is the raw block the reader pulled from the capture, and every offset points into it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# What the decoder made of a packet (`DecodedBatch.kind`).
KIND_OTHER = 0  # not IP, or an IP protocol we do not follow
KIND_TCP = 1
KIND_FRAGMENT = 2  # an IPv4 or IPv6 fragment, to be reassembled before decoding its transport header
KIND_MALFORMED = 3  # headers shorter than they claim or inconsistent: counted and skipped

# TCP flag bits as on the wire.
TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10


@dataclass(slots=True)
class PacketBatch:
    """Raw frames of one capture block: where each frame sits in `frames` and what the capture says of it."""

    frames: np.ndarray  # uint8, the block as read
    frame_offsets: np.ndarray  # int64, start of each frame in `frames`
    captured_lengths: np.ndarray  # int32, bytes present in the capture
    wire_lengths: np.ndarray  # int32, bytes on the wire (>= captured when a snap length cut them)
    ts_ns: np.ndarray  # int64, packet time in nanoseconds since the epoch
    link_types: np.ndarray  # int32, per packet because pcapng mixes interfaces

    def __len__(self) -> int:
        return len(self.frame_offsets)

    @property
    def byte_count(self) -> int:
        return int(self.wire_lengths.sum())


@dataclass(slots=True)
class DecodedBatch:
    """Link, IP and TCP headers of a PacketBatch, decoded by `sniffer.decode.decoder.decode_batch`.

    Addresses are 16 bytes each, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d) so one column serves both families.
    `flow_keys` is the same for both directions of a TCP connection; `endpoint_keys` identifies the sender
    (address and port), which tells the direction of a segment within its flow.
    """

    kind: np.ndarray  # uint8, KIND_*
    ip_version: np.ndarray  # uint8, 4 or 6 (0 when not IP)
    ip_offsets: np.ndarray  # int64, start of the IP header in frames (for fragments)
    ip_ends: np.ndarray  # int64, end of the IP datagram within the captured bytes
    src_addr: np.ndarray  # uint8[n, 16]
    dst_addr: np.ndarray  # uint8[n, 16]
    src_port: np.ndarray  # uint16
    dst_port: np.ndarray  # uint16
    seq: np.ndarray  # uint32
    ack: np.ndarray  # uint32
    tcp_flags: np.ndarray  # uint8
    payload_offsets: np.ndarray  # int64, into frames
    payload_lengths: np.ndarray  # int32, captured payload bytes
    payload_missing: np.ndarray  # int32, payload bytes cut off by the snap length
    flow_keys: np.ndarray  # uint64
    endpoint_keys: np.ndarray  # uint64
