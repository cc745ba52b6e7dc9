"""Deterministic TCP conversations built with scapy, for the hand-made edge-case captures.

A `Conversation` is one TCP connection between a client and a server. It tracks both sides' next sequence
numbers and hands back network-layer packets (IPv4 or IPv6 with TCP, no link layer) in the order they were
sent; a case may then drop, duplicate, reorder or edit them before they are framed (`ethernet`, `raw_ip`,
`bsd_null`) and written (`pcapfile.py`).

Invariants:
- every segment a side sends acknowledges everything the other side has sent so far, so a segment dropped
  from a list models capture loss (the hosts saw it), not network loss;
- nothing depends on the clock or on randomness: the same calls give byte-identical packets. Timestamps are
  not set here; the writer assigns them in file order.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Packet

CLIENT = 0
SERVER = 1

SEQ_MASK = 0xFFFFFFFF
DEFAULT_MSS = 1460
DEFAULT_WINDOW = 64240
IPV4_TTL = 64
IPV6_HOP_LIMIT = 64

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
TPID_8021Q = 0x8100
TPID_8021AD = 0x88A8


@dataclass(frozen=True)
class Endpoint:
    """An address and a TCP port."""

    ip: str
    port: int

    @property
    def is_ipv6(self) -> bool:
        return ipaddress.ip_address(self.ip).version == 6


class Conversation:
    """One TCP connection; each method returns the packets it sent, in send order.

    Sequence numbers start at the initial sequence numbers; `handshake()` consumes one of each (SYN) and
    `fin()` one of the sender's. A conversation that never calls `handshake()` starts mid-stream, with the
    first data byte at `client_isn` / `server_isn`.

    `ipv6_extension_headers`, when given, is called for every IPv6 packet and returns the extension headers
    (hop-by-hop, destination options, ...) to put between the IPv6 header and TCP.
    """

    def __init__(
        self,
        client: Endpoint,
        server: Endpoint,
        *,
        client_isn: int,
        server_isn: int,
        mss: int = DEFAULT_MSS,
        ipv6_extension_headers: Callable[[], Packet] | None = None,
    ) -> None:
        if client.is_ipv6 != server.is_ipv6:
            raise ValueError("client and server must use the same IP version")
        self.endpoints = (client, server)
        self.next_seq = [client_isn & SEQ_MASK, server_isn & SEQ_MASK]
        self.mss = mss
        self.ipv6_extension_headers = ipv6_extension_headers
        self._ipv4_id = [0x1000 + (client.port & 0xFFF), 0x5000 + (server.port & 0xFFF)]

    def segment(self, side: int, flags: str, payload: bytes = b"", *, seq: int | None = None,
                options: Sequence[tuple[str, object]] = ()) -> Packet:
        """One segment from `side` at `seq` (default: the side's next sequence number); advances nothing."""
        src, dst = self.endpoints[side], self.endpoints[1 - side]
        tcp = TCP(sport=src.port, dport=dst.port, seq=self.next_seq[side] if seq is None else seq & SEQ_MASK,
                  ack=self.next_seq[1 - side] if "A" in flags else 0, flags=flags, window=DEFAULT_WINDOW,
                  options=list(options))
        if src.is_ipv6:
            net = IPv6(src=src.ip, dst=dst.ip, hlim=IPV6_HOP_LIMIT)
            if self.ipv6_extension_headers is not None:
                net = net / self.ipv6_extension_headers()
        else:
            net = IP(src=src.ip, dst=dst.ip, ttl=IPV4_TTL, id=self._ipv4_id[side], flags="DF")
            self._ipv4_id[side] = (self._ipv4_id[side] + 1) & 0xFFFF
        packet = net / tcp / payload if payload else net / tcp
        # Rebuild from bytes so lengths and checksums are computed once and frozen in the object.
        return packet.__class__(bytes(packet))

    def handshake(self) -> list[Packet]:
        """SYN, SYN-ACK, ACK."""
        mss_option = [("MSS", self.mss)]
        syn = self.segment(CLIENT, "S", options=mss_option)
        self.next_seq[CLIENT] = (self.next_seq[CLIENT] + 1) & SEQ_MASK
        syn_ack = self.segment(SERVER, "SA", options=mss_option)
        self.next_seq[SERVER] = (self.next_seq[SERVER] + 1) & SEQ_MASK
        return [syn, syn_ack, self.segment(CLIENT, "A")]

    def send(self, side: int, data: bytes, *, split_at: Sequence[int] = ()) -> list[Packet]:
        """Data segments from `side`, cut at the offsets in `split_at` and at least every MSS bytes.

        The last segment of the message carries PSH.
        """
        cuts = sorted({0, len(data), *split_at})
        pieces = []
        for start, end in pairwise(cuts):
            pieces.extend(data[offset:min(offset + self.mss, end)] for offset in range(start, end, self.mss))
        segments = []
        for index, piece in enumerate(pieces):
            segments.append(self.segment(side, "PA" if index == len(pieces) - 1 else "A", piece))
            self.next_seq[side] = (self.next_seq[side] + len(piece)) & SEQ_MASK
        return segments

    def ack(self, side: int) -> Packet:
        """A pure ACK from `side`."""
        return self.segment(side, "A")

    def fin(self, side: int) -> Packet:
        """FIN-ACK from `side`."""
        fin = self.segment(side, "FA")
        self.next_seq[side] = (self.next_seq[side] + 1) & SEQ_MASK
        return fin

    def close(self) -> list[Packet]:
        """Orderly close started by the client: FIN, FIN, ACK."""
        return [self.fin(CLIENT), self.fin(SERVER), self.ack(CLIENT)]

    def rst(self, side: int) -> Packet:
        """RST-ACK from `side`."""
        return self.segment(side, "RA")

    def exchange(self, request: bytes, response: bytes, *, request_split_at: Sequence[int] = (),
                 response_split_at: Sequence[int] = ()) -> list[Packet]:
        """Request segments, server ACK, response segments, client ACK."""
        return [*self.send(CLIENT, request, split_at=request_split_at), self.ack(SERVER),
                *self.send(SERVER, response, split_at=response_split_at), self.ack(CLIENT)]


def mac_for(ip: str) -> str:
    """A locally administered MAC derived from the last four bytes of the address."""
    tail = ipaddress.ip_address(ip).packed[-4:]
    return "02:00:" + ":".join(f"{byte:02x}" for byte in tail)


def ethernet(packets: Sequence[Packet], vlan_ids: Sequence[int] = (), *,
             outer_tpid: int = TPID_8021Q) -> list[bytes]:
    """Ethernet II frames around network-layer packets, with VLAN tags listed outermost first.

    `outer_tpid=TPID_8021AD` makes the first tag an 802.1ad service tag (QinQ); inner tags are 802.1Q.
    """
    frames = []
    for packet in packets:
        ethertype = ETHERTYPE_IPV6 if packet.version == 6 else ETHERTYPE_IPV4
        tags = []
        for index, vlan_id in enumerate(vlan_ids):
            inner_type = TPID_8021Q if index + 1 < len(vlan_ids) else ethertype
            tag_class = Dot1AD if index == 0 and outer_tpid == TPID_8021AD else Dot1Q
            tags.append(tag_class(vlan=vlan_id, type=inner_type))
        frame = Ether(src=mac_for(packet.src), dst=mac_for(packet.dst),
                      type=outer_tpid if vlan_ids else ethertype)
        for tag in tags:
            frame = frame / tag
        frames.append(bytes(frame / packet))
    return frames


def raw_ip(packets: Sequence[Packet]) -> list[bytes]:
    """Frames for LINKTYPE_RAW (101): the IP packet itself, version told by its first nibble."""
    return [bytes(packet) for packet in packets]


def bsd_null(packets: Sequence[Packet], ipv6_family: int, *, byte_order: str = "<") -> list[bytes]:
    """Frames for LINKTYPE_NULL (0): a 4-byte address family in the capturing host's byte order, then IP.

    AF_INET is 2 everywhere; AF_INET6 differs by OS (24 NetBSD/OpenBSD, 28 FreeBSD, 30 Darwin), hence
    `ipv6_family`.
    """
    af_inet = 2
    return [struct.pack(byte_order + "I", ipv6_family if packet.version == 6 else af_inet) + bytes(packet)
            for packet in packets]
