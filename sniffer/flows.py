"""The TCP flow table: one Flow per connection, with its two reassemblers, two parsers and a correlator.

Memory is bounded by configuration: at most `max_flows` flows (the least recently active one is evicted, its
transactions emitted with what they have), at most `max_buffered_bytes` of out-of-order data per direction and
`max_total_buffered_bytes` for all flows together, and the parsers' own bounds. Idle flows expire after
`idle_timeout_s` of packet time, never wall-clock time.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from heapq import heapify, heappop, heappush, heapreplace

from parsers.correlate import Exchange, TransactionCorrelator
from parsers.http1 import Http1DirectionParser, ParserLimits
from parsers.messages import ROLE_REQUESTS, ROLE_RESPONSES, ROLE_UNKNOWN, MessageEnd, MessageHead, MessageSink
from sniffer.reassembly import SEQ_MOD, Gap, ReassemblyBudget, StreamItem, StreamReassembler, seq_delta


@dataclass(frozen=True, slots=True)
class FlowLimits:
    max_flows: int = 100_000
    max_buffered_bytes: int = 1 << 20
    max_total_buffered_bytes: int = 256 << 20
    idle_timeout_s: float = 120.0
    max_pending_requests: int = 256
    parser: ParserLimits = field(default_factory=ParserLimits)


@dataclass(slots=True)
class FlowStats:
    tcp_flows: int = 0
    http_flows: int = 0
    non_http_flows: int = 0
    evictions: int = 0
    timeouts: int = 0
    gaps: int = 0
    gap_bytes: int = 0
    parse_errors: int = 0
    retransmitted_bytes: int = 0
    overlap_conflicts: int = 0
    tunnel_bytes: int = 0


@lru_cache(maxsize=4096)
def address_text(address: bytes) -> str:
    """IPv4-mapped addresses print as dotted quads, everything else as IPv6. Cached: a server's address (and a
    busy client's) recurs in every connection, and one string then serves them all."""
    ip = ipaddress.IPv6Address(address)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped is not None else str(ip)


@dataclass
class Endpoint:
    """One side of a connection. Compiled, an extension type (sniffer/flows.pxd) whose fields the transaction
    builder reads as C struct fields; `__slots__` written out, since Cython's dataclasses do not take
    `slots=True`."""

    __slots__ = ("ip", "port")
    ip: str
    port: int


class _DirectionSink(MessageSink):
    """Binds one direction's parser to the flow's correlator and tells the flow which direction it is."""

    __slots__ = ("flow", "direction", "correlator")

    def __init__(self, flow: Flow, direction: int) -> None:
        self.flow = flow
        self.direction = direction
        self.correlator = flow.correlator

    def on_head(self, role: int, head: MessageHead) -> None:
        self.flow.http_seen()
        self.correlator.on_head(role, head)

    def on_interim(self, head: MessageHead) -> None:
        self.correlator.on_interim(head)

    def on_end(self, role: int, end: MessageEnd) -> None:
        self.correlator.on_end(role, end)

    def on_role(self, role: int) -> None:
        self.flow.role_found(self.direction, role)

    def on_verdict(self, looks_like_http: bool) -> None:
        self.flow.verdict(looks_like_http)

    def response_context(self) -> tuple[bytes, bool]:
        return self.correlator.response_context()


