import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sniffer.reassembly import SEQ_MOD, Gap, ReassemblyBudget, StreamItem, StreamReassembler, seq_delta

ISN = 999
FIRST_SEQ = ISN + 1


def started_reassembler(max_buffered_bytes: int = 1 << 16, isn: int = ISN) -> StreamReassembler:
    reassembler = StreamReassembler(max_buffered_bytes)
    reassembler.on_syn(isn)
    return reassembler


def add(
    reassembler: StreamReassembler,
    ts_ns: int,
    offset: int,
    data: bytes,
    fin: bool = False,
    missing: int = 0,
    first_seq: int = FIRST_SEQ,
) -> list[StreamItem]:
    """Adds the segment at stream `offset` (relative to the first data byte); returns what was delivered."""
    out: list[StreamItem] = []
    reassembler.on_segment(ts_ns, (first_seq + offset) % SEQ_MOD, data, fin, out, missing)
    return out


def ack(reassembler: StreamReassembler, offset: int) -> list[StreamItem]:
    out: list[StreamItem] = []
    reassembler.on_peer_ack(FIRST_SEQ + offset, out)
    return out


def flush(reassembler: StreamReassembler) -> list[StreamItem]:
    out: list[StreamItem] = []
    reassembler.flush(out)
    return out


@pytest.mark.parametrize(
    ("seq", "reference", "delta"),
    [
        (110, 100, 10),
        (100, 110, -10),
        (5, SEQ_MOD - 5, 10),
        (SEQ_MOD - 5, 5, -10),
        (100, 100, 0),
    ],
)
def test_seq_delta_is_signed_distance_modulo_2_pow_32(seq, reference, delta):
    assert seq_delta(seq, reference) == delta


def test_in_order_segments_are_delivered_at_once_with_their_timestamps():
    reassembler = started_reassembler()
    assert add(reassembler, 1, 0, b"GET / ") == [(1, b"GET / ")]
    assert add(reassembler, 2, 6, b"HTTP/1.1\r\n") == [(2, b"HTTP/1.1\r\n")]
    assert reassembler.delivered_bytes == 16


def test_syn_makes_isn_plus_one_the_first_data_byte():
    reassembler = StreamReassembler(1 << 16)
    reassembler.on_syn(ISN)
    assert add(reassembler, 1, 1, b"bc") == []
    assert add(reassembler, 2, 0, b"a") == [(2, b"a"), (1, b"bc")]


def test_midstream_stream_starts_at_first_segment_seen():
    reassembler = StreamReassembler(1 << 16)
    assert not reassembler.started
    out: list[StreamItem] = []
    reassembler.on_segment(7, 123456, b"body tail", False, out)
    assert out == [(7, b"body tail")]
    assert reassembler.started


def test_out_of_order_segments_are_delivered_in_order_with_their_own_timestamps():
    reassembler = started_reassembler()
    assert add(reassembler, 30, 6, b"ccc") == []
    assert add(reassembler, 20, 3, b"bbb") == []
    assert reassembler.pending_bytes == 6
    assert add(reassembler, 10, 0, b"aaa") == [(10, b"aaa"), (20, b"bbb"), (30, b"ccc")]
    assert reassembler.pending_bytes == 0
    assert reassembler.gaps == 0


def test_exact_retransmission_is_dropped_and_counted():
    reassembler = started_reassembler()
    add(reassembler, 1, 0, b"abcdef")
    assert add(reassembler, 2, 0, b"abcdef") == []
    assert reassembler.retransmitted_bytes == 6
    assert reassembler.overlap_conflicts == 0


def test_partial_overlap_delivers_only_new_bytes():
    reassembler = started_reassembler()
    add(reassembler, 1, 0, b"abcdef")
    assert add(reassembler, 2, 4, b"efgh") == [(2, b"gh")]
    assert reassembler.retransmitted_bytes == 2


