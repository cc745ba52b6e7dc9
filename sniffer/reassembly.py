"""TCP stream reassembly for one direction: segments in any order in, ordered bytes and gaps out.

Overlap policy: the first copy of a byte wins. Bytes already handed to the parser are never replaced, and when
two buffered out-of-order segments overlap, the one that arrived first keeps the overlap. Retransmissions are
trimmed to their new bytes; a retransmission whose overlapping bytes differ from the first copy is counted as an
overlap conflict (the signature of evasion attempts) but does not change what was delivered. To compare, the
last `RECENT_BYTES` delivered are remembered as references to the delivered pieces (no copy).

A hole becomes a gap (`Gap(nbytes)`) when it can no longer be filled: when the peer acknowledges data beyond it
(the receiver got bytes the capture lost), when the out-of-order buffer passes its bound, or when the stream is
flushed at FIN, RST, idle timeout, eviction or the end of the capture. Sequence numbers wrap; offsets here are
64-bit positions in the stream, so a stream may carry more than 4 GiB.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

RECENT_BYTES = 65536
SEQ_MOD = 1 << 32
SEQ_HALF = 1 << 31
NO_PENDING = MappingProxyType({})  # read-only: a direction that buffers out-of-order data gets its own dict
# `next_seq` before the stream's first sequence number is known: negative, where a sequence number never is. Not None:
# compiled, next_seq is a C integer (reassembly.pxd), so advancing it per segment makes no int object.
NOT_STARTED = -1


@dataclass(slots=True, frozen=True)
class Gap:
    """`nbytes` of the stream were never captured; the parser decides whether it can skip them."""

    nbytes: int


# What a reassembler hands on: (packet time in ns, bytes) for data, or a Gap.
StreamItem = tuple[int, bytes] | Gap


def seq_delta(seq: int, reference: int) -> int:
    """Signed distance from `reference` to `seq` in 32-bit sequence space."""
    return ((seq - reference + SEQ_HALF) % SEQ_MOD) - SEQ_HALF


class ReassemblyBudget:
    """Out-of-order bytes held by all flows together, against one limit (a memcap, as Suricata and Zeek have):
    the per-direction bound alone would let many flows add up to more memory than the machine has.

    Delivered bytes kept to compare retransmissions with (`recent`) have a limit of their own, `recent_limit`:
    past it, the direction that delivers forgets its own; it only loses the overlap check on its older bytes."""

    __slots__ = ("limit", "used", "overruns", "recent_limit", "recent_used")

    def __init__(self, limit: int, recent_limit: int | None = None) -> None:
        self.limit = limit
        self.used = 0
        self.overruns = 0
        self.recent_limit = limit // 4 if recent_limit is None else recent_limit
        self.recent_used = 0

    def over(self) -> bool:
        return self.used > self.limit


UNLIMITED = ReassemblyBudget(1 << 62)


class StreamReassembler:
    """Orders one direction's segments; memory is bounded by `max_buffered_bytes` of out-of-order data, and by
    the shared `budget` of all flows: the direction whose segment passes either bound turns its holes into gaps."""

    __slots__ = (
        "max_buffered_bytes",
        "next_seq",
        "next_offset",
        "pending",
        "pending_bytes",
        "fin_offset",
        "recent",
        "recent_bytes",
        "recent_start",
        "budget",
        "finished",
        "retransmitted_bytes",
        "overlap_conflicts",
        "gap_bytes",
        "gaps",
        "delivered_bytes",
    )

    def __init__(self, max_buffered_bytes: int, budget: ReassemblyBudget = UNLIMITED) -> None:
        self.max_buffered_bytes = max_buffered_bytes
        self.budget = budget
        self.next_seq = NOT_STARTED  # sequence number of the next byte to deliver
        self.next_offset = 0  # stream offset of that byte
        # stream offset -> (ts_ns, bytes), out of order; a shared empty mapping until the first such segment.
        self.pending: dict[int, tuple[int, bytes]] | MappingProxyType = NO_PENDING
        self.pending_bytes = 0
        self.fin_offset: int | None = None
        self.finished = False
        self.retransmitted_bytes = 0
        self.overlap_conflicts = 0
        self.gap_bytes = 0
        self.gaps = 0
        self.delivered_bytes = 0
        # The latest deliveries, in stream order from offset `recent_start`: each piece delivered, and between two
        # pieces the bytes a gap skipped (an int), so that every piece's offset follows from the entries before it
        # (the first entry is always a piece). Neither an (offset, piece) tuple nor an offset object is made per
        # segment: kept that way, remembering a piece and forgetting it once acknowledged cost some 2,200
        # instructions a segment when compiled. A list, not a deque: a deque's first block alone weighs 600 bytes,
        # and a capture may hold a few hundred thousand open directions.
        self.recent: list[bytes | int] = []
        self.recent_bytes = 0  # the pieces' bytes (not the gaps')
        self.recent_start = 0

    @property
    def started(self) -> bool:
        return self.next_seq >= 0

    def on_syn(self, seq: int) -> None:
        """The SYN's sequence number is the ISN; data starts one after it."""
        if self.next_seq < 0:
            self.next_seq = (seq + 1) % SEQ_MOD

    def on_segment(self, ts_ns: int, seq: int, data: bytes, fin: bool, out: list[StreamItem], missing: int = 0) -> None:
        """Adds one segment; appends whatever became deliverable to `out`.

        `missing` counts payload bytes the snap length cut off the end of this segment: they are lost for sure,
        so when the segment is in order they become a gap at once instead of a hole that waits for an ACK.
        """
        if self.take_next(seq, data, fin, missing):
            out.append((ts_ns, data))
            return
        if self.next_seq < 0:
            # Mid-stream pickup: the first segment seen starts the stream.
            self.next_seq = seq
        offset = self.next_offset + seq_delta(seq, self.next_seq)
        if fin and self.fin_offset is None:
            self.fin_offset = offset + len(data) + missing
        if data:
            self._add(ts_ns, offset, data, out)
        if missing and self.next_offset == offset + len(data):
            self._skip_to(offset + len(data) + missing, out)
            self._drain(out)
        self._check_finished()

    def take_next(self, seq: int, data: bytes, fin: bool, missing: int) -> bool:
        """The common case, in one step: when the segment is the next bytes, nothing is buffered and it carries no
        FIN, takes it as delivered and returns True; the caller hands `data` on itself (no list in between)."""
        if seq == self.next_seq and data and not (fin or missing or self.pending or self.fin_offset is not None):
            self._take(data)
            return True
        return False

    def on_peer_ack(self, ack: int, out: list[StreamItem]) -> None:
        """The peer acknowledged up to `ack`: a hole below it that still has data after it is lost for good, and
        delivered bytes below it need no more keeping (the receiver has them; a later copy changes nothing)."""
        if not self.forget_acked(ack) or not self.pending:
            return
        acked_offset = self.next_offset + seq_delta(ack, self.next_seq)
        first_pending = min(self.pending)
        if acked_offset >= first_pending > self.next_offset:
            self._skip_to(first_pending, out)
            self._drain(out)
            self._check_finished()

    def forget_acked(self, ack: int) -> bool:
        """The part of on_peer_ack that needs no output: forgets kept bytes below `ack`; False before the stream
        started. Its stream offset is not returned: compiled, that made an int object for every acknowledgement."""
        if self.next_seq < 0:
            return False
        # seq_delta, inline; compiled, the locals are C integers (reassembly.pxd), and so is the arithmetic.
        next_seq, half, modulus = self.next_seq, SEQ_HALF, SEQ_MOD
        acked_offset = self.next_offset + ((ack - next_seq + half) % modulus) - half
        recent = self.recent
        if recent and self.recent_start + len(recent[0]) <= acked_offset:
            self._forget_recent(acked_offset)
        return True

    def flush(self, out: list[StreamItem]) -> None:
        """Delivers everything buffered, holes as gaps: nothing more will come for this stream."""
        while self.pending:
            self._skip_to(min(self.pending), out)
            self._drain(out)
        if self.fin_offset is not None and self.fin_offset > self.next_offset:
            # Bytes before the FIN were never captured.
            self._skip_to(self.fin_offset, out)
        self._forget_recent(self.next_offset)  # the stream is over: its kept bytes go back to the budget
        self._check_finished()

    def _add(self, ts_ns: int, offset: int, data: bytes, out: list[StreamItem]) -> None:
        end = offset + len(data)
        if end <= self.next_offset:
            self.retransmitted_bytes += len(data)
            self._compare_delivered(offset, data)
            return
        if offset < self.next_offset:
            self.retransmitted_bytes += self.next_offset - offset
            self._compare_delivered(offset, data[: self.next_offset - offset])
            data = data[self.next_offset - offset :]
            offset = self.next_offset
        if offset == self.next_offset and (not self.pending or min(self.pending) >= end):
            self._deliver(ts_ns, data, out)
            self._drain(out)
            return
        # Out of order, or in order but overlapping bytes buffered earlier (which keep their first copy).
        self._buffer(ts_ns, offset, data)
        self._drain(out)
        while (self.pending_bytes > self.max_buffered_bytes or self.budget.over()) and self.pending:
            if self.pending_bytes <= self.max_buffered_bytes:
                self.budget.overruns += 1
            self._skip_to(min(self.pending), out)
            self._drain(out)

    def _buffer(self, ts_ns: int, offset: int, data: bytes) -> None:
        """Keeps the parts of a segment that no buffered segment covers yet; covered parts are compared."""
        end = offset + len(data)
        position = offset
        for other_offset in sorted(self.pending):
            if other_offset >= end:
                break
            other = self.pending[other_offset][1]
            other_end = other_offset + len(other)
            if other_end <= position:
                continue
            if other_offset > position:
                self._store(ts_ns, position, data[position - offset : other_offset - offset])
            low, high = max(position, other_offset), min(end, other_end)
            if data[low - offset : high - offset] != other[low - other_offset : high - other_offset]:
                self.overlap_conflicts += 1
            self.retransmitted_bytes += high - low
            position = high
        if position < end:
            self._store(ts_ns, position, data[position - offset :])

    def _store(self, ts_ns: int, offset: int, data: bytes) -> None:
        if not self.pending:
            self.pending = {}
        self.pending[offset] = (ts_ns, data)
        self.pending_bytes += len(data)
        self.budget.used += len(data)

    def _compare_delivered(self, offset: int, data: bytes) -> None:
        """Counts a conflict when retransmitted bytes differ from the delivered ones still remembered."""
        end = offset + len(data)
        piece_offset = self.recent_start
        for piece in self.recent:
            if type(piece) is int:  # a gap's bytes: nothing to compare
                piece_offset += piece
                continue
            piece_end = piece_offset + len(piece)
            low, high = max(offset, piece_offset), min(end, piece_end)
            if low < high and data[low - offset : high - offset] != piece[low - piece_offset : high - piece_offset]:
                self.overlap_conflicts += 1
                return
            piece_offset = piece_end

    def _deliver(self, ts_ns: int, data: bytes, out: list[StreamItem]) -> None:
        out.append((ts_ns, data))
        self._take(data)

    def _take(self, data: bytes) -> None:
        """Moves the stream past `data`, now delivered, and keeps a reference to it for overlap checks."""
        size = len(data)
        offset = self.next_offset
        recent = self.recent
        if not recent:
            self.recent_start = offset
        recent.append(data)
        recent_bytes = self.recent_bytes + size
        budget = self.budget
        budget.recent_used += size
        kept_limit = RECENT_BYTES  # compiled, a C integer: compared with one, the difference became an int object
        while recent_bytes - len(recent[0]) >= kept_limit:
            dropped = len(recent.pop(0))
            recent_bytes -= dropped
            budget.recent_used -= dropped
            self.recent_start += dropped
            self._drop_leading_gap()
        self.recent_bytes = recent_bytes
        if budget.recent_used > budget.recent_limit:
            self._forget_recent(offset + size)
        self.next_offset = offset + size
        next_seq, modulus = self.next_seq, SEQ_MOD  # C integers when compiled (reassembly.pxd): started
        self.next_seq = (next_seq + size) % modulus
        self.delivered_bytes += size

    def _forget_recent(self, before_offset: int) -> None:
        """Drops the kept delivered pieces (and the gaps between them) that end at or before `before_offset`."""
        recent = self.recent
        count = dropped = 0
        offset = self.recent_start
        for piece in recent:
            size = piece if type(piece) is int else len(piece)
            if offset + size > before_offset:
                break
            offset += size
            if type(piece) is not int:
                dropped += size
            count += 1
        if count == len(recent):  # the usual case: the acknowledged piece was the only one kept
            recent.clear()
        else:
            del recent[:count]
        self.recent_start = offset
        self._drop_leading_gap()
        self.recent_bytes -= dropped
        self.budget.recent_used -= dropped

    def _drop_leading_gap(self) -> None:
        """Keeps a piece first: a gap left first is dropped, the next piece's offset kept in `recent_start`."""
        recent = self.recent
        if recent and type(recent[0]) is int:
            self.recent_start += recent.pop(0)

    def _drain(self, out: list[StreamItem]) -> None:
        while self.pending:
            first = min(self.pending)
            if first > self.next_offset:
                return
            ts_ns, data = self.pending.pop(first)
            self.pending_bytes -= len(data)
            self.budget.used -= len(data)
            if first + len(data) <= self.next_offset:
                continue
            self._deliver(ts_ns, data[self.next_offset - first :], out)

    def _skip_to(self, offset: int, out: list[StreamItem]) -> None:
        missing = offset - self.next_offset
        if missing <= 0:
            return
        out.append(Gap(missing))
        self.gaps += 1
        self.gap_bytes += missing
        if self.recent:  # after the pieces kept, so that those delivered later keep their offsets
            self.recent.append(missing)
        self.next_offset = offset
        self.next_seq = (self.next_seq + missing) % SEQ_MOD

    def _check_finished(self) -> None:
        if self.fin_offset is not None and self.next_offset >= self.fin_offset and not self.pending:
            self.finished = True
