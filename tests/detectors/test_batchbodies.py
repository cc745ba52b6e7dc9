"""A batch's bodies taken once for the payload detectors, and the runs of identical bodies marked among them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.batchbodies import bodies_of
from detectors.batchkeys import TransactionBatch
from parsers.transaction import Transaction, transaction_columns


def reference_sources(bodies: list[bytes], groups: list[int], tags: list[str]) -> list[int]:
    """Body by body: the source of the previous body of its group when it has the same tag and bytes."""
    last: dict[int, int] = {}
    sources = []
    for index, (body, group, tag) in enumerate(zip(bodies, groups, tags, strict=True)):
        previous = last.get(group)
        same = previous is not None and tags[previous] == tag and bodies[previous] == body
        sources.append(sources[previous] if same else index)
        last[group] = index
    return sources


def sent(endpoint: str, request: bytes, response: bytes, content_type: str = "application/json") -> Transaction:
    return Transaction(ts=1.0, src_ip="127.0.0.1", src_port=1, dst_ip="127.0.0.2", dst_port=80, method="POST",
                       uri=endpoint, host="h", path=endpoint, query="", http_version="1.1", endpoint=endpoint,
                       status=200, req_body=request, resp_body=response, resp_content_type=content_type)  # fmt: skip


BODIES = [b"", b"a", b"ab", b"{}"]
# The last equals the first but is another str: a content type is told by its value.
TYPES = ["application/json", "text/plain", "".join(["application/", "json"])]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 3), st.integers(0, 2),
                          st.booleans()), max_size=30))  # fmt: skip
def test_the_columns_mark_each_run_of_identical_bodies_of_an_endpoint_and_direction(rows) -> None:
    """Equal bodies, the same object or not (a copy), run on while their endpoint's bodies in that direction
    repeat, with the same content type."""
    endpoints = ["/a", "/b", "/c"]
    batch = [sent(endpoints[endpoint], BODIES[request], bytes(bytearray(BODIES[response])) if copy else
                  BODIES[response], TYPES[content_type])
             for endpoint, request, response, content_type, copy in rows]  # fmt: skip
    columns = transaction_columns(batch)
    groups = [endpoint for endpoint, *_ in rows] + [len(endpoints) + endpoint for endpoint, *_ in rows]
    tags = [row.req_content_type for row in batch] + [row.resp_content_type for row in batch]
    bodies = [row.req_body for row in batch] + [row.resp_body for row in batch]
    assert columns.body_sources.tolist() == reference_sources(bodies, groups, tags)


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
