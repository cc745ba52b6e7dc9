import random

import pytest
from scapy.all import IP, TCP, IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, Raw, fragment, fragment6, raw

from sniffer.fragments import FragmentReassembler

PAYLOAD = bytes(range(256)) * 8
TIMEOUT_NS = 30 * 10**9
IPV4_CHECKSUM = slice(10, 12)


def ipv4_datagram(identification: int = 4321, src: str = "192.0.2.1") -> IP:
    return IP(src=src, dst="198.51.100.2", id=identification) / TCP(sport=40000, dport=80, flags="PA") / Raw(PAYLOAD)


def ipv4_fragments(datagram: IP) -> list[bytes]:
    return [raw(piece) for piece in fragment(datagram, fragsize=512)]


def ipv6_datagram(identification: int = 77, hop_by_hop: bool = False) -> tuple[bytes, list[bytes]]:
    """(the datagram as it was before fragmentation, its fragments)."""
    header = IPv6(src="2001:db8::1", dst="2001:db8::2")
    if hop_by_hop:
        header = header / IPv6ExtHdrHopByHop()
    transport = TCP(sport=40000, dport=80, flags="PA") / Raw(PAYLOAD)
    fragments = fragment6(header / IPv6ExtHdrFragment(id=identification) / transport, 600)
    return raw(header / transport), [raw(piece) for piece in fragments]


def without_checksum(datagram: bytes) -> bytes:
    return datagram[: IPV4_CHECKSUM.start] + datagram[IPV4_CHECKSUM.stop :]


def add_all(reassembler: FragmentReassembler, fragments: list[bytes], ts_ns: int = 0) -> list[bytes | None]:
    return [reassembler.add(ts_ns, piece) for piece in fragments]


def test_scapy_splits_the_test_datagrams_into_several_fragments():
    assert (len(ipv4_fragments(ipv4_datagram())), len(ipv6_datagram()[1])) == (5, 4)


def test_ipv4_fragments_in_order_rebuild_the_original_datagram():
    original = ipv4_datagram()
    results = add_all(FragmentReassembler(), ipv4_fragments(original))
    assert without_checksum(results[-1]) == without_checksum(raw(original))


def test_ipv4_datagram_is_returned_only_by_the_completing_fragment():
    results = add_all(FragmentReassembler(), ipv4_fragments(ipv4_datagram()))
    assert [result is None for result in results] == [True, True, True, True, False]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ipv4_fragments_out_of_order_rebuild_the_original_datagram(seed):
    original = ipv4_datagram()
    fragments = ipv4_fragments(original)
    random.Random(seed).shuffle(fragments)
    results = add_all(FragmentReassembler(), fragments)
    assert without_checksum(results[-1]) == without_checksum(raw(original))


def test_ipv4_fragments_in_reverse_order_rebuild_the_original_datagram():
    original = ipv4_datagram()
    results = add_all(FragmentReassembler(), ipv4_fragments(original)[::-1])
    assert without_checksum(results[-1]) == without_checksum(raw(original))


def test_rebuilt_ipv4_datagram_parses_with_length_and_no_fragment_fields():
    fragments = ipv4_fragments(ipv4_datagram())
    rebuilt = IP(add_all(FragmentReassembler(), fragments)[-1])
    assert (rebuilt.len, int(rebuilt.flags), rebuilt.frag, rebuilt.id) == (20 + 20 + len(PAYLOAD), 0, 0, 4321)
    assert bytes(rebuilt[Raw].load) == PAYLOAD


def test_rebuilt_ipv4_header_checksum_is_valid():
    original = ipv4_datagram()
    rebuilt = add_all(FragmentReassembler(), ipv4_fragments(original))[-1]
    assert rebuilt[IPV4_CHECKSUM] == raw(original)[IPV4_CHECKSUM]


def test_duplicate_ipv4_fragments_do_not_change_the_datagram():
    original = ipv4_datagram()
    fragments = ipv4_fragments(original)
    with_duplicates = [fragments[1], fragments[1], fragments[0], fragments[2], fragments[0], fragments[3], fragments[4]]
    reassembler = FragmentReassembler()
    results = add_all(reassembler, with_duplicates)
    assert without_checksum(results[-1]) == without_checksum(raw(original))
    assert (reassembler.reassembled, len(reassembler.pending)) == (1, 0)


def test_duplicate_with_differing_bytes_keeps_the_first_copy():
    original = ipv4_datagram()
    fragments = ipv4_fragments(original)
    forged = bytearray(fragments[1])
    forged[-1] ^= 0xFF
    results = add_all(FragmentReassembler(), [fragments[1], bytes(forged), fragments[0], *fragments[2:]])
    assert without_checksum(results[-1]) == without_checksum(raw(original))


def test_incomplete_ipv4_datagram_returns_none_and_stays_pending():
    fragments = ipv4_fragments(ipv4_datagram())
    reassembler = FragmentReassembler()
    results = add_all(reassembler, fragments[:2] + fragments[3:])
    assert results == [None, None, None, None]
    assert len(reassembler.pending) == 1


def test_datagram_without_its_first_fragment_is_not_rebuilt():
    reassembler = FragmentReassembler()
    assert add_all(reassembler, ipv4_fragments(ipv4_datagram())[1:]) == [None, None, None, None]


