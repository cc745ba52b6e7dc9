"""The batch decoder: link, IP and TCP headers of every frame of a PacketBatch in one numba kernel.

Every frame is decoded where it lies in the block; nothing is copied. A frame whose headers claim more bytes than
were captured, or lengths that contradict each other, is marked KIND_MALFORMED and counted, never fatal.
IPv4 and IPv6 fragments are marked KIND_FRAGMENT with their IP header's offset so the fragment reassembler can
rebuild the datagram and feed it back through this decoder as a raw-IP frame.
"""

from __future__ import annotations

import numpy as np

from sniffer.aot import kernel
from sniffer.batch import KIND_FRAGMENT, KIND_MALFORMED, KIND_OTHER, KIND_TCP, DecodedBatch, PacketBatch
from sniffer.decode.ip import (
    IPPROTO_AH,
    IPPROTO_DSTOPTS,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_MOBILITY,
    IPPROTO_ROUTING,
    IPPROTO_TCP,
    IPV4_DST_OFFSET,
    IPV4_FLAGS_FRAGMENT_OFFSET,
    IPV4_FRAGMENT_OFFSET_MASK,
    IPV4_MIN_HEADER_LEN,
    IPV4_MORE_FRAGMENTS,
    IPV4_PROTOCOL_OFFSET,
    IPV4_SRC_OFFSET,
    IPV4_TOTAL_LENGTH_OFFSET,
    IPV6_DST_OFFSET,
    IPV6_HEADER_LEN,
    IPV6_NEXT_HEADER_OFFSET,
    IPV6_PAYLOAD_LENGTH_OFFSET,
    IPV6_SRC_OFFSET,
)
from sniffer.decode.link import (
    AF_INET,
    ETHERNET_HEADER_LEN,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    ETHERTYPE_OFFSET,
    ETHERTYPE_QINQ,
    ETHERTYPE_QINQ_OLD,
    ETHERTYPE_VLAN,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_DLT,
    LINKTYPE_RAW_DLT_OPENBSD,
    NULL_HEADER_LEN,
    SLL2_HEADER_LEN,
    SLL2_PROTOCOL_OFFSET,
    SLL_HEADER_LEN,
    SLL_PROTOCOL_OFFSET,
    VLAN_TAG_LEN,
)
from sniffer.decode.tcp import (
    TCP_ACK_OFFSET,
    TCP_DATA_OFFSET_OFFSET,
    TCP_DST_PORT_OFFSET,
    TCP_FLAGS_OFFSET,
    TCP_MIN_HEADER_LEN,
    TCP_SEQ_OFFSET,
    TCP_SRC_PORT_OFFSET,
)

NO_NETWORK = 0  # the link layer carries something other than IP
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


@kernel(inline=True)
def _be16(buf, pos):
    return (np.int64(buf[pos]) << 8) | np.int64(buf[pos + 1])


@kernel(inline=True)
def _be32(buf, pos):
    return (np.int64(buf[pos]) << 24) | (np.int64(buf[pos + 1]) << 16) | (np.int64(buf[pos + 2]) << 8) | buf[pos + 3]