def test_differing_copy_of_delivered_bytes_keeps_first_copy():
    reassembler = started_reassembler()
    add(reassembler, 1, 0, b"abcdef")
    assert add(reassembler, 2, 4, b"XYgh") == [(2, b"gh")]


def test_differing_copy_of_delivered_bytes_counts_an_overlap_conflict():
    reassembler = started_reassembler()
    add(reassembler, 1, 0, b"abcdef")
    add(reassembler, 2, 4, b"XYgh")
    assert reassembler.overlap_conflicts == 1


def test_differing_overlap_between_buffered_segments_keeps_first_copy():
    reassembler = started_reassembler()
    add(reassembler, 1, 10, b"0123456789")
    add(reassembler, 2, 15, b"XXXXXabcde")
    assert reassembler.overlap_conflicts == 1
    delivered = add(reassembler, 3, 0, b"-" * 10)
    assert delivered == [(3, b"-" * 10), (1, b"0123456789"), (2, b"abcde")]


def test_segment_spanning_two_buffered_segments_keeps_both_first_copies():
    # The later-offset segment arrives first, so it is not the first one a dict scan meets.
    reassembler = started_reassembler()
    add(reassembler, 1, 20, b"B" * 10)
    add(reassembler, 2, 10, b"A" * 10)
    add(reassembler, 3, 10, b"C" * 20)
    delivered = add(reassembler, 4, 0, b"-" * 10)
    assert delivered == [(4, b"-" * 10), (2, b"A" * 10), (1, b"B" * 10)]


def test_segment_spanning_two_buffered_segments_counts_both_conflicts():
    reassembler = started_reassembler()
    add(reassembler, 1, 20, b"B" * 10)
    add(reassembler, 2, 10, b"A" * 10)
    add(reassembler, 3, 10, b"C" * 20)
    assert reassembler.overlap_conflicts == 2


def test_shorter_segment_over_two_buffered_segments_loses_no_buffered_bytes():
    reassembler = started_reassembler()
    add(reassembler, 1, 20, b"B" * 10)
    add(reassembler, 2, 10, b"A" * 10)
    add(reassembler, 3, 10, b"A" * 10 + b"B" * 5)
    delivered = add(reassembler, 4, 0, b"-" * 10)
    assert b"".join(item[1] for item in delivered) == b"-" * 10 + b"A" * 10 + b"B" * 10


def test_pending_bytes_equal_buffered_bytes_after_overlapping_buffered_segments():
    reassembler = started_reassembler()
    add(reassembler, 1, 20, b"B" * 10)
    add(reassembler, 2, 10, b"A" * 10)
    add(reassembler, 3, 10, b"A" * 10 + b"B" * 10)
    assert reassembler.pending_bytes == sum(len(data) for _, data in reassembler.pending.values())


def test_in_order_segment_over_buffered_bytes_keeps_the_buffered_first_copy():
    reassembler = started_reassembler()
    add(reassembler, 1, 10, b"X" * 10)
    delivered = add(reassembler, 2, 0, b"a" * 20)
    assert b"".join(item[1] for item in delivered) == b"a" * 10 + b"X" * 10


def test_in_order_segment_over_differing_buffered_bytes_counts_an_overlap_conflict():
    reassembler = started_reassembler()
    add(reassembler, 1, 10, b"X" * 10)
    add(reassembler, 2, 0, b"a" * 20)
    assert reassembler.overlap_conflicts == 1


def test_peer_ack_beyond_hole_declares_gap_and_delivers_buffered_data():
    reassembler = started_reassembler()
    add(reassembler, 1, 0, b"aaaa")
    add(reassembler, 3, 10, b"cccc")
    assert ack(reassembler, 14) == [Gap(6), (3, b"cccc")]
    assert (reassembler.gaps, reassembler.gap_bytes) == (1, 6)


