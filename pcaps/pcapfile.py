"""Byte-exact pcap and pcapng writers for the edge-case captures.

scapy's writers cannot mix interfaces with different link types and timestamp resolutions in one pcapng,
nor write a Simple Packet Block, so the formats are written here by hand. Timestamps are integers in
nanoseconds; a microsecond file rounds them down.

References: the pcap format (draft-ietf-opsawg-pcap) and pcapng (draft-ietf-opsawg-pcapng).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

PCAP_MAGIC_MICROSECONDS = 0xA1B2C3D4
PCAP_MAGIC_NANOSECONDS = 0xA1B23C4D
PCAP_VERSION = (2, 4)
SNAPLEN = 262144

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101

PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 0x00000001
PCAPNG_SPB = 0x00000003
PCAPNG_EPB = 0x00000006
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_OPT_ENDOFOPT = 0
PCAPNG_OPT_COMMENT = 1
PCAPNG_SHB_USERAPPL = 4
PCAPNG_IF_NAME = 2
PCAPNG_IF_TSRESOL = 9

NS_PER_S = 1_000_000_000


def timeline(count: int, start_ns: int, step_ns: int) -> list[int]:
    """`count` evenly spaced timestamps in nanoseconds."""
    return [start_ns + index * step_ns for index in range(count)]


def pcap_bytes(frames: Sequence[bytes], timestamps_ns: Sequence[int], linktype: int, *,
               nanosecond: bool = False, byte_order: str = "<") -> bytes:
    """A classic pcap file: global header, then one record per frame (captured length = frame length)."""
    if len(frames) != len(timestamps_ns):
        raise ValueError("one timestamp per frame")
    magic = PCAP_MAGIC_NANOSECONDS if nanosecond else PCAP_MAGIC_MICROSECONDS
    out = [struct.pack(byte_order + "IHHiIII", magic, *PCAP_VERSION, 0, 0, SNAPLEN, linktype)]
    for frame, ts_ns in zip(frames, timestamps_ns, strict=True):
        seconds, fraction_ns = divmod(ts_ns, NS_PER_S)
        fraction = fraction_ns if nanosecond else fraction_ns // 1000
        out.append(struct.pack(byte_order + "IIII", seconds, fraction, len(frame), len(frame)))
        out.append(frame)
    return b"".join(out)


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _options(options: Iterable[tuple[int, bytes]]) -> bytes:
    body = b"".join(struct.pack("<HH", code, len(value)) + _pad4(value) for code, value in options)
    return body + struct.pack("<HH", PCAPNG_OPT_ENDOFOPT, 0) if body else b""


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def pcapng_section_header(application: str) -> bytes:
    """Section Header Block, little-endian, section length unspecified."""
    body = struct.pack("<IHHq", PCAPNG_BYTE_ORDER_MAGIC, 1, 0, -1)
    return _block(PCAPNG_SHB, body + _options([(PCAPNG_SHB_USERAPPL, application.encode())]))


def pcapng_interface(linktype: int, name: str, tsresol_exponent: int) -> bytes:
    """Interface Description Block; timestamps of its packets count units of 10**-tsresol_exponent s."""
    body = struct.pack("<HHI", linktype, 0, SNAPLEN)
    return _block(PCAPNG_IDB, body + _options([(PCAPNG_IF_NAME, name.encode()),
                                                (PCAPNG_IF_TSRESOL, bytes([tsresol_exponent]))]))


def pcapng_enhanced_packet(interface_id: int, timestamp_units: int, frame: bytes, comment: str = "") -> bytes:
    """Enhanced Packet Block; `timestamp_units` is in the interface's if_tsresol units."""
    body = struct.pack("<IIIII", interface_id, timestamp_units >> 32, timestamp_units & 0xFFFFFFFF,
                       len(frame), len(frame)) + _pad4(frame)
    options = [(PCAPNG_OPT_COMMENT, comment.encode())] if comment else []
    return _block(PCAPNG_EPB, body + _options(options))


def pcapng_simple_packet(frame: bytes) -> bytes:
    """Simple Packet Block: interface 0, no timestamp, captured length implied by the block length."""
    return _block(PCAPNG_SPB, struct.pack("<I", len(frame)) + _pad4(frame))
