"""The replay/live pipeline: packet batches in, transactions out, with the counters the summary reports.

A batch is decoded by one kernel call; only TCP segments that carry payload or SYN/FIN/RST go on, one Python step
each, to the flow table (pure ACKs matter only as they ride on data segments). Fragments are reassembled and sent
back through the decoder as raw-IP frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from parsers.correlate import Exchange
from parsers.transaction import Transaction
from sniffer.batch import (
    KIND_FRAGMENT,
    KIND_MALFORMED,
    KIND_TCP,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    DecodedBatch,
    PacketBatch,
)
from sniffer.decode.decoder import decode_batch
from sniffer.decode.link import LINKTYPE_RAW
from sniffer.flows import Endpoint, Flow, FlowLimits, FlowTable, address_text
from sniffer.fragments import FragmentReassembler
from sniffer.records import TransactionBuilder
from sniffer.shardsplit import SHARD_BUCKETS, FirstSightSplit

INTERESTING_FLAGS = TCP_SYN | TCP_FIN | TCP_RST
EXPIRY, FRAGMENT = 0, 1  # what stops the walk through a batch's segments at a row (see _process_decoded)
NEVER = 1 << 63


@dataclass(frozen=True, slots=True)
class Shard:
    """One of `count` shards of the connections. A connection's flow key (the same for both directions, a 64-bit
    hash of the 4-tuple) falls into one of SHARD_BUCKETS buckets, and every bucket belongs to one shard. Shards
    own equal shares of the buckets, or, with `first_share`, shard 0 owns that share and the others split the
    rest: the parent of a replay parses shard 0 beside merging every shard.

    `first_sight`: buckets are given to shards as they are first seen (sniffer.shardsplit), which every process
    of a replay does alike; otherwise each shard owns a fixed range of them (a live capture's workers, which see
    only their own packets)."""

    index: int
    count: int
    first_share: float | None = None
    first_sight: bool = False

    def shares(self) -> list[float]:
        """Each shard's share of the connections, in shard order."""
        if self.first_share is None or self.count == 1:
            return [1.0 / self.count] * self.count
        first = min(1.0, max(0.0, self.first_share))
        return [first] + [(1.0 - first) / (self.count - 1)] * (self.count - 1)

    def bucket_range(self) -> tuple[int, int]:
        """The buckets [first, end) this shard owns, with fixed ranges."""
        if self.first_share is None:
            return SHARD_BUCKETS * self.index // self.count, SHARD_BUCKETS * (self.index + 1) // self.count
        first = round(SHARD_BUCKETS * min(1.0, max(0.0, self.first_share)))
        if self.index == 0:
            return 0, first
        rest, others = SHARD_BUCKETS - first, self.count - 1
        return first + rest * (self.index - 1) // others, first + rest * self.index // others

    def owns(self, flow_keys: np.ndarray) -> np.ndarray:
        """Whether each segment (by its flow key) is this shard's, with fixed ranges."""
        first, end = self.bucket_range()
        buckets = flow_keys % np.uint64(SHARD_BUCKETS)
        return (buckets >= np.uint64(first)) & (buckets < np.uint64(end))

    def split(self) -> Shard | FirstSightSplit:
        """What tells this process's segments from the others': the shard itself (fixed ranges), or, giving
        buckets at first sight, a split that remembers whom it gave them to (one per pipeline)."""
        return FirstSightSplit(self.index, self.shares()) if self.first_sight else self


@dataclass
class CaptureStats:
    """The pipeline's own counts. Compiled, an extension type (a Cython dataclass, sniffer/pipeline.pxd) whose counts
    are C integers, written per transaction without an attribute lookup by name (some 540 instructions a
    transaction as a slotted class's). Not `slots=True`, which Cython's dataclasses do not take."""

    packets: int = 0
    bytes: int = 0
    tcp_packets: int = 0
    malformed_packets: int = 0
    transactions: int = 0
    last_ts_ns: int = 0  # the latest packet time seen: the pipeline's clock


