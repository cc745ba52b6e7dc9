"""Build the hand-made edge-case captures in pcaps/ (`edge_*`), byte-identical on every run.

Usage (from the project root, no privileges needed, nothing is sent on any network):

    /work/venv/bin/python pcaps/make_edge_cases.py [OUTPUT_DIR]

Each case builds small HTTP/1.1 conversations with `tcpconv.Conversation` (explicit sequence numbers,
acknowledgements and flags), then drops, duplicates, reorders or edits segments, frames them for a link type
and writes them with `pcapfile` (hand-written pcap / pcapng). Addresses are documentation or private ones
(10.0.0.0/8, 2001:db8::/32, api.example.com); timestamps are fixed and assigned in file order.

Every case returns the HTTP transactions a correct parser must find, as (method, uri, status) triples in
request order (status None: no response on the wire); the script prints them, and pcaps/MANIFEST.md lists
them for the tests.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

from pcapfile import (
    LINKTYPE_ETHERNET,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    pcap_bytes,
    pcapng_enhanced_packet,
    pcapng_interface,
    pcapng_section_header,
    pcapng_simple_packet,
    timeline,
)
from scapy.layers.inet import IP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, PadN, fragment6
from tcpconv import (
    CLIENT,
    SERVER,
    TPID_8021AD,
    Conversation,
    Endpoint,
    bsd_null,
    ethernet,
    raw_ip,
)

HOST = "api.example.com"
START_NS = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
STEP_NS = 1_000_000
JUMBO_MSS = 8960  # lets one TCP segment exceed the link MTU so that IP must fragment it

Transaction = tuple[str, str, int | None]


def request(method: str, uri: str, *, headers: tuple[tuple[str, str], ...] = (), body: bytes = b"",
            version: str = "HTTP/1.1", host: str = HOST) -> bytes:
    """An HTTP request; Content-Length is added when there is a body."""
    lines = [f"{method} {uri} {version}", f"Host: {host}", "User-Agent: apispy-edge/1.0", "Accept: */*"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def response(status: int, reason: str, *, headers: tuple[tuple[str, str], ...] = (), body: bytes = b"",
             content_length: bool = True, version: str = "HTTP/1.1") -> bytes:
    """An HTTP response; Content-Length is added unless `content_length` is False."""
    lines = [f"{version} {status} {reason}", "Server: edge/1.0", "Date: Tue, 14 Nov 2023 22:13:20 GMT"]
    lines += [f"{name}: {value}" for name, value in headers]
    if content_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_body(label: str, size: int) -> bytes:
    """A JSON object of exactly `size` bytes whose filler tells the byte offsets apart."""
    head = f'{{"case": "{label}", "filler": "'.encode()
    tail = b'"}'
    filler = bytes(0x61 + (index // 10) % 26 for index in range(size - len(head) - len(tail)))
    return head + filler + tail


def json_response(label: str, size: int, status: int = 200, reason: str = "OK") -> bytes:
    return response(status, reason, headers=(("Content-Type", "application/json"),), body=json_body(label, size))


def ethernet_pcap(packets: list, start_ns: int = START_NS) -> bytes:
    return pcap_bytes(ethernet(packets), timeline(len(packets), start_ns, STEP_NS), LINKTYPE_ETHERNET)


def conversation(client_port: int, *, client: str = "10.0.0.1", server: str = "10.0.0.2", server_port: int = 80,
                 client_isn: int | None = None, server_isn: int | None = None, **kwargs) -> Conversation:
    """A conversation with initial sequence numbers derived from the client port (deterministic)."""
    return Conversation(Endpoint(client, client_port), Endpoint(server, server_port),
                        client_isn=client_port * 100_003 if client_isn is None else client_isn,
                        server_isn=client_port * 700_001 if server_isn is None else server_isn, **kwargs)


def case_reordered(out: Path) -> list[Transaction]:
    """Request and response segments delivered out of order (the file order is the arrival order)."""
    conv = conversation(40001)
    packets = conv.handshake()
    get_segments = conv.send(CLIENT, request("GET", "/reordered/1"), split_at=(10, 30))
    packets += [get_segments[1], get_segments[0], get_segments[2], conv.ack(SERVER)]
    body_segments = conv.send(SERVER, json_response("reordered-1", 2000), split_at=(60, 700, 1400))
    packets += [body_segments[0], body_segments[2], body_segments[1], body_segments[3], conv.ack(CLIENT)]
    post_segments = conv.send(CLIENT, request("POST", "/reordered/2", body=json_body("reordered-2", 500)),
                              split_at=(200,))
    packets += [post_segments[1], post_segments[0], conv.ack(SERVER)]
    packets += [*conv.send(SERVER, json_response("reordered-2", 80, 201, "Created")), conv.ack(CLIENT)]
    packets += conv.close()
    (out / "edge_reordered.pcap").write_bytes(ethernet_pcap(packets))
    return [("GET", "/reordered/1", 200), ("POST", "/reordered/2", 201)]


def case_retransmit_overlap(out: Path) -> list[Transaction]:
    """Exact retransmissions, and overlapping segments whose overlapping bytes differ from the original.

    First-seen data is correct. Response 1: a segment covers body bytes 150..249; bytes 150..199 (already
    seen) are b"X" * 50 instead of the filler, bytes 200..249 are new and correct. Response 2: a segment covers
    response bytes 9..59; bytes 9..11 (already seen) read "503" instead of "200", bytes 40..59 are new and
    correct. A parser that lets later data win sees a corrupt body and status 503.
    """
    conv = conversation(40002)
    packets = conv.handshake()
    get_1 = conv.send(CLIENT, request("GET", "/retransmit/1"))
    packets += [*get_1, *get_1, conv.ack(SERVER)]
    response_1 = json_response("retransmit-1", 300)
    body_start = len(response_1) - 300
    origin = conv.next_seq[SERVER]
    segments = conv.send(SERVER, response_1, split_at=(body_start + 100, body_start + 200))
    overlap = b"X" * 50 + response_1[body_start + 200:body_start + 250]
    packets += [segments[0], segments[1], segments[1],
                conv.segment(SERVER, "PA", overlap, seq=origin + body_start + 150), segments[2], conv.ack(CLIENT)]
    packets += [*conv.send(CLIENT, request("GET", "/retransmit/2")), conv.ack(SERVER)]
    response_2 = json_response("retransmit-2", 120)
    origin = conv.next_seq[SERVER]
    segments = conv.send(SERVER, response_2, split_at=(40,))
    overlap = b"503" + response_2[12:60]
    packets += [segments[0], conv.segment(SERVER, "PA", overlap, seq=origin + 9), segments[1], conv.ack(CLIENT)]
    packets += conv.close()
    (out / "edge_retransmit_overlap.pcap").write_bytes(ethernet_pcap(packets))
    return [("GET", "/retransmit/1", 200), ("GET", "/retransmit/2", 200)]


def case_gap_body(out: Path) -> list[Transaction]:
    """A 3000-byte body whose second 1000-byte segment is missing; the next exchange must still parse."""
    conv = conversation(40003)
    packets = conv.handshake()
    packets += [*conv.send(CLIENT, request("GET", "/gap/body/1")), conv.ack(SERVER)]
    response_1 = json_response("gap-body-1", 3000)
    body_start = len(response_1) - 3000
    segments = conv.send(SERVER, response_1, split_at=(body_start + 1000, body_start + 2000))
    packets += [segments[0], segments[2], conv.ack(CLIENT)]
    packets += conv.exchange(request("GET", "/gap/body/2"), json_response("gap-body-2", 50))
    packets += conv.close()
    (out / "edge_gap_body.pcap").write_bytes(ethernet_pcap(packets))
    return [("GET", "/gap/body/1", 200), ("GET", "/gap/body/2", 200)]


def case_gap_headers(out: Path) -> list[Transaction]:
    """A segment lost inside the headers of response 1: after its status line, and holding its Content-Length.

    Requests 2 and 3 are pipelined in one segment; responses 2 and 3 start new segments after the gap.
    """
    conv = conversation(40004)
    packets = conv.handshake()
    packets += [*conv.send(CLIENT, request("GET", "/gap/headers/1")), conv.ack(SERVER)]
    packets += [*conv.send(CLIENT, request("GET", "/gap/headers/2") + request("GET", "/gap/headers/3")),
                conv.ack(SERVER)]
    body_1 = json_body("gap-headers-1", 400)
    response_1 = response(200, "OK", content_length=False, body=body_1, headers=(
        ("Content-Type", "application/json"), ("Content-Length", str(len(body_1))), ("Cache-Control", "no-store"),
        ("X-Request-Id", "gap-headers-1")))
    lost_start = response_1.index(b"Content-Type")
    lost_end = response_1.index(b"X-Request-Id")
    segments = conv.send(SERVER, response_1, split_at=(lost_start, lost_end))
    packets += [segments[0], segments[2], conv.ack(CLIENT)]
    packets += [*conv.send(SERVER, json_response("gap-headers-2", 100)), conv.ack(CLIENT)]
    packets += [*conv.send(SERVER, json_response("gap-headers-3", 60, 404, "Not Found")), conv.ack(CLIENT)]
    packets += conv.close()
    (out / "edge_gap_headers.pcap").write_bytes(ethernet_pcap(packets))
    return [("GET", "/gap/headers/1", 200), ("GET", "/gap/headers/2", 200), ("GET", "/gap/headers/3", 404)]


def case_midstream(out: Path) -> list[Transaction]:
    """No handshake: the capture starts with the last 1700 bytes of a response body."""
    conv = conversation(40005)
    tail = json_body("midstream-0", 2500)[-1700:]
    packets = [*conv.send(SERVER, tail), conv.ack(CLIENT)]
    packets += conv.exchange(request("GET", "/mid/2"), json_response("midstream-2", 200))
    packets += conv.exchange(request("POST", "/mid/3", body=json_body("midstream-3-request", 90)),
                             json_response("midstream-3", 40, 201, "Created"))
    packets += conv.close()
    (out / "edge_midstream.pcap").write_bytes(ethernet_pcap(packets))
    return [("GET", "/mid/2", 200), ("POST", "/mid/3", 201)]


def chunked_response() -> bytes:
    """200 with three chunks (one with a chunk extension) and a trailer field."""
    chunks = [json_body("pipe-2a", 300), json_body("pipe-2b", 17), json_body("pipe-2c", 1200)]
    body = f"{len(chunks[0]):x}\r\n".encode() + chunks[0] + b"\r\n"
    body += f"{len(chunks[1]):x};note=ext\r\n".encode() + chunks[1] + b"\r\n"
    body += f"{len(chunks[2]):X}\r\n".encode() + chunks[2] + b"\r\n"
    body += b"0\r\nX-Checksum: 1234\r\n\r\n"
    return response(200, "OK", headers=(("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"),
                                        ("Trailer", "X-Checksum")), body=body, content_length=False)


def case_pipelined(out: Path) -> list[Transaction]:
    """Three requests in one segment; responses 200 (Content-Length), 200 (chunked), 404.

    Response 1 and the start of response 2 share a segment, cut inside the first chunk-size line.
    """
    conv = conversation(40006)
    packets = conv.handshake()
    pipeline = b"".join(request("GET", f"/pipe/{index}") for index in (1, 2, 3))
    packets += [*conv.send(CLIENT, pipeline), conv.ack(SERVER)]
    response_1 = json_response("pipe-1", 150)
    response_2 = chunked_response()
    first_chunk_line = response_2.index(b"\r\n\r\n") + 4
    responses = response_1 + response_2 + json_response("pipe-3", 30, 404, "Not Found")
    cut = len(response_1) + first_chunk_line + 1
    packets += [*conv.send(SERVER, responses, split_at=(cut,)), conv.ack(CLIENT)]
    packets += conv.close()
    (out / "edge_pipelined.pcap").write_bytes(ethernet_pcap(packets))
    return [("GET", "/pipe/1", 200), ("GET", "/pipe/2", 200), ("GET", "/pipe/3", 404)]


def case_vlan_qinq(out: Path) -> list[Transaction]:
    """One connection in 802.1Q VLAN 100, one in QinQ (802.1ad outer 200, 802.1Q inner 300)."""
    single = conversation(40007, client="10.0.1.1", server="10.0.1.2")
    packets = [*single.handshake(), *single.exchange(request("GET", "/vlan/100"), json_response("vlan", 90)),
               *single.close()]
    frames = ethernet(packets, (100,))
    double = conversation(40008, client="10.0.2.1", server="10.0.2.2")
    packets = [*double.handshake(), *double.exchange(request("GET", "/qinq/200/300"), json_response("qinq", 90)),
               *double.close()]
    frames += ethernet(packets, (200, 300), outer_tpid=TPID_8021AD)
    data = pcap_bytes(frames, timeline(len(frames), START_NS, STEP_NS), LINKTYPE_ETHERNET)
    (out / "edge_vlan_qinq.pcap").write_bytes(data)
    return [("GET", "/vlan/100", 200), ("GET", "/qinq/200/300", 200)]


def case_ipv6_ext(out: Path) -> list[Transaction]:
    """IPv6 where every packet carries a hop-by-hop and a destination-options header before TCP."""
    def extension_headers():
        return IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\0" * 4)]) / IPv6ExtHdrDestOpt(
            options=[PadN(optdata=b"\0" * 4)])

    conv = conversation(40009, client="2001:db8::1", server="2001:db8::2",
                        ipv6_extension_headers=extension_headers)
    packets = conv.handshake()
    packets += conv.exchange(request("GET", "/v6/ext/1"), json_response("v6-ext-1", 300))
    packets += conv.exchange(request("POST", "/v6/ext/2", body=json_body("v6-ext-2-request", 120)),
                             json_response("v6-ext-2", 50, 201, "Created"))
    packets += conv.close()
    (out / "edge_ipv6_ext.pcap").write_bytes(ethernet_pcap(packets))
    return [("GET", "/v6/ext/1", 200), ("POST", "/v6/ext/2", 201)]


def case_ipv4_fragments(out: Path) -> list[Transaction]:
    """Two 3000-byte POSTs, each one TCP segment fragmented by IPv4 (1500-byte MTU).

    The fragments of POST 1 are in order; those of POST 2 arrive last-first (order 3, 1, 2).
    """
    conv = conversation(40010, mss=JUMBO_MSS)
    packets = conv.handshake()
    for index, order in ((1, (0, 1, 2)), (2, (2, 0, 1))):
        (segment,) = conv.send(CLIENT, request("POST", f"/frag/v4/{index}",
                                               body=json_body(f"frag-v4-{index}", 3000)))
        segment[IP].flags = 0
        fragments = fragment(segment, fragsize=1480)
        packets += [IP(bytes(fragments[position])) for position in order]
        packets += [conv.ack(SERVER), *conv.send(SERVER, json_response(f"frag-v4-{index}", 40, 201, "Created")),
                    conv.ack(CLIENT)]
    packets += conv.close()
    (out / "edge_ipv4_fragments.pcap").write_bytes(ethernet_pcap(packets))
    return [("POST", "/frag/v4/1", 201), ("POST", "/frag/v4/2", 201)]


def case_ipv6_fragments(out: Path) -> list[Transaction]:
    """Two 3000-byte POSTs, each one TCP segment split by an IPv6 fragment header (1280-byte MTU).

    The fragments of POST 1 are in order; those of POST 2 arrive in order 2, 3, 1.
    """
    conv = conversation(40011, client="2001:db8::11", server="2001:db8::12", mss=JUMBO_MSS)
    packets = conv.handshake()
    for index, order in ((1, (0, 1, 2)), (2, (1, 2, 0))):
        (segment,) = conv.send(CLIENT, request("POST", f"/frag/v6/{index}",
                                               body=json_body(f"frag-v6-{index}", 3000)))
        with_fragment_header = (IPv6(src=segment.src, dst=segment.dst, hlim=segment.hlim)
                                / IPv6ExtHdrFragment(id=0x6F000000 + index) / segment.payload)
        fragments = fragment6(with_fragment_header, 1280)
        packets += [IPv6(bytes(fragments[position])) for position in order]
        packets += [conv.ack(SERVER), *conv.send(SERVER, json_response(f"frag-v6-{index}", 40, 201, "Created")),
                    conv.ack(CLIENT)]
    packets += conv.close()
    (out / "edge_ipv6_fragments.pcap").write_bytes(ethernet_pcap(packets))
    return [("POST", "/frag/v6/1", 201), ("POST", "/frag/v6/2", 201)]


def simple_exchange(client_port: int, uri: str, **kwargs) -> list:
    """Handshake, one GET answered 200, orderly close."""
    conv = conversation(client_port, **kwargs)
    return [*conv.handshake(), *conv.exchange(request("GET", uri), json_response(uri, 120)), *conv.close()]


def case_nanosecond(out: Path) -> list[Transaction]:
    """pcap with the nanosecond magic 0xa1b23c4d; timestamps 1700000000.123456789 + n * 1.000123 ms."""
    packets = simple_exchange(40012, "/time/nanosecond")
    stamps = timeline(len(packets), START_NS + 123_456_789, 1_000_123)
    data = pcap_bytes(ethernet(packets), stamps, LINKTYPE_ETHERNET, nanosecond=True)
    (out / "edge_nanosecond.pcap").write_bytes(data)
    return [("GET", "/time/nanosecond", 200)]


def case_bigendian(out: Path) -> list[Transaction]:
    """Big-endian microsecond pcap: the file starts with the bytes a1 b2 c3 d4."""
    packets = simple_exchange(40013, "/endian/big")
    data = pcap_bytes(ethernet(packets), timeline(len(packets), START_NS, STEP_NS), LINKTYPE_ETHERNET,
                      byte_order=">")
    (out / "edge_bigendian.pcap").write_bytes(data)
    return [("GET", "/endian/big", 200)]


def case_raw_ip(out: Path) -> list[Transaction]:
    """LINKTYPE_RAW (101): an IPv4 connection, then an IPv6 one, with no link-layer header."""
    packets = simple_exchange(40014, "/raw/v4")
    packets += simple_exchange(40015, "/raw/v6", client="2001:db8::21", server="2001:db8::22")
    data = pcap_bytes(raw_ip(packets), timeline(len(packets), START_NS, STEP_NS), LINKTYPE_RAW)
    (out / "edge_raw_ip.pcap").write_bytes(data)
    return [("GET", "/raw/v4", 200), ("GET", "/raw/v6", 200)]


def case_bsd_null(out: Path) -> list[Transaction]:
    """LINKTYPE_NULL (0), little-endian family: AF_INET (2), then IPv6 as AF 24 (NetBSD) and AF 30 (Darwin)."""
    frames = bsd_null(simple_exchange(40016, "/null/v4"), ipv6_family=24)
    frames += bsd_null(simple_exchange(40017, "/null/v6/24", client="2001:db8::31", server="2001:db8::32"),
                       ipv6_family=24)
    frames += bsd_null(simple_exchange(40018, "/null/v6/30", client="2001:db8::41", server="2001:db8::42"),
                       ipv6_family=30)
    data = pcap_bytes(frames, timeline(len(frames), START_NS, STEP_NS), LINKTYPE_NULL)
    (out / "edge_bsd_null.pcap").write_bytes(data)
    return [("GET", "/null/v4", 200), ("GET", "/null/v6/24", 200), ("GET", "/null/v6/30", 200)]


def case_pcapng_multi(out: Path) -> list[Transaction]:
    """pcapng with interface 0 (Ethernet, if_tsresol 10^-6) and 1 (raw IP, if_tsresol 10^-9), interleaved.

    Every packet is an Enhanced Packet Block except the client's final ACK on interface 0, which is a Simple
    Packet Block (no timestamp). The first EPB carries a comment option.
    """
    ethernet_frames = ethernet(simple_exchange(40019, "/pcapng/ethernet"))
    raw_frames = raw_ip(simple_exchange(40020, "/pcapng/raw", client="10.0.3.1", server="10.0.3.2"))
    blocks = [pcapng_section_header("apispy make_edge_cases.py"),
              pcapng_interface(LINKTYPE_ETHERNET, "eth0", 6), pcapng_interface(LINKTYPE_RAW, "tun0", 9)]
    stamps = iter(timeline(len(ethernet_frames) + len(raw_frames), START_NS + 987_654_321, 1_000_321))
    for index, (ethernet_frame, raw_frame) in enumerate(zip(ethernet_frames, raw_frames, strict=True)):
        if index == len(ethernet_frames) - 1:
            blocks.append(pcapng_simple_packet(ethernet_frame))
            next(stamps)
        else:
            blocks.append(pcapng_enhanced_packet(0, next(stamps) // 1000, ethernet_frame,
                                                 "first packet of interface 0" if index == 0 else ""))
        blocks.append(pcapng_enhanced_packet(1, next(stamps), raw_frame))
    (out / "edge_pcapng_multi.pcapng").write_bytes(b"".join(blocks))
    return [("GET", "/pcapng/ethernet", 200), ("GET", "/pcapng/raw", 200)]


def case_truncated(out: Path) -> list[Transaction]:
    """Three files a reader must reject or stop on cleanly.

    edge_truncated_packet.pcap: the last record (response 2, 20 bytes of its payload present) is cut short;
    edge_truncated_header.pcap: the first 10 bytes of a pcap global header; edge_not_a_capture.pcap: text.
    """
    conv = conversation(40021)
    packets = [*conv.handshake(), *conv.exchange(request("GET", "/trunc/1"), json_response("trunc-1", 100)),
               *conv.send(CLIENT, request("GET", "/trunc/2")), conv.ack(SERVER),
               *conv.send(SERVER, json_response("trunc-2", 400))]
    frames = ethernet(packets)
    data = pcap_bytes(frames, timeline(len(frames), START_NS, STEP_NS), LINKTYPE_ETHERNET)
    headers_and_some_payload = 14 + 20 + 20 + 20
    (out / "edge_truncated_packet.pcap").write_bytes(data[:len(data) - len(frames[-1]) + headers_and_some_payload])
    (out / "edge_truncated_header.pcap").write_bytes(data[:10])
    (out / "edge_not_a_capture.pcap").write_bytes(
        b"This is not a packet capture.\nGET /not/a/request HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
    return [("GET", "/trunc/1", 200), ("GET", "/trunc/2", None)]


def websocket_frame(opcode: int, payload: bytes, mask_key: bytes | None = None) -> bytes:
    """One final WebSocket frame (RFC 6455), masked when `mask_key` is given; payload under 126 bytes."""
    if len(payload) >= 126:
        raise ValueError("short frames only")
    if mask_key is None:
        return bytes([0x80 | opcode, len(payload)]) + payload
    masked = bytes(byte ^ mask_key[index % 4] for index, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask_key + masked


def tls_record(content_type: int, version: int, fragment: bytes) -> bytes:
    return bytes([content_type]) + version.to_bytes(2, "big") + len(fragment).to_bytes(2, "big") + fragment


def handshake(message_type: int, body: bytes) -> bytes:
    return bytes([message_type]) + len(body).to_bytes(3, "big") + body


def case_upgrade_connect(out: Path) -> list[Transaction]:
    """A WebSocket upgrade (101) then frames, and a CONNECT tunnel (200) then TLS-looking records.

    Traps: after the 101 the client sends a frame masked with key 00 00 00 00 whose payload is the text of
    an HTTP request, and the server a frame holding the text of an HTTP response; neither is HTTP.
    """
    websocket = conversation(40022)
    key = base64.b64encode(b"apispy-edge-key!").decode()
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
    upgrade = request("GET", "/ws/chat", headers=(("Connection", "Upgrade"), ("Upgrade", "websocket"),
                                                  ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")))
    switching = response(101, "Switching Protocols", content_length=False, headers=(
        ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Accept", accept.decode())))
    packets = [*websocket.handshake(), *websocket.exchange(upgrade, switching)]
    packets += [*websocket.send(CLIENT, websocket_frame(0x2, bytes(range(40)), b"\x11\x22\x33\x44")),
                websocket.ack(SERVER)]
    packets += [*websocket.send(CLIENT, websocket_frame(0x1, b"GET /inside/websocket HTTP/1.1\r\nHost: x\r\n\r\n",
                                                        b"\0\0\0\0")), websocket.ack(SERVER)]
    packets += [*websocket.send(SERVER, websocket_frame(0x1, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")),
                websocket.ack(CLIENT)]
    packets += [*websocket.send(SERVER, websocket_frame(0x8, b"\x03\xe8")), websocket.ack(CLIENT)]
    packets += [*websocket.send(CLIENT, websocket_frame(0x8, b"\x03\xe8", b"\x55\x66\x77\x88")),
                *websocket.close()]

    tunnel = conversation(40023, server_port=3128)
    connect = request("CONNECT", "api.example.com:443", host="api.example.com:443")
    established = b"HTTP/1.1 200 Connection Established\r\n\r\n"
    client_hello = tls_record(0x16, 0x0301, handshake(1, bytes.fromhex("0303") + bytes(range(32)) + b"\0"
                                                        + bytes.fromhex("0002c02f0100") + b"\0\0"))
    server_hello = tls_record(0x16, 0x0303, handshake(2, bytes.fromhex("0303") + bytes(range(32, 64)) + b"\0"
                                                        + bytes.fromhex("c02f00") + b"\0\0"))
    application_data = tls_record(0x17, 0x0303, bytes(range(64)))
    packets += [*tunnel.handshake(), *tunnel.exchange(connect, established),
                *tunnel.exchange(client_hello, server_hello),
                *tunnel.send(CLIENT, application_data), tunnel.ack(SERVER), *tunnel.close()]
    (out / "edge_upgrade_connect.pcap").write_bytes(ethernet_pcap(packets))
    return [("GET", "/ws/chat", 101), ("CONNECT", "api.example.com:443", 200)]


def case_http_on_odd_port(out: Path) -> list[Transaction]:
    """HTTP to server ports 22 and 5432: found by content, not by port."""
    ssh_port = conversation(40024, server_port=22)
    packets = [*ssh_port.handshake(), *ssh_port.exchange(request("GET", "/odd/22"), json_response("odd-22", 70)),
               *ssh_port.close()]
    postgres_port = conversation(40025, server="10.0.0.3", server_port=5432)
    packets += [*postgres_port.handshake(),
                *postgres_port.exchange(request("POST", "/odd/5432", body=json_body("odd-5432-request", 60)),
                                        json_response("odd-5432", 70)),
                *postgres_port.close()]
    (out / "edge_http_on_odd_port.pcap").write_bytes(ethernet_pcap(packets))
    return [("GET", "/odd/22", 200), ("POST", "/odd/5432", 200)]


def case_head_1xx_204_304(out: Path) -> list[Transaction]:
    """One keep-alive connection: HEAD, 100-continue, 204, 304, then a normal 200 that must stay in sync.

    The HEAD response says Content-Length: 1234 and the 304 says Content-Length: 512 (both legal); neither
    has a body. The 204 has no Content-Length.
    """
    conv = conversation(40026)
    packets = conv.handshake()
    packets += conv.exchange(request("HEAD", "/h/resource"),
                             response(200, "OK", headers=(("Content-Type", "application/json"),
                                                          ("Content-Length", "1234")), content_length=False))
    upload_body = json_body("head-upload", 64)
    upload_head = request("POST", "/h/upload", headers=(("Expect", "100-continue"),), body=upload_body)
    upload_head = upload_head[:-len(upload_body)]
    packets += conv.exchange(upload_head, b"HTTP/1.1 100 Continue\r\n\r\n")
    packets += conv.exchange(upload_body, json_response("head-upload", 30, 201, "Created"))
    packets += conv.exchange(request("DELETE", "/h/item/1"), response(204, "No Content", content_length=False))
    packets += conv.exchange(request("GET", "/h/etag", headers=(("If-None-Match", '"v1"'),)),
                             response(304, "Not Modified", content_length=False,
                                      headers=(("ETag", '"v1"'), ("Content-Length", "512"))))
    packets += conv.exchange(request("GET", "/h/after"), json_response("head-after", 80))
    packets += conv.close()
    (out / "edge_head_1xx_204_304.pcap").write_bytes(ethernet_pcap(packets))
    return [("HEAD", "/h/resource", 200), ("POST", "/h/upload", 201), ("DELETE", "/h/item/1", 204),
            ("GET", "/h/etag", 304), ("GET", "/h/after", 200)]


def case_close_delimited(out: Path) -> list[Transaction]:
    """An HTTP/1.0 response without Content-Length ended by the server's FIN; a connection ended by RST.

    Connection 2: GET /rst/1 is answered, then GET /rst/2 gets a RST from the server and no response.
    """
    old = conversation(40027)
    packets = [*old.handshake(), *old.send(CLIENT, request("GET", "/old", version="HTTP/1.0")), old.ack(SERVER),
               *old.send(SERVER, response(200, "OK", version="HTTP/1.0", content_length=False,
                                          headers=(("Content-Type", "text/plain"),),
                                          body=json_body("close-delimited", 1800)), split_at=(900,)),
               old.fin(SERVER), old.ack(CLIENT), old.fin(CLIENT), old.ack(SERVER)]
    reset = conversation(40028)
    packets += [*reset.handshake(), *reset.exchange(request("GET", "/rst/1"), json_response("rst-1", 60)),
                *reset.send(CLIENT, request("GET", "/rst/2")), reset.rst(SERVER)]
    (out / "edge_close_delimited.pcap").write_bytes(ethernet_pcap(packets))
    return [("GET", "/old", 200), ("GET", "/rst/1", 200), ("GET", "/rst/2", None)]


def case_seq_wraparound(out: Path) -> list[Transaction]:
    """Both sides' sequence numbers wrap past 2**32 in the middle of a message."""
    conv = conversation(40029, client_isn=0xFFFFFF00, server_isn=0xFFFFFA00)
    packets = conv.handshake()
    packets += conv.exchange(request("GET", "/wrap/1"), json_response("wrap-1", 2400))
    packets += conv.exchange(request("POST", "/wrap/2", body=json_body("wrap-2-request", 600)),
                             json_response("wrap-2", 60, 201, "Created"))
    packets += conv.close()
    (out / "edge_seq_wraparound.pcap").write_bytes(ethernet_pcap(packets))
    return [("GET", "/wrap/1", 200), ("POST", "/wrap/2", 201)]


CASES: list[Callable[[Path], list[Transaction]]] = [
    case_reordered, case_retransmit_overlap, case_gap_body, case_gap_headers, case_midstream, case_pipelined,
    case_vlan_qinq, case_ipv6_ext, case_ipv4_fragments, case_ipv6_fragments, case_nanosecond, case_bigendian,
    case_raw_ip, case_bsd_null, case_pcapng_multi, case_truncated, case_upgrade_connect, case_http_on_odd_port,
    case_head_1xx_204_304, case_close_delimited, case_seq_wraparound,
]


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        print(f"{case.__name__}: {case(out)}")


if __name__ == "__main__":
    main()