def test_peer_ack_reaching_exactly_the_buffered_data_declares_gap():
    reassembler = started_reassembler()
    add(reassembler, 1, 0, b"aaaa")
    add(reassembler, 3, 10, b"cccc")
    assert ack(reassembler, 10) == [Gap(6), (3, b"cccc")]


@pytest.mark.parametrize("acked_offset", [0, 4, 7, 9])
def test_peer_ack_not_past_hole_declares_no_gap(acked_offset):
    reassembler = started_reassembler()
    add(reassembler, 1, 0, b"aaaa")
    add(reassembler, 3, 10, b"cccc")
    assert ack(reassembler, acked_offset) == []
    assert reassembler.gaps == 0


def test_peer_ack_without_buffered_data_declares_no_gap():
    reassembler = started_reassembler()
    add(reassembler, 1, 0, b"aaaa")
    assert ack(reassembler, 100) == []


def test_buffer_over_bound_forces_gap_and_delivery():
    reassembler = started_reassembler(max_buffered_bytes=8)
    add(reassembler, 1, 0, b"aaaa")
    assert add(reassembler, 2, 10, b"bbbbb") == []
    assert add(reassembler, 3, 15, b"cccc") == [Gap(6), (2, b"bbbbb"), (3, b"cccc")]
    assert reassembler.pending_bytes == 0


def test_buffer_over_bound_delivers_only_until_the_next_hole():
    reassembler = started_reassembler(max_buffered_bytes=8)
    add(reassembler, 1, 20, b"dddd")
    assert add(reassembler, 2, 10, b"bbbbb") == [Gap(10), (2, b"bbbbb")]
    assert reassembler.pending_bytes == 4


def test_flush_delivers_everything_buffered_with_gaps():
    reassembler = started_reassembler()
    add(reassembler, 1, 0, b"aa")
    add(reassembler, 2, 5, b"bb")
    add(reassembler, 3, 10, b"cc")
    assert flush(reassembler) == [Gap(3), (2, b"bb"), Gap(3), (3, b"cc")]
    assert (reassembler.gaps, reassembler.gap_bytes, reassembler.pending_bytes) == (2, 6, 0)


def test_fin_after_hole_finishes_only_once_preceding_data_is_delivered():
    reassembler = started_reassembler()
    add(reassembler, 1, 0, b"aa")
    add(reassembler, 3, 4, b"cc", fin=True)
    assert not reassembler.finished
    add(reassembler, 2, 2, b"bb")
    assert reassembler.finished


def test_in_order_fin_finishes_the_stream():
    reassembler = started_reassembler()
    add(reassembler, 1, 0, b"aa", fin=True)
    assert reassembler.finished


def test_flush_with_buffered_fin_segment_finishes_the_stream():
    reassembler = started_reassembler()
    add(reassembler, 1, 0, b"aa")
    add(reassembler, 2, 4, b"cc", fin=True)
    assert flush(reassembler) == [Gap(2), (2, b"cc")]
    assert reassembler.finished


def test_flush_declares_hole_before_dataless_fin_and_finishes():
    reassembler = started_reassembler()
    add(reassembler, 1, 0, b"aa")
    add(reassembler, 2, 6, b"", fin=True)
    assert (flush(reassembler), reassembler.finished) == ([Gap(4)], True)


def test_in_order_delivery_across_sequence_wraparound():
    reassembler = started_reassembler(isn=SEQ_MOD - 4)
    first_seq = SEQ_MOD - 3
    assert add(reassembler, 1, 0, b"abc", first_seq=first_seq) == [(1, b"abc")]
    assert reassembler.next_seq == 0
    assert add(reassembler, 2, 3, b"def", first_seq=first_seq) == [(2, b"def")]
    assert (reassembler.next_seq, reassembler.next_offset) == (3, 6)