class Pipeline:
    """Feeds batches through decoding, the flow table and HTTP parsing; calls `on_transaction` per transaction."""

    __slots__ = (
        "batch_base", "builder", "emitting_flow_position", "expire_every_ns", "flows",
        "fragments", "next_expire_ns", "on_transaction", "position", "shard", "stats",
    )  # fmt: skip

    def __init__(
        self,
        limits: FlowLimits,
        builder: TransactionBuilder,
        on_transaction: Callable[[Transaction], None],
        shard: Shard | None = None,
    ) -> None:
        """`shard`: keep only the connections of this shard (a worker of several); None keeps every one."""
        self.builder = builder
        self.shard = shard.split() if shard is not None else None
        self.on_transaction = on_transaction
        self.flows = FlowTable(limits, self._emit)
        self.fragments = FragmentReassembler()
        self.stats = CaptureStats()
        # Idle flows are looked for at most this often (packet time), so a long batch still expires them.
        self.expire_every_ns = min(1_000_000_000, max(1, self.flows.idle_timeout_ns // 2))
        self.next_expire_ns = 0
        # Where in the input a transaction is emitted, so that workers' transactions merge back into the order one
        # process emits them: 3 * (index of the packet being processed) + phase, the phase being 0 while idle flows
        # expire before that packet, 1 while the packet is processed, 2 at the expiry after its batch.
        self.position = 0
        # The last segment's position of the flow that emits the transaction: flows that close at one position
        # (idle, or at the end of the input) close least recently active first, in this order.
        self.emitting_flow_position = 0
        self.batch_base = 0

    @property
    def batch_end_position(self) -> int:
        """The position just past everything processed so far: no transaction will be emitted before it."""
        return 3 * self.stats.packets

    def _emit(self, flow: Flow, exchange: Exchange) -> None:
        self.stats.transactions += 1
        self.emitting_flow_position = flow.last_position
        self.on_transaction(self.builder.build(flow, exchange))

    def process(self, batch: PacketBatch) -> None:
        if len(batch) == 0:
            return
        stats = self.stats
        self.batch_base = stats.packets
        stats.packets += len(batch)
        stats.bytes += batch.byte_count
        # Frames of several interfaces (live) need not be in time order within a batch.
        stats.last_ts_ns = max(stats.last_ts_ns, int(batch.ts_ns.max()))
        self._process_decoded(batch, count_packets=True)
        self.position = self.batch_end_position - 1
        self.flows.expire(stats.last_ts_ns)

    def _process_decoded(self, batch: PacketBatch, count_packets: bool) -> None:
        decoded = decode_batch(batch)
        kind = decoded.kind
        if count_packets:
            self.stats.malformed_packets += int(np.count_nonzero(kind == KIND_MALFORMED))
            self.stats.tcp_packets += int(np.count_nonzero(kind == KIND_TCP))
        rows = np.flatnonzero(
            (kind == KIND_TCP)
            & (
                (decoded.payload_lengths > 0)
                | ((decoded.tcp_flags & INTERESTING_FLAGS) != 0)
                | (decoded.payload_missing > 0)
            )
        )
        fragment_rows = np.flatnonzero(kind == KIND_FRAGMENT)
        expiries: list[tuple[int, int]] = []
        if self.shard is not None:
            # Idle flows are looked for where one process looks for them, at segments of any shard.
            expiries = self._expiry_points(rows, batch.ts_ns[rows])
            rows = rows[self.shard.owns(decoded.flow_keys[rows])]
        # Segments, reassembled fragments and a shard's expiries go on in packet order: a datagram completed by
        # fragment k sits between the segments before and after k; an expiry at row k comes before its segment.
        stops = [(row, EXPIRY, ts_ns) for row, ts_ns in expiries]
        stops += [(row, FRAGMENT, 0) for row in fragment_rows.tolist()]
        stops.sort()
        # One copy of the batch as bytes, sliced per segment: cheaper than a numpy slice and tobytes() each.
        frames = batch.frames.tobytes() if len(rows) else b""
        inline = self.shard is None  # one process looks for idle flows as it goes through the segments
        done = 0
        for stop_row, stop, ts_ns in stops:
            split = int(np.searchsorted(rows, stop_row))
            if split > done:
                self._segments(batch, frames, decoded, rows[done:split], inline)
            done = split
            if stop == FRAGMENT:
                self._reassemble_fragment(batch, decoded, stop_row)
            else:
                self.position = 3 * (self.batch_base + stop_row)
                self.flows.expire(ts_ns)
        if len(rows) > done:
            self._segments(batch, frames, decoded, rows[done:], inline)

    def _expiry_points(self, rows: np.ndarray, ts_ns: np.ndarray) -> list[tuple[int, int]]:
        """(row, packet time) of the segments among `rows` at which one process, which sees them all, would look
        for idle flows (see `_segments`); moves `next_expire_ns` past them as it would."""
        points = []
        start = 0
        while True:
            due = np.flatnonzero(ts_ns[start:] >= self.next_expire_ns)
            if not len(due):
                return points
            index = start + int(due[0])
            points.append((int(rows[index]), int(ts_ns[index])))
            self.next_expire_ns = int(ts_ns[index]) + self.expire_every_ns
            start = index + 1

    def _segments(
        self, batch: PacketBatch, frames: bytes, decoded: DecodedBatch, rows: np.ndarray, inline: bool = True
    ) -> None:
        """The segments at `rows`, one by one through the flow table; `frames` is the batch's bytes. `inline`:
        look for idle flows here, as segments come (a shard's expiries come from `_process_decoded` instead)."""
        flows = self.flows
        # The segments' columns as memoryviews: compiled, each value is a C read (pipeline.pxd), where a list of int
        # objects per column, zipped, cost about 1,900 instructions a segment.
        row_numbers = memoryview(rows)
        flow_keys = memoryview(decoded.flow_keys[rows])
        endpoint_keys = memoryview(decoded.endpoint_keys[rows])
        times = memoryview(batch.ts_ns[rows])
        seqs = memoryview(decoded.seq[rows])
        acks = memoryview(decoded.ack[rows])
        flag_bits = memoryview(decoded.tcp_flags[rows])
        offsets = memoryview(decoded.payload_offsets[rows])
        lengths = memoryview(decoded.payload_lengths[rows])
        missing_bytes = memoryview(decoded.payload_missing[rows])
        base = self.batch_base
        next_expire_ns = self.next_expire_ns if inline else NEVER
        # Compiled, a typed dict (pipeline.pxd): each lookup is a C call. The flow table's order of activity needs
        # nothing more per segment than the flow's position (see FlowTable).
        flow_map = flows.flows
        syn_bit, ack_bit, fin_bit, rst_bit = TCP_SYN, TCP_ACK, TCP_FIN, TCP_RST  # C integers when compiled
        # Compiled, the frames' bytes by a C pointer (pipeline.pxd): a payload is copied out with one call, where
        # slicing the bytes object made a slice object and two ints first (callgrind, bench subset: some 940
        # instructions a segment with its copy, against some 190). The end is kept within the bytes, as a slice's is.
        frame_bytes, frames_length = frames, len(frames)
        for index in range(len(row_numbers)):
            row, key, endpoint_key, ts_ns = row_numbers[index], flow_keys[index], endpoint_keys[index], times[index]
            seq, ack, flags, offset = seqs[index], acks[index], flag_bits[index], offsets[index]
            length, missing = lengths[index], missing_bytes[index]
            if ts_ns >= next_expire_ns:
                self.position = 3 * (base + row)
                flows.expire(ts_ns)
                self.next_expire_ns = next_expire_ns = ts_ns + self.expire_every_ns
            self.position = position = 3 * (base + row) + 1
            flow = flow_map.get(key)
            if flow is not None and flags & syn_bit and not flags & ack_bit and flow.carried_data():
                # A new SYN on a known 4-tuple after data: the port was reused for a new connection.
                flows.remove(flow)
                flow = None
            if flow is None:
                if flags & rst_bit and not length:
                    continue
                if not flags & syn_bit and flows.is_stale_retransmission(key, endpoint_key, seq, length):
                    continue
                a = Endpoint(address_text(decoded.src_addr[row].tobytes()), int(decoded.src_port[row]))
                b = Endpoint(address_text(decoded.dst_addr[row].tobytes()), int(decoded.dst_port[row]))
                flow = flows.create(key, endpoint_key, a, b, position)
            flow.last_position = position
            direction = 0 if endpoint_key == flow.a_key else 1
            if flags & syn_bit:
                flow.on_syn(direction, seq, bool(flags & ack_bit))
                seq = (seq + 1) & 0xFFFFFFFF
            end = min(offset + length, frames_length)
            data = frame_bytes[offset:end] if end > offset else b""
            finished = flow.on_segment(
                direction, ts_ns, seq, ack if flags & ack_bit else -1, data, flags & fin_bit != 0, missing
            )
            if finished or flags & rst_bit:
                flows.remove(flow)

    def _reassemble_fragment(self, batch: PacketBatch, decoded: DecodedBatch, row: int) -> None:
        start = int(decoded.ip_offsets[row])
        end = int(decoded.ip_ends[row])
        datagram = self.fragments.add(int(batch.ts_ns[row]), batch.frames[start:end].tobytes())
        if datagram is not None:
            # The datagram is completed by fragment `row`: its segment takes that fragment's place in the input.
            base = self.batch_base
            self.batch_base = base + row
            self._process_decoded(raw_ip_batch(datagram, int(batch.ts_ns[row])), count_packets=False)
            self.batch_base = base

    def finish(self) -> None:
        """End of input: every flow is flushed and closed, so every transaction is emitted."""
        self.position = self.batch_end_position
        self.flows.close_all()


def raw_ip_batch(datagram: bytes, ts_ns: int) -> PacketBatch:
    """A one-frame batch of a reassembled IP datagram (link type RAW), for the same decoder."""
    length = len(datagram)
    return PacketBatch(
        frames=np.frombuffer(datagram, np.uint8),
        frame_offsets=np.zeros(1, np.int64),
        captured_lengths=np.array([length], np.int32),
        wire_lengths=np.array([length], np.int32),
        ts_ns=np.array([ts_ns], np.int64),
        link_types=np.array([LINKTYPE_RAW], np.int32),
    )