class Flow:
    """One TCP connection. Direction 0 is from endpoint A (the first sender seen) to B, direction 1 back."""

    __slots__ = (
        "key",
        "a_key",
        "a",
        "b",
        "limits",
        "reassemblers",
        "parsers",
        "client_direction",
        "correlator",
        "last_ts_ns",
        "last_position",
        "is_http",
        "closed",
        "emit",
        "syn_seen",
        "stats",
    )

    def __init__(
        self,
        key: int,
        a_key: int,
        a: Endpoint,
        b: Endpoint,
        limits: FlowLimits,
        emit: Callable[[Flow, Exchange], None],
        stats: FlowStats,
        budget: ReassemblyBudget,
    ) -> None:
        self.key = key
        self.a_key = a_key
        self.a = a
        self.b = b
        self.limits = limits
        self.emit = emit
        self.stats = stats
        self.reassemblers = (
            StreamReassembler(limits.max_buffered_bytes, budget),
            StreamReassembler(limits.max_buffered_bytes, budget),
        )
        self.parsers: list[Http1DirectionParser | None] = [None, None]
        self.client_direction: int | None = None
        self.is_http: bool | None = None
        self.closed = False
        self.syn_seen = 0  # bit d: direction d's SYN was seen (an int, not a list: 72 bytes less per flow)
        self.last_ts_ns = 0
        # Where in the input (Pipeline.position) its last segment came: the flow table's least-recently-used order
        # is the order of these, which is the order flows close in at the end of the input (see sniffer.sharded).
        self.last_position = 0
        self.correlator = TransactionCorrelator(
            emit=self._emit_exchange,
            on_switch=self._switch_decided,
            max_pending=limits.max_pending_requests,
        )

    def _emit_exchange(self, exchange: Exchange) -> None:
        # A method, not a functools.partial of `emit`: a partial with its argument tuple and keyword dict weighs
        # 128 bytes more, some 25 MB with 200,000 flows open.
        self.emit(self, exchange)

    # ---- roles ------------------------------------------------------------------------------------------------

    def client(self) -> Endpoint:
        return self.b if self.client_direction == 1 else self.a

    def server(self) -> Endpoint:
        return self.a if self.client_direction == 1 else self.b

    def role_found(self, direction: int, role: int) -> None:
        self.client_direction = direction if role == ROLE_REQUESTS else 1 - direction
        other = self.parsers[1 - direction]
        if other is not None:
            other.set_role(ROLE_RESPONSES if role == ROLE_REQUESTS else ROLE_REQUESTS)
        self.http_seen()

    def http_seen(self) -> None:
        if self.is_http is None:
            self.is_http = True
            self.stats.http_flows += 1

    def verdict(self, looks_like_http: bool) -> None:
        """The client's first bytes were judged: a flow whose client does not speak HTTP is not HTTP."""
        if not looks_like_http and self.is_http is None:
            self.not_http()

    def not_http(self) -> None:
        self.stats.non_http_flows += 1
        self.is_http = False
        for parser in self.parsers:
            if parser is not None:
                parser.give_up()

    def _switch_decided(self, switched: bool) -> None:
        if self.client_direction is not None:
            parser = self.parsers[self.client_direction]
            if parser is not None:
                parser.resolve_switch(switched)

    def _role_of(self, direction: int) -> int:
        if self.client_direction is None:
            return ROLE_UNKNOWN
        return ROLE_REQUESTS if direction == self.client_direction else ROLE_RESPONSES

    def _parser(self, direction: int, starts_with_gap: bool) -> Http1DirectionParser | None:
        """The direction's parser, made at its first delivery: it starts at a message boundary only when the
        handshake was seen and the stream's first bytes were captured."""
        parser = self.parsers[direction]
        if parser is None and self.is_http is not False:
            at_start = bool(self.syn_seen >> direction & 1) and not starts_with_gap
            parser = Http1DirectionParser(
                self._role_of(direction), _DirectionSink(self, direction), self.limits.parser, at_start
            )
            self.parsers[direction] = parser
        return parser

    # ---- segments ---------------------------------------------------------------------------------------------

    def on_syn(self, direction: int, seq: int, has_ack: bool) -> None:
        if not self.syn_seen >> direction & 1:
            self.syn_seen |= 1 << direction
            self.reassemblers[direction].on_syn(seq)
            if self.client_direction is None:
                self.client_direction = 1 - direction if has_ack else direction

    def on_segment(self, direction: int, ts_ns: int, seq: int, ack: int, data: bytes, fin: bool, missing: int) -> bool:
        """Takes one segment of direction `direction`; returns whether the flow is now finished (both streams
        ended and delivered). `ack` is -1 when the segment carries no ACK (compiled, a C integer: flows.pxd)."""
        self.last_ts_ns = ts_ns
        reassembler = self.reassemblers[direction]
        if reassembler.take_next(seq, data, fin, missing):
            # The next bytes of the stream, straight to the parser.
            parser = self.parsers[direction]
            if parser is None:
                parser = self._parser(direction, False)
            if parser is not None:
                parser.feed(ts_ns, data)
        else:
            items: list[StreamItem] = []
            reassembler.on_segment(ts_ns, seq, data, fin, items, missing)
            if items:
                self._deliver(direction, items)
        if ack >= 0:
            peer = self.reassemblers[1 - direction]
            if peer.pending:
                peer_items: list[StreamItem] = []
                peer.on_peer_ack(ack, peer_items)
                if peer_items:
                    self._deliver(1 - direction, peer_items)
            else:  # nothing buffered, so nothing the ACK can turn into a gap
                peer.forget_acked(ack)
        # The streams' `finished` read through typed locals: compiled, C fields, where on an item of the tuple it was
        # looked up by name.
        if fin or reassembler.finished:
            self._maybe_fin(direction)
        if not reassembler.finished:
            return False
        other = self.reassemblers[1 - direction]
        return bool(other.finished)

    def _deliver(self, direction: int, items: list[StreamItem]) -> None:
        parser = self._parser(direction, type(items[0]) is Gap)
        if parser is None:
            return
        for item in items:
            if type(item) is Gap:
                parser.gap(item.nbytes)
            else:
                parser.feed(item[0], item[1])
            if self.is_http is False:
                return

    def _maybe_fin(self, direction: int) -> None:
        reassembler = self.reassemblers[direction]
        if reassembler.finished:
            parser = self.parsers[direction]
            if parser is not None:
                parser.fin()

    def carried_data(self) -> bool:
        return self.reassemblers[0].delivered_bytes + self.reassemblers[1].delivered_bytes > 0

    def close(self) -> None:
        """Flushes both directions and emits everything still open; nothing already captured is lost."""
        if self.closed:
            return
        self.closed = True
        for direction in (0, 1):
            items: list[StreamItem] = []
            reassembler = self.reassemblers[direction]
            reassembler.flush(items)
            if items:
                self._deliver(direction, items)
            parser = self.parsers[direction]
            if parser is not None:
                parser.fin()
        self.correlator.close()
        stats = self.stats
        for direction in (0, 1):
            reassembler = self.reassemblers[direction]
            stats.gaps += reassembler.gaps
            stats.gap_bytes += reassembler.gap_bytes
            stats.retransmitted_bytes += reassembler.retransmitted_bytes
            stats.overlap_conflicts += reassembler.overlap_conflicts
            parser = self.parsers[direction]
            if parser is not None:
                stats.parse_errors += parser.parse_errors
                stats.tunnel_bytes += parser.tunnel_bytes