@kernel(inline=True)
def _mix64(x):
    """splitmix64's finaliser: spreads every input bit over the whole key."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


@kernel(inline=True)
def _endpoint_key(addr, port):
    h = FNV_OFFSET
    for k in range(16):
        h = (h ^ np.uint64(addr[k])) * FNV_PRIME
    h = (h ^ np.uint64(port & 0xFF)) * FNV_PRIME
    h = (h ^ np.uint64(port >> 8)) * FNV_PRIME
    return _mix64(h)


@kernel(inline=True)
def _network_start(buf, start, end, link_type):
    """Returns (ethertype-like protocol, offset of the network header); protocol NO_NETWORK when not IP."""
    pos = start
    proto = NO_NETWORK
    if link_type == LINKTYPE_ETHERNET:
        if end - start < ETHERNET_HEADER_LEN:
            return NO_NETWORK, pos
        proto = _be16(buf, start + ETHERTYPE_OFFSET)
        pos = start + ETHERNET_HEADER_LEN
    elif link_type == LINKTYPE_LINUX_SLL:
        if end - start < SLL_HEADER_LEN:
            return NO_NETWORK, pos
        proto = _be16(buf, start + SLL_PROTOCOL_OFFSET)
        pos = start + SLL_HEADER_LEN
    elif link_type == LINKTYPE_LINUX_SLL2:
        if end - start < SLL2_HEADER_LEN:
            return NO_NETWORK, pos
        proto = _be16(buf, start + SLL2_PROTOCOL_OFFSET)
        pos = start + SLL2_HEADER_LEN
    elif link_type == LINKTYPE_NULL or link_type == LINKTYPE_LOOP:
        if end - start < NULL_HEADER_LEN:
            return NO_NETWORK, pos
        # The family is in the writer's byte order (NULL) or network order (LOOP): the non-zero end tells.
        if buf[start] != 0:
            family = np.int64(buf[start])
        else:
            family = np.int64(buf[start + 3])
        pos = start + NULL_HEADER_LEN
        if family == AF_INET:
            return ETHERTYPE_IPV4, pos
        if family == 10 or family == 24 or family == 28 or family == 30:
            return ETHERTYPE_IPV6, pos
        return NO_NETWORK, pos
    elif link_type == LINKTYPE_RAW or link_type == LINKTYPE_RAW_DLT or link_type == LINKTYPE_RAW_DLT_OPENBSD:
        if end - start < 1:
            return NO_NETWORK, pos
        version = buf[start] >> 4
        if version == 4:
            return ETHERTYPE_IPV4, pos
        if version == 6:
            return ETHERTYPE_IPV6, pos
        return NO_NETWORK, pos
    elif link_type == LINKTYPE_IPV4:
        return ETHERTYPE_IPV4, pos
    elif link_type == LINKTYPE_IPV6:
        return ETHERTYPE_IPV6, pos
    else:
        return NO_NETWORK, pos
    # 802.1Q and QinQ tags, stacked any number of times.
    while proto == ETHERTYPE_VLAN or proto == ETHERTYPE_QINQ or proto == ETHERTYPE_QINQ_OLD:
        if pos + VLAN_TAG_LEN > end:
            return NO_NETWORK, pos
        proto = _be16(buf, pos + 2)
        pos += VLAN_TAG_LEN
    return proto, pos


@kernel(
    # the frames and their rows
    "readonly u1[::1]", "i8[::1]", "i4[::1]", "i4[::1]", "i4[::1]",
    # the output columns, in DecodedBatch's order
    "u1[::1]", "u1[::1]", "i8[::1]", "i8[::1]", "u1[:, ::1]", "u1[:, ::1]", "u2[::1]", "u2[::1]", "u4[::1]", "u4[::1]",
    "u1[::1]", "i8[::1]", "i4[::1]", "i4[::1]", "u8[::1]", "u8[::1]",
)  # fmt: skip
def decode_kernel(
    frames,
    frame_offsets,
    captured_lengths,
    wire_lengths,
    link_types,
    kind,
    ip_version,
    ip_offsets,
    ip_ends,
    src_addr,
    dst_addr,
    src_port,
    dst_port,
    seq,
    ack,
    tcp_flags,
    payload_offsets,
    payload_lengths,
    payload_missing,
    flow_keys,
    endpoint_keys,
):
    """Decodes every frame into the output columns (see DecodedBatch); returns nothing, fills everything."""
    for i in range(len(frame_offsets)):
        start = frame_offsets[i]
        end = start + captured_lengths[i]
        kind[i] = KIND_OTHER
        ip_version[i] = 0
        payload_lengths[i] = 0
        payload_missing[i] = 0
        tcp_flags[i] = 0
        proto, pos = _network_start(frames, start, end, link_types[i])
        ip_offsets[i] = pos
        if proto == ETHERTYPE_IPV4:
            if pos + IPV4_MIN_HEADER_LEN > end or frames[pos] >> 4 != 4:
                kind[i] = KIND_MALFORMED
                continue
            header_len = (frames[pos] & 0x0F) * 4
            total_len = _be16(frames, pos + IPV4_TOTAL_LENGTH_OFFSET)
            if header_len < IPV4_MIN_HEADER_LEN or total_len < header_len or pos + header_len > end:
                kind[i] = KIND_MALFORMED
                continue
            ip_version[i] = 4
            for k in range(10):
                src_addr[i, k] = 0
                dst_addr[i, k] = 0
            src_addr[i, 10] = 0xFF
            src_addr[i, 11] = 0xFF
            dst_addr[i, 10] = 0xFF
            dst_addr[i, 11] = 0xFF
            for k in range(4):
                src_addr[i, 12 + k] = frames[pos + IPV4_SRC_OFFSET + k]
                dst_addr[i, 12 + k] = frames[pos + IPV4_DST_OFFSET + k]
            # Trailing Ethernet padding lies beyond the datagram; a snap length may end it early, and the bytes
            # it cut off are missing payload that reassembly reports as a gap.
            datagram_end = pos + total_len
            missing = 0
            if datagram_end > end:
                missing = datagram_end - end
                datagram_end = end
            ip_ends[i] = datagram_end
            fragment_field = _be16(frames, pos + IPV4_FLAGS_FRAGMENT_OFFSET)
            if (fragment_field & IPV4_MORE_FRAGMENTS) != 0 or (fragment_field & IPV4_FRAGMENT_OFFSET_MASK) != 0:
                kind[i] = KIND_FRAGMENT
                continue
            if frames[pos + IPV4_PROTOCOL_OFFSET] != IPPROTO_TCP:
                continue
            transport = pos + header_len
        elif proto == ETHERTYPE_IPV6:
            if pos + IPV6_HEADER_LEN > end or frames[pos] >> 4 != 6:
                kind[i] = KIND_MALFORMED
                continue
            ip_version[i] = 6
            for k in range(16):
                src_addr[i, k] = frames[pos + IPV6_SRC_OFFSET + k]
                dst_addr[i, k] = frames[pos + IPV6_DST_OFFSET + k]
            datagram_end = pos + IPV6_HEADER_LEN + _be16(frames, pos + IPV6_PAYLOAD_LENGTH_OFFSET)
            missing = 0
            if datagram_end > end:
                missing = datagram_end - end
                datagram_end = end
            ip_ends[i] = datagram_end
            next_header = frames[pos + IPV6_NEXT_HEADER_OFFSET]
            transport = pos + IPV6_HEADER_LEN
            malformed = False
            fragment = False
            while True:
                if (
                    next_header == IPPROTO_HOPOPTS
                    or next_header == IPPROTO_ROUTING
                    or next_header == IPPROTO_DSTOPTS
                    or next_header == IPPROTO_MOBILITY
                ):
                    if transport + 8 > datagram_end:
                        malformed = True
                        break
                    ext_len = (np.int64(frames[transport + 1]) + 1) * 8
                    next_header = frames[transport]
                    transport += ext_len
                elif next_header == IPPROTO_AH:
                    if transport + 8 > datagram_end:
                        malformed = True
                        break
                    ext_len = (np.int64(frames[transport + 1]) + 2) * 4
                    next_header = frames[transport]
                    transport += ext_len
                elif next_header == IPPROTO_FRAGMENT:
                    fragment = True
                    break
                else:
                    break
            if malformed or transport > datagram_end:
                kind[i] = KIND_MALFORMED
                continue
            if fragment:
                kind[i] = KIND_FRAGMENT
                continue
            if next_header != IPPROTO_TCP:
                continue
        else:
            continue
        if transport + TCP_MIN_HEADER_LEN > datagram_end:
            kind[i] = KIND_MALFORMED
            continue
        data_offset = (frames[transport + TCP_DATA_OFFSET_OFFSET] >> 4) * 4
        if data_offset < TCP_MIN_HEADER_LEN or transport + data_offset > datagram_end:
            kind[i] = KIND_MALFORMED
            continue
        kind[i] = KIND_TCP
        sport = _be16(frames, transport + TCP_SRC_PORT_OFFSET)
        dport = _be16(frames, transport + TCP_DST_PORT_OFFSET)
        src_port[i] = sport
        dst_port[i] = dport
        seq[i] = _be32(frames, transport + TCP_SEQ_OFFSET)
        ack[i] = _be32(frames, transport + TCP_ACK_OFFSET)
        tcp_flags[i] = frames[transport + TCP_FLAGS_OFFSET] & 0x3F
        payload_offsets[i] = transport + data_offset
        payload_lengths[i] = datagram_end - (transport + data_offset)
        payload_missing[i] = missing
        source_key = _endpoint_key(src_addr[i], sport)
        destination_key = _endpoint_key(dst_addr[i], dport)
        endpoint_keys[i] = source_key
        if source_key < destination_key:
            flow_keys[i] = _mix64(source_key ^ (destination_key * FNV_PRIME))
        else:
            flow_keys[i] = _mix64(destination_key ^ (source_key * FNV_PRIME))


def decode_batch(batch: PacketBatch) -> DecodedBatch:
    """Decodes a PacketBatch into columns; allocates the outputs, runs the kernel once over all frames."""
    n = len(batch)
    decoded = DecodedBatch(
        kind=np.empty(n, np.uint8),
        ip_version=np.empty(n, np.uint8),
        ip_offsets=np.empty(n, np.int64),
        ip_ends=np.zeros(n, np.int64),
        src_addr=np.zeros((n, 16), np.uint8),
        dst_addr=np.zeros((n, 16), np.uint8),
        src_port=np.zeros(n, np.uint16),
        dst_port=np.zeros(n, np.uint16),
        seq=np.zeros(n, np.uint32),
        ack=np.zeros(n, np.uint32),
        tcp_flags=np.empty(n, np.uint8),
        payload_offsets=np.zeros(n, np.int64),
        payload_lengths=np.empty(n, np.int32),
        payload_missing=np.empty(n, np.int32),
        flow_keys=np.zeros(n, np.uint64),
        endpoint_keys=np.zeros(n, np.uint64),
    )
    decode_kernel(
        batch.frames,
        batch.frame_offsets,
        batch.captured_lengths,
        batch.wire_lengths,
        batch.link_types,
        decoded.kind,
        decoded.ip_version,
        decoded.ip_offsets,
        decoded.ip_ends,
        decoded.src_addr,
        decoded.dst_addr,
        decoded.src_port,
        decoded.dst_port,
        decoded.seq,
        decoded.ack,
        decoded.tcp_flags,
        decoded.payload_offsets,
        decoded.payload_lengths,
        decoded.payload_missing,
        decoded.flow_keys,
        decoded.endpoint_keys,
    )
    return decoded
