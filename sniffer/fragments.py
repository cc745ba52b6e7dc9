"""IPv4 and IPv6 fragment reassembly: whole datagrams out of fragments in any order.

Fragments are rare on API traffic, so this is plain Python on the side path; the decoder marks them and this
module rebuilds the datagram, which then goes back through the batch decoder. Bounded: at most
`max_datagrams` incomplete datagrams (the oldest is dropped), each at most 64 KiB, and a datagram not completed
within `timeout_s` of packet time is dropped (counted).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass, field

from sniffer.decode.ip import (
    IPPROTO_AH,
    IPPROTO_DSTOPTS,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_MOBILITY,
    IPPROTO_ROUTING,
    IPV4_MORE_FRAGMENTS,
    IPV6_HEADER_LEN,
)

MAX_DATAGRAM = 65535 + 40


@dataclass(slots=True)
class _Pending:
    header: bytes  # the unfragmentable part, taken from the first fragment
    next_header_at: int  # IPv6: where the next-header byte that pointed at the fragment header sits in `header`
    next_header: int  # IPv6: the protocol after the fragment header
    pieces: dict[int, bytes] = field(default_factory=dict)
    total: int | None = None  # payload length, known once the last fragment arrived
    first_ts_ns: int = 0


def ipv4_checksum(header: bytes) -> int:
    """The Internet checksum of an IPv4 header whose checksum field is zero (RFC 1071)."""
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class FragmentReassembler:
    def __init__(self, max_datagrams: int = 1024, timeout_s: float = 30.0) -> None:
        self.max_datagrams = max_datagrams
        self.timeout_ns = int(timeout_s * 1e9)
        self.pending: OrderedDict[tuple, _Pending] = OrderedDict()
        self.reassembled = 0
        self.dropped = 0
        self.malformed = 0

    def add(self, ts_ns: int, datagram: bytes) -> bytes | None:
        """Adds one fragment (a whole IP datagram as captured); returns the rebuilt datagram once complete."""
        self._expire(ts_ns)
        parsed = self._parse_v4(datagram) if datagram[0] >> 4 == 4 else self._parse_v6(datagram)
        if parsed is None:
            self.malformed += 1
            return None
        key, offset, more, payload, header, next_header_at, next_header = parsed
        entry = self.pending.get(key)
        if entry is None:
            while len(self.pending) >= self.max_datagrams:
                self.pending.popitem(last=False)
                self.dropped += 1
            entry = _Pending(header, next_header_at, next_header, first_ts_ns=ts_ns)
            self.pending[key] = entry
        if offset == 0:
            entry.header, entry.next_header_at, entry.next_header = header, next_header_at, next_header
        if offset + len(payload) > MAX_DATAGRAM:
            self.malformed += 1
            return None
        entry.pieces.setdefault(offset, payload)
        if not more:
            entry.total = offset + len(payload)
        return self._complete(key, entry, datagram[0] >> 4)

    def _complete(self, key: tuple, entry: _Pending, version: int) -> bytes | None:
        if entry.total is None or 0 not in entry.pieces:
            return None
        payload = bytearray()
        for offset in sorted(entry.pieces):
            piece = entry.pieces[offset]
            if offset > len(payload):
                return None
            payload += piece[len(payload) - offset :]
        if len(payload) < entry.total:
            return None
        del self.pending[key]
        self.reassembled += 1
        payload = bytes(payload[: entry.total])
        header = bytearray(entry.header)
        if version == 4:
            struct.pack_into("!H", header, 2, len(header) + len(payload))
            struct.pack_into("!H", header, 6, 0)
            struct.pack_into("!H", header, 10, 0)
            struct.pack_into("!H", header, 10, ipv4_checksum(bytes(header)))
        else:
            header[entry.next_header_at] = entry.next_header
            struct.pack_into("!H", header, 4, len(header) - IPV6_HEADER_LEN + len(payload))
        return bytes(header) + payload

    @staticmethod
    def _parse_v4(datagram: bytes):
        if len(datagram) < 20:
            return None
        header_len = (datagram[0] & 0x0F) * 4
        identification, fragment_field = struct.unpack_from("!HH", datagram, 4)
        key = (4, datagram[12:20], identification, datagram[9])
        offset = (fragment_field & 0x1FFF) * 8
        more = bool(fragment_field & IPV4_MORE_FRAGMENTS)
        return key, offset, more, datagram[header_len:], datagram[:header_len], 0, 0

    @staticmethod
    def _parse_v6(datagram: bytes):
        if len(datagram) < IPV6_HEADER_LEN + 8:
            return None
        next_header_at = 6
        position = IPV6_HEADER_LEN
        next_header = datagram[next_header_at]
        while next_header in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, IPPROTO_MOBILITY, IPPROTO_AH):
            if position + 8 > len(datagram):
                return None
            next_header_at = position
            unit, extra = (4, 2) if next_header == IPPROTO_AH else (8, 1)
            next_header = datagram[position]
            position += (datagram[position + 1] + extra) * unit
        if next_header != IPPROTO_FRAGMENT or position + 8 > len(datagram):
            return None
        inner_next, _, offset_field, identification = struct.unpack_from("!BBHI", datagram, position)
        key = (6, datagram[8:40], identification)
        offset = offset_field & 0xFFF8
        more = bool(offset_field & 1)
        return key, offset, more, datagram[position + 8 :], datagram[:position], next_header_at, inner_next

    def _expire(self, now_ns: int) -> None:
        while self.pending:
            key, entry = next(iter(self.pending.items()))
            if now_ns - entry.first_ts_ns <= self.timeout_ns:
                return
            del self.pending[key]
            self.dropped += 1
