"""A batch's bodies taken once for the payload detectors, and the runs of identical bodies marked among them."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from support.kernels import python_body

from detectors.batchbodies import bodies_of, previous_in_group, repeat_sources, run_sources
from detectors.batchkeys import TransactionBatch
from parsers.transaction import Transaction


def reference_sources(bodies: list[bytes], groups: list[int], tags: list[int]) -> list[int]:
    """Body by body: the source of the previous body of its group when it has the same tag and bytes."""
    last: dict[int, int] = {}
    sources = []
    for index, (body, group, tag) in enumerate(zip(bodies, groups, tags, strict=True)):
        previous = last.get(group)
        same = previous is not None and tags[previous] == tag and bodies[previous] == body
        sources.append(sources[previous] if same else index)
        last[group] = index
    return sources


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"", b"a", b"ab", b"{}"]), st.integers(0, 2), st.integers(0, 1)),
                max_size=30))  # fmt: skip
def test_repeat_sources_mark_each_run_of_identical_bodies_of_a_group(rows) -> None:
    bodies = [body for body, _, _ in rows]
    groups = [group for _, group, _ in rows]
    tags = [tag for _, _, tag in rows]
    found = repeat_sources(bodies, np.array(groups, np.int64), np.array(tags, np.int64))
    assert found.tolist() == reference_sources(bodies, groups, tags)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), max_size=40))
def test_previous_in_group_and_run_sources_match_their_python_bodies_and_a_dict(rows) -> None:
    groups = np.array([group for group, _ in rows], np.int64)
    last: dict[int, int] = {}
    expected_previous = []
    for row, (group, _) in enumerate(rows):
        expected_previous.append(last.get(group, -1))
        last[group] = row
    same = np.array([repeats and previous >= 0 for (_, repeats), previous in zip(rows, expected_previous,
                                                                                 strict=True)], dtype=bool)
    expected_sources: list[int] = []
    for row, previous in enumerate(expected_previous):
        expected_sources.append(expected_sources[previous] if same[row] else row)
    for kernel in (previous_in_group, python_body(previous_in_group)):
        assert kernel(groups).tolist() == expected_previous
    for kernel in (run_sources, python_body(run_sources)):
        assert kernel(np.array(expected_previous, np.int64), same).tolist() == expected_sources


def sent(endpoint: str, request: bytes, response: bytes, content_type: str = "application/json") -> Transaction:
    return Transaction(ts=1.0, src_ip="127.0.0.1", src_port=1, dst_ip="127.0.0.2", dst_port=80, method="POST",
                       uri=endpoint, host="h", path=endpoint, query="", http_version="1.1", endpoint=endpoint,
                       status=200, req_body=request, resp_body=response, resp_content_type=content_type)  # fmt: skip


def test_a_batch_takes_its_bodies_once_cut_at_the_limit_with_repeats_per_endpoint_and_direction() -> None:
    same = b'{"ok": true}'
    batch = TransactionBatch([
        sent("/a", b"", same), sent("/b", b"", same), sent("/a", b"", bytes(same)), sent("/a", b"x" * 9, same),
        sent("/a", b"", same, content_type="text/plain"),
    ])  # fmt: skip
    found = bodies_of(batch, 8)
    assert found.bodies[:5] == [b"", b"", b"", b"x" * 8, b""] and found.bodies[5:] == [b'{"ok": t'] * 5
    assert found.kept.tolist() == [0, 0, 0, 9, 0] + [12] * 5
    assert found.lengths.tolist() == [0, 0, 0, 8, 0] + [8] * 5
    # Requests: /a's empty bodies run on until the long one; /b alone. Responses: /a's run to a new content type.
    assert found.sources.tolist() == [0, 1, 0, 3, 4] + [5, 6, 5, 5, 9]
    assert found.distinct().tolist() == [0, 1, 3, 4, 5, 6, 9]
    assert found.buffer.tobytes() == b"x" * 8 + b'{"ok": t' * 3  # the distinct bodies only
    assert [found.buffer[offset : offset + length].tobytes()
            for offset, length in zip(found.offsets, found.lengths, strict=True)] == found.bodies  # fmt: skip
    assert bodies_of(batch, 8) is found  # remembered for the limit
    assert bodies_of(batch, 64).bodies[5] == same
