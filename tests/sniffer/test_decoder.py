"""The batch decoder: headers of every supported link type, and robustness against arbitrary bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop
from scapy.layers.l2 import CookedLinux, Dot1AD, Dot1Q, Ether
from support.kernels import python_body

from sniffer.batch import KIND_FRAGMENT, KIND_MALFORMED, KIND_OTHER, KIND_TCP, TCP_ACK, TCP_PSH, PacketBatch
from sniffer.decode import decoder
from sniffer.decode.link import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_NULL, LINKTYPE_RAW

SUPPORTED_LINK_TYPES = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 9999]


def batch_of(frames: list[bytes], link_types: list[int]) -> PacketBatch:
    offsets = np.cumsum([0] + [len(frame) for frame in frames[:-1]]).astype(np.int64)
    lengths = np.array([len(frame) for frame in frames], np.int32)
    return PacketBatch(
        frames=np.frombuffer(b"".join(frames), np.uint8) if frames else np.zeros(0, np.uint8),
        frame_offsets=offsets,
        captured_lengths=lengths,
        wire_lengths=lengths.copy(),
        ts_ns=np.arange(len(frames), dtype=np.int64),
        link_types=np.array(link_types, np.int32),
    )


def segment(payload: bytes = b"GET / HTTP/1.1\r\n\r\n") -> TCP:
    return TCP(sport=40000, dport=80, seq=1000, ack=2000, flags="PA") / payload


def test_ethernet_vlan_qinq_ipv4_tcp_all_decode_to_the_same_segment() -> None:
    frames = [
        bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / segment()),
        bytes(Ether() / Dot1Q(vlan=100) / IP(src="10.0.0.1", dst="10.0.0.2") / segment()),
        bytes(Ether() / Dot1AD(vlan=200) / Dot1Q(vlan=300) / IP(src="10.0.0.1", dst="10.0.0.2") / segment()),
    ]
    decoded = decoder.decode_batch(batch_of(frames, [LINKTYPE_ETHERNET] * 3))
    assert decoded.kind.tolist() == [KIND_TCP] * 3
    assert decoded.src_port.tolist() == [40000] * 3
    assert decoded.seq.tolist() == [1000] * 3
    assert decoded.tcp_flags.tolist() == [TCP_PSH | TCP_ACK] * 3
    assert decoded.payload_lengths.tolist() == [18] * 3
    assert len(set(decoded.flow_keys.tolist())) == 1
    assert bytes(decoded.src_addr[0]) == bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 1])


def test_both_directions_share_a_flow_key_and_differ_in_endpoint_key() -> None:
    forward = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=80))
    backward = bytes(IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=80, dport=40000))
    other = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40001, dport=80))
    decoded = decoder.decode_batch(batch_of([forward, backward, other], [LINKTYPE_RAW] * 3))
    keys = decoded.flow_keys.tolist()
    assert keys[0] == keys[1] != keys[2]
    assert decoded.endpoint_keys[0] != decoded.endpoint_keys[1]


def test_ipv6_extension_headers_are_skipped_to_tcp() -> None:
    frame = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / segment())
    decoded = decoder.decode_batch(batch_of([frame], [LINKTYPE_RAW]))
    assert (decoded.kind[0], decoded.ip_version[0], decoded.payload_lengths[0]) == (KIND_TCP, 6, 18)


def test_sll_and_bsd_null_headers() -> None:
    sll = bytes(CookedLinux(proto=0x0800) / IP() / segment())
    null = (2).to_bytes(4, "little") + bytes(IP() / segment())
    decoded = decoder.decode_batch(batch_of([sll, null], [LINKTYPE_LINUX_SLL, LINKTYPE_NULL]))
    assert decoded.kind.tolist() == [KIND_TCP, KIND_TCP]


def test_fragments_malformed_and_other_protocols_are_marked() -> None:
    fragment = bytes(IP(flags="MF", frag=0) / segment())
    short = bytes(IP() / segment())[:30]
    udp = bytes(IP(proto=17) / (b"\x00" * 8))
    arp = bytes(Ether(type=0x0806) / (b"\x00" * 28))
    decoded = decoder.decode_batch(batch_of([fragment, short, udp, arp], [LINKTYPE_RAW] * 3 + [LINKTYPE_ETHERNET]))
    assert decoded.kind.tolist() == [KIND_FRAGMENT, KIND_MALFORMED, KIND_OTHER, KIND_OTHER]


def test_payload_cut_by_snap_length_is_reported_missing() -> None:
    frame = bytes(IP() / segment(b"x" * 100))
    batch = batch_of([frame[:60]], [LINKTYPE_RAW])
    batch.wire_lengths[0] = len(frame)
    decoded = decoder.decode_batch(batch)
    assert (decoded.payload_lengths[0], decoded.payload_missing[0]) == (20, 80)


def run_both(batch: PacketBatch) -> tuple[list, list]:
    """Outputs of the compiled kernel and of its plain Python body (`py_func`) on the same batch."""
    outputs = []
    for kernel in (decoder.decode_kernel, python_body(decoder.decode_kernel)):
        saved = decoder.decode_kernel
        decoder.decode_kernel = kernel
        try:
            decoded = decoder.decode_batch(batch)
        finally:
            decoder.decode_kernel = saved
        outputs.append([getattr(decoded, name) for name in decoded.__slots__])
    return outputs[0], outputs[1]


# The Python body does the hashes' 64-bit wrap-around with numpy scalars, which warn where the kernel is silent.
IGNORE_WRAPAROUND = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")


@IGNORE_WRAPAROUND
@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(st.binary(min_size=0, max_size=120), min_size=1, max_size=8),
    link_type=st.sampled_from(SUPPORTED_LINK_TYPES),
)
def test_kernel_matches_its_python_body_on_arbitrary_bytes_without_reading_out_of_bounds(frames, link_type) -> None:
    # The Python body raises IndexError on any out-of-bounds read, which the compiled kernel would not report.
    compiled, reference = run_both(batch_of(frames, [link_type] * len(frames)))
    for compiled_column, reference_column in zip(compiled, reference, strict=True):
        np.testing.assert_array_equal(compiled_column, reference_column)


@IGNORE_WRAPAROUND
@settings(max_examples=100, deadline=None)
@given(cut=st.integers(0, 80), flip=st.integers(0, 79), value=st.integers(0, 255))
def test_kernel_matches_its_python_body_on_damaged_real_headers(cut: int, flip: int, value: int) -> None:
    frame = bytearray(bytes(Ether() / Dot1Q() / IPv6() / IPv6ExtHdrHopByHop() / segment()))
    frame[flip] = value
    compiled, reference = run_both(batch_of([bytes(frame[: len(frame) - cut])], [LINKTYPE_ETHERNET]))
    for compiled_column, reference_column in zip(compiled, reference, strict=True):
        np.testing.assert_array_equal(compiled_column, reference_column)