def test_out_of_order_segment_after_wraparound_is_buffered_then_delivered():
    reassembler = started_reassembler(isn=SEQ_MOD - 4)
    first_seq = SEQ_MOD - 3
    assert add(reassembler, 2, 3, b"def", first_seq=first_seq) == []
    assert add(reassembler, 1, 0, b"abc", first_seq=first_seq) == [(1, b"abc"), (2, b"def")]


def test_missing_bytes_of_in_order_segment_become_an_immediate_gap():
    reassembler = started_reassembler()
    assert add(reassembler, 1, 0, b"abcd", missing=6) == [(1, b"abcd"), Gap(6)]
    assert add(reassembler, 2, 10, b"next") == [(2, b"next")]


def test_missing_bytes_before_buffered_data_gap_then_deliver_it():
    reassembler = started_reassembler()
    add(reassembler, 2, 10, b"next")
    assert add(reassembler, 1, 0, b"abcd", missing=6) == [(1, b"abcd"), Gap(6), (2, b"next")]


def test_missing_bytes_of_out_of_order_segment_wait_for_ack():
    reassembler = started_reassembler()
    add(reassembler, 1, 0, b"aa")
    assert add(reassembler, 2, 4, b"cc", missing=3) == []
    assert reassembler.gaps == 0


def _segments(stream: bytes, ranges: list[tuple[int, int]]) -> list[tuple[int, bytes]]:
    return [(start, stream[start:end]) for start, end in ranges if end > start]


@st.composite
def resegmented_streams(draw):
    """A byte stream cut into segments, plus duplicates with their own boundaries, in a random order."""
    stream = draw(st.binary(min_size=1, max_size=120))
    cuts = sorted(set(draw(st.lists(st.integers(1, len(stream) - 1), max_size=12)))) if len(stream) > 1 else []
    bounds = [0, *cuts, len(stream)]
    ranges = list(zip(bounds, bounds[1:], strict=False))
    extra = draw(
        st.lists(
            st.tuples(st.integers(0, len(stream)), st.integers(0, len(stream))).map(sorted).map(tuple),
            max_size=8,
        )
    )
    segments = _segments(stream, ranges + extra)
    return stream, draw(st.permutations(segments))


@settings(max_examples=150, deadline=None, database=None)
@given(resegmented_streams(), st.integers(0, SEQ_MOD - 1))
@example((b"abcde", [(1, b"b"), (3, b"de"), (2, b"c"), (1, b"bcd"), (0, b"a")]), ISN)
def test_any_order_and_duplication_of_a_lossless_stream_reassembles_to_it(stream_and_segments, isn):
    stream, segments = stream_and_segments
    reassembler = started_reassembler(isn=isn)
    out: list[StreamItem] = []
    for ts_ns, (offset, data) in enumerate(segments):
        reassembler.on_segment(ts_ns, (isn + 1 + offset) % SEQ_MOD, data, False, out)
    reassembler.flush(out)
    assert [item for item in out if isinstance(item, Gap)] == []
    assert b"".join(item[1] for item in out) == stream


@settings(max_examples=150, deadline=None, database=None)
@given(resegmented_streams(), st.integers(1, 64), st.booleans())
def test_pending_bytes_never_exceed_the_bound(stream_and_segments, bound, with_acks):
    _, segments = stream_and_segments
    reassembler = started_reassembler(max_buffered_bytes=bound)
    out: list[StreamItem] = []
    for ts_ns, (offset, data) in enumerate(segments):
        reassembler.on_segment(ts_ns, FIRST_SEQ + offset, data, False, out)
        if with_acks:
            reassembler.on_peer_ack(FIRST_SEQ + offset, out)
        assert reassembler.pending_bytes <= bound


@settings(max_examples=150, deadline=None, database=None)
@given(resegmented_streams())
@example((b"abcde", [(1, b"b"), (3, b"de"), (2, b"c"), (1, b"bcd"), (0, b"a")]))
def test_pending_bytes_always_equal_the_buffered_bytes(stream_and_segments):
    _, segments = stream_and_segments
    reassembler = started_reassembler()
    out: list[StreamItem] = []
    for ts_ns, (offset, data) in enumerate(segments):
        reassembler.on_segment(ts_ns, FIRST_SEQ + offset, data, False, out)
        assert reassembler.pending_bytes == sum(len(piece) for _, piece in reassembler.pending.values())


