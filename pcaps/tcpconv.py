"""Deterministic TCP conversations built with scapy, for the hand-made edge-case captures.

A `Conversation` is one TCP connection between a client and a server. It tracks both sides' next sequence
numbers and hands back network-layer packets (IPv4 or IPv6 with TCP, no link layer) in the order they were
sent; a case may then drop, duplicate, reorder or edit them before they are framed and written.

Invariants:
- every segment a side sends acknowledges everything the other side has sent so far, so a segment dropped
  from a list models capture loss (the hosts saw it), not network loss;
- nothing depends on the clock or on randomness: the same calls give byte-identical packets. Timestamps are
  not set here; the writer assigns them in file order (`pcapfile.records`).

Link-layer framing (`ethernet`, `bsd_null`) and file formats live beside this module, in `pcapfile.py`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Packet

CLIENT = 0
SERVER = 1

DEFAULT_MSS = 1460
DEFAULT_WINDOW = 64240
IPV4_TTL = 64
IPV6_HOP_LIMIT = 64


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

    Sequence numbers start at the given initial sequence numbers; `handshake()` consumes one of each (SYN),
    `fin()` one of the sender's. A conversation that never calls `handshake()` starts mid-stream, with data
    at `client_isn` / `server_isn`.

    `ipv6_extension_headers`, when given, is called for every IPv6 packet and returns the extension headers
    (e.g. hop-by-hop / destination options) to put between the IPv6 header and TCP.
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
        self.next_seq = [client_isn & 0xFFFFFFFF, server_isn & 0xFFFFFFFF]
        self.mss = mss
        self.ipv6_extension_headers = ipv6_extension_headers
        self._ipv4_id = [0x1000 + (client.port & 0xFFF), 0x5000 + (server.port & 0xFFF)]

    def _segment(self, side: int, flags: str, payload: bytes = b"", *, seq: int | None = None,
                 options: Sequence[tuple[str, object]] = ()) -> Packet:
        src, dst = self.endpoints[side], self.endpoints[1 - side]
        ack = self.next_seq[1 - side] if "A" in flags else 0
        tcp = TCP(sport=src.port, dport=dst.port, seq=self.next_seq[side] if seq is None else seq, ack=ack,
                  flags=flags, window=DEFAULT_WINDOW, options=list(options))
        if src.is_ipv6:
            net = IPv6(src=src.ip, dst=dst.ip, hlim=IPV6_HOP_LIMIT)
            if self.ipv6_extension_headers is not None:
                net = net / self.ipv6_extension_headers()
        else:
            net = IP(src=src.ip, dst=dst.ip, ttl=IPV4_TTL, id=self._ipv4_id[side], flags="DF")
            self._ipv4_id[side] = (self._ipv4_id[side] + 1) & 0xFFFF
        packet = net / tcp
        if payload:
            packet = packet / payload
        # Build once so that checksums and lengths are fixed in the returned object.
        return packet.__class__(bytes(packet))

    def handshake(self) -> list[Packet]:
        """SYN, SYN-ACK, ACK."""
        mss_option = [("MSS", self.mss)]
        syn = self._segment(CLIENT, "S", options=mss_option)
        self.next_seq[CLIENT] = (self.next_seq[CLIENT] + 1) & 0xFFFFFFFF
        syn_ack = self._segment(SERVER, "SA", options=mss_option)
        self.next_seq[SERVER] = (self.next_seq[SERVER] + 1) & 0xFFFFFFFF
        return [syn, syn_ack, self._segment(CLIENT, "A")]

    def send(self, side: int, data: bytes, *, segment_size: int | None = None,
             split_at: Sequence[int] = ()) -> list[Packet]:
        """Data segments from `side`: cut at the offsets in `split_at`, and every `segment_size` (default MSS).

        The last segment of the message carries PSH.
        """
        limit = segment_size or self.mss
        cuts = sorted({0, len(data), *split_at})
        pieces = []
        for start, end in zip(cuts, cuts[1:]):
            pieces.extend(data[offset:min(offset + limit, end)] for offset in range(start, end, limit))
        segments = []
        for index, piece in enumerate(pieces):
            flags = "PA" if index == len(pieces) - 1 else "A"
            segments.append(self._segment(side, flags, piece))
            self.next_seq[side] = (self.next_seq[side] + len(piece)) & 0xFFFFFFFF
        return segments

    def resend(self, side: int, stream_offset: int, data: bytes) -> Packet:
        """A segment carrying `data` at `stream_offset` bytes after the side's current sequence origin.

        The sequence number is `origin + stream_offset` where origin is the seq at which `mark()` was taken;
        used for retransmissions and overlapping segments. Does not advance the sequence number.
        """
        seq = (self._origin[side] + stream_offset) & 0xFFFFFFFF
        return self._segment(side, "PA", data, seq=seq)

    def mark(self) -> None:
        """Remember both sides' current sequence numbers as origins for `resend`."""
        self._origin = list(self.next_seq)

    def ack(self, side: int) -> Packet:
        """A pure ACK from `side`."""
        return self._segment(side, "A")

    def fin(self, side: int) -> Packet:
        """FIN-ACK from `side`."""
        segment = self._segment(side, "FA")
        self.next_seq[side] = (self.next_seq[side] + 1) & 0xFFFFFFFF
        return segment

    def close(self) -> list[Packet]:
        """Orderly close started by the client: FIN, FIN, ACK."""
        return [self.fin(CLIENT), self.fin(SERVER), self.ack(CLIENT)]

    def rst(self, side: int) -> Packet:
        """RST-ACK from `side`."""
        return self._segment(side, "RA")


def mac_for(ip: str) -> str:
    """A locally administered MAC derived from the last four bytes of the address."""
    tail = ipaddress.ip_address(ip).packed[-4:]
    return "02:00:" + ":".join(f"{byte:02x}" for byte in tail)


def ethernet(packets: Sequence[Packet], vlan_ids: Sequence[int] = (), *, outer_tpid: int = 0x8100) -> list[bytes]:
    """Ethernet frames around network-layer packets, with 802.1Q tags (outermost first).

    `outer_tpid=0x88a8` makes the first tag an 802.1ad service tag (QinQ); inner tags are 802.1Q.
    """
    frames = []
    for packet in packets:
        src, dst = packet.src, packet.dst
        ethertype = 0x86DD if packet.version == 6 else 0x0800
        if vlan_ids:
            frame = Ether(src=mac_for(src), dst=mac_for(dst), type=outer_tpid)
            tags = [(Dot1AD if outer_tpid == 0x88A8 and i == 0 else Dot1Q)(vlan=vid)
                    for i, vid in enumerate(vlan_ids)]
            for tag in tags[1:]:
                tags[0] = tags[0] / tag
            frame = frame / tags[0] / packet
        else:
            frame = Ether(src=mac_for(src), dst=mac_for(dst), type=ethertype) / packet
        frames.append(bytes(frame))
    return frames