def test_interleaved_datagrams_with_different_ids_are_rebuilt_separately():
    first, second = ipv4_datagram(identification=1), ipv4_datagram(identification=2)
    interleaved = [piece for pair in zip(ipv4_fragments(first), ipv4_fragments(second), strict=True) for piece in pair]
    results = add_all(FragmentReassembler(), interleaved)
    rebuilt = [without_checksum(result) for result in results if result is not None]
    assert rebuilt == [without_checksum(raw(first)), without_checksum(raw(second))]


def test_same_id_from_different_sources_is_not_mixed():
    first, second = ipv4_datagram(src="192.0.2.1"), ipv4_datagram(src="192.0.2.9")
    reassembler = FragmentReassembler()
    add_all(reassembler, ipv4_fragments(first)[:-1])
    assert reassembler.add(0, ipv4_fragments(second)[-1]) is None


def test_ipv6_fragments_in_order_rebuild_the_original_datagram():
    original, fragments = ipv6_datagram()
    assert add_all(FragmentReassembler(), fragments)[-1] == original


def test_ipv6_fragments_out_of_order_rebuild_the_original_datagram():
    original, fragments = ipv6_datagram()
    shuffled = [fragments[2], fragments[0], fragments[3], fragments[1]]
    assert add_all(FragmentReassembler(), shuffled)[-1] == original


def test_ipv6_fragments_with_duplicates_rebuild_the_original_datagram():
    original, fragments = ipv6_datagram()
    with_duplicates = [fragments[3], fragments[0], fragments[3], fragments[1], fragments[0], fragments[2]]
    assert add_all(FragmentReassembler(), with_duplicates)[-1] == original


def test_ipv6_hop_by_hop_header_before_fragment_header_is_kept():
    original, fragments = ipv6_datagram(hop_by_hop=True)
    assert add_all(FragmentReassembler(), fragments[::-1])[-1] == original


def test_incomplete_ipv6_datagram_returns_none():
    _, fragments = ipv6_datagram()
    assert add_all(FragmentReassembler(), fragments[:2] + fragments[3:]) == [None, None, None]


def test_ipv6_datagram_without_fragment_header_is_malformed():
    reassembler = FragmentReassembler()
    plain = raw(IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP() / Raw(b"x" * 16))
    assert reassembler.add(0, plain) is None
    assert reassembler.malformed == 1


def test_truncated_ipv4_header_is_malformed():
    reassembler = FragmentReassembler()
    assert reassembler.add(0, ipv4_fragments(ipv4_datagram())[0][:19]) is None
    assert reassembler.malformed == 1


def test_datagram_not_completed_within_timeout_is_dropped():
    fragments = ipv4_fragments(ipv4_datagram())
    reassembler = FragmentReassembler(timeout_s=30.0)
    reassembler.add(0, fragments[0])
    reassembler.add(TIMEOUT_NS + 1, ipv6_datagram()[1][0])
    assert (reassembler.dropped, len(reassembler.pending)) == (1, 1)


def test_fragments_after_timeout_do_not_complete_the_dropped_datagram():
    fragments = ipv4_fragments(ipv4_datagram())
    reassembler = FragmentReassembler(timeout_s=30.0)
    reassembler.add(0, fragments[0])
    assert add_all(reassembler, fragments[1:], ts_ns=TIMEOUT_NS + 1) == [None, None, None, None]


def test_datagram_completed_exactly_at_timeout_is_rebuilt():
    original = ipv4_datagram()
    fragments = ipv4_fragments(original)
    reassembler = FragmentReassembler(timeout_s=30.0)
    reassembler.add(0, fragments[0])
    results = add_all(reassembler, fragments[1:], ts_ns=TIMEOUT_NS)
    assert without_checksum(results[-1]) == without_checksum(raw(original))
    assert reassembler.dropped == 0


def test_max_datagrams_drops_the_oldest_incomplete_datagram():
    datagrams = [ipv4_datagram(identification=identification) for identification in (1, 2, 3)]
    fragment_lists = [ipv4_fragments(datagram) for datagram in datagrams]
    reassembler = FragmentReassembler(max_datagrams=2)
    for fragments in fragment_lists:
        reassembler.add(0, fragments[0])
    assert (reassembler.dropped, len(reassembler.pending)) == (1, 2)


def test_max_datagrams_keeps_the_newest_datagrams_completable():
    datagrams = [ipv4_datagram(identification=identification) for identification in (1, 2, 3)]
    fragment_lists = [ipv4_fragments(datagram) for datagram in datagrams]
    reassembler = FragmentReassembler(max_datagrams=2)
    for fragments in fragment_lists:
        reassembler.add(0, fragments[0])
    rebuilt = [add_all(reassembler, fragments[1:])[-1] for fragments in fragment_lists[1:]]
    assert [without_checksum(datagram) for datagram in rebuilt] == [
        without_checksum(raw(datagram)) for datagram in datagrams[1:]
    ]


def test_max_datagrams_evicted_datagram_is_not_rebuilt_from_its_later_fragments():
    fragment_lists = [ipv4_fragments(ipv4_datagram(identification=identification)) for identification in (1, 2, 3)]
    reassembler = FragmentReassembler(max_datagrams=2)
    for fragments in fragment_lists:
        reassembler.add(0, fragments[0])
    assert add_all(reassembler, fragment_lists[0][1:]) == [None, None, None, None]