def test_acknowledged_bytes_are_no_longer_kept_for_overlap_checks():
    budget = ReassemblyBudget(1 << 20)
    reassembler = StreamReassembler(1 << 16, budget)
    reassembler.on_syn(ISN)
    add(reassembler, 1, 0, b"a" * 1000)
    add(reassembler, 2, 1000, b"b" * 1000)
    assert reassembler.recent_bytes == budget.recent_used == 2000
    ack(reassembler, 1000)
    assert reassembler.recent_bytes == budget.recent_used == 1000
    # A differing copy of acknowledged bytes changes nothing the receiver has: no conflict, nothing delivered.
    assert add(reassembler, 3, 0, b"X" * 1000) == []
    assert reassembler.overlap_conflicts == 0
    # Bytes not yet acknowledged are still compared.
    add(reassembler, 4, 1000, b"Y" * 1000)
    assert reassembler.overlap_conflicts == 1


def test_kept_bytes_of_all_directions_stay_within_the_shared_limit():
    budget = ReassemblyBudget(1 << 20, recent_limit=10_000)
    reassemblers = [StreamReassembler(1 << 16, budget) for _ in range(50)]
    for reassembler in reassemblers:
        reassembler.on_syn(ISN)
        add(reassembler, 1, 0, b"z" * 1000)  # no ACK ever: a one-way capture
        assert budget.recent_used <= 10_000 + 1000
    for reassembler in reassemblers:
        flush(reassembler)
    assert budget.recent_used == 0


def test_retransmissions_on_either_side_of_a_gap_are_compared_with_the_bytes_delivered_there():
    """The kept pieces hold no offsets of their own: each follows from the pieces and gaps before it."""
    reassembler = started_reassembler()
    assert add(reassembler, 1, 0, b"aaaa", missing=4) == [(1, b"aaaa"), Gap(4)]
    assert add(reassembler, 2, 8, b"bbbb") == [(2, b"bbbb")]
    add(reassembler, 3, 8, b"bbbb")
    add(reassembler, 4, 2, b"aa\x00\x00\x00\x00bb")  # what the gap lost cannot be compared
    assert reassembler.overlap_conflicts == 0
    add(reassembler, 5, 0, b"aX")
    add(reassembler, 6, 9, b"X")
    assert reassembler.overlap_conflicts == 2


def test_an_acknowledged_piece_and_the_gap_after_it_are_forgotten_and_the_next_piece_keeps_its_place():
    budget = ReassemblyBudget(1 << 20)
    reassembler = StreamReassembler(1 << 16, budget)
    reassembler.on_syn(ISN)
    add(reassembler, 1, 0, b"aaaa", missing=4)
    add(reassembler, 2, 8, b"bbbb")
    add(reassembler, 3, 12, b"cccc", missing=2)
    add(reassembler, 4, 18, b"dd")
    ack(reassembler, 9)  # past the first piece and its gap, into the second piece
    assert reassembler.recent_bytes == budget.recent_used == 10
    add(reassembler, 5, 0, b"XXXX")  # acknowledged: not compared
    assert reassembler.overlap_conflicts == 0
    add(reassembler, 6, 8, b"bbbX")
    add(reassembler, 7, 18, b"dX")
    assert reassembler.overlap_conflicts == 2
    ack(reassembler, 16)  # the third piece and the gap after it
    assert reassembler.recent_bytes == budget.recent_used == 2
    add(reassembler, 8, 19, b"Y")
    assert reassembler.overlap_conflicts == 3
    flush(reassembler)
    assert reassembler.recent_bytes == budget.recent_used == 0