# Entries of the activity heap beyond twice the open flows (entries of flows removed since) after which it is built
# again from the open flows alone.
HEAP_SLACK = 1024


class FlowTable:
    """Flows by their direction-independent key. Idle flows expire, and a full table evicts, least recently active
    first: in the order of where in the input each flow's last segment came (`Flow.last_position`, which the
    pipeline sets per segment).

    That order is kept in a heap of (position, entry number, flow), renewed lazily: a segment only sets its flow's
    position, and an entry whose position is out of date is renewed when it comes to the top. The top entry that is
    up to date is then the least recently active flow (every other flow's position is at least its entry's). Before,
    an OrderedDict had each segment move its flow to the end: two method calls by name per segment (some 900
    instructions compiled)."""

    __slots__ = ("budget", "by_activity", "emit", "entries_made", "flows", "idle_timeout_ns", "limits",
                 "stale_retransmissions", "stats", "tombstones")  # fmt: skip

    def __init__(self, limits: FlowLimits, emit: Callable[[Flow, Exchange], None]) -> None:
        self.limits = limits
        self.emit = emit
        self.flows: dict[int, Flow] = {}
        # Each open flow has one entry; a flow removed leaves its entry until it comes to the top (or the heap is
        # built again). The entry number breaks ties (there are none: a position is one segment's, of one flow).
        self.by_activity: list[tuple[int, int, Flow]] = []
        self.entries_made = 0
        self.budget = ReassemblyBudget(limits.max_total_buffered_bytes)
        # Flows closed by timeout or eviction, remembered (at most max_flows of them) so that a late
        # retransmission of bytes they already delivered is not taken for a new connection.
        self.tombstones: OrderedDict[int, tuple[int, int, int]] = OrderedDict()
        self.stale_retransmissions = 0
        self.stats = FlowStats()
        self.idle_timeout_ns = int(limits.idle_timeout_s * 1e9)

    def __len__(self) -> int:
        return len(self.flows)

    def create(self, key: int, a_key: int, a: Endpoint, b: Endpoint, position: int) -> Flow:
        """A new flow, whose first segment came at `position` in the input."""
        self.tombstones.pop(key, None)
        while len(self.flows) >= self.limits.max_flows:
            oldest = self._least_recent()
            heappop(self.by_activity)
            del self.flows[oldest.key]
            self.stats.evictions += 1
            self._bury(oldest)
        flow = Flow(key, a_key, a, b, self.limits, self.emit, self.stats, self.budget)
        flow.last_position = position
        self.flows[key] = flow
        if len(self.by_activity) > 2 * len(self.flows) + HEAP_SLACK:
            self._rebuild_heap()
        heappush(self.by_activity, (position, self._entry_number(), flow))
        self.stats.tcp_flows += 1
        return flow

    def remove(self, flow: Flow) -> None:
        self.flows.pop(flow.key, None)
        flow.close()

    def expire(self, now_ns: int) -> None:
        """Closes flows idle for longer than the timeout, measured in packet time."""
        deadline = now_ns - self.idle_timeout_ns
        while True:
            flow = self._least_recent()
            if flow is None or flow.last_ts_ns >= deadline:
                return
            heappop(self.by_activity)
            del self.flows[flow.key]
            self.stats.timeouts += 1
            self._bury(flow)

    def _least_recent(self) -> Flow | None:
        """The open flow whose last segment came first, its entry on top of the heap; None if none is open."""
        heap, flows = self.by_activity, self.flows
        while heap:
            position, _, flow = heap[0]
            if flows.get(flow.key) is not flow:
                heappop(heap)  # removed since
            elif flow.last_position != position:
                heapreplace(heap, (flow.last_position, self._entry_number(), flow))
            else:
                return flow
        return None

    def _entry_number(self) -> int:
        self.entries_made += 1
        return self.entries_made

    def _rebuild_heap(self) -> None:
        """The heap of the open flows' entries alone."""
        self.by_activity = [(flow.last_position, self._entry_number(), flow) for flow in self.flows.values()]
        heapify(self.by_activity)

    def _bury(self, flow: Flow) -> None:
        flow.close()
        self.tombstones[flow.key] = (flow.a_key, flow.reassemblers[0].next_seq, flow.reassemblers[1].next_seq)
        while len(self.tombstones) > self.limits.max_flows:
            self.tombstones.popitem(last=False)

    def is_stale_retransmission(self, key: int, endpoint_key: int, seq: int, length: int) -> bool:
        """True when a segment for no open flow only repeats bytes a closed flow already delivered."""
        tombstone = self.tombstones.get(key)
        if tombstone is None or not length:
            return False
        next_seq = tombstone[1] if endpoint_key == tombstone[0] else tombstone[2]
        if next_seq < 0 or seq_delta((seq + length) % SEQ_MOD, next_seq) > 0:  # not started, or past it
            return False
        self.stale_retransmissions += 1
        return True

    def oldest_pending_ts(self) -> int | None:
        """Packet time of the oldest request that is not yet a transaction: queued in a correlator, or a head
        still being read. O(flows): called once per interval close, not per packet."""
        oldest = None
        for flow in self.flows.values():
            queue = flow.correlator.queue
            if queue and queue[0].request is not None:
                candidate = queue[0].request.ts_ns
                if oldest is None or candidate < oldest:
                    oldest = candidate
            if flow.client_direction is not None:
                parser = flow.parsers[flow.client_direction]
                if parser is not None and parser.head is None and parser.message_ts:
                    if oldest is None or parser.message_ts < oldest:
                        oldest = parser.message_ts
        return oldest

    def close_all(self) -> None:
        """Closes every flow, least recently active first."""
        for flow in sorted(self.flows.values(), key=_last_position):
            del self.flows[flow.key]
            flow.close()
        self.by_activity.clear()


def _last_position(flow: Flow) -> int:
    return flow.last_position
