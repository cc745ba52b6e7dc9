"""A worker's transactions in columns across the pipe: the parent gets back what it got as a tuple per transaction."""

from __future__ import annotations

import pickle

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import sniffer.shipping as shipping
from detectors.alert import Alert
from parsers.transaction import PRIVATE_FIELDS, PUBLIC_FIELDS, Transaction, public_values
from sniffer.shipping import NUMBER_FIELDS, OBJECT_FIELDS, TEXT_FIELDS, received, ship

texts = st.text(max_size=12)
keysets = st.none() | st.frozensets(st.sampled_from(["id", "name", "tags", "qty"]))


@st.composite
def transactions(draw: st.DrawFn) -> Transaction:
    """A transaction as a worker's builder makes one: every public field, answered or not, with private ones set."""
    answered = draw(st.booleans())
    return Transaction(
        ts=draw(st.floats(0, 2e9, allow_nan=False)), src_ip=draw(texts), src_port=draw(st.integers(0, 65535)),
        dst_ip=draw(texts), dst_port=draw(st.integers(0, 65535)), method=draw(st.sampled_from(["GET", "POST", ""])),
        uri=draw(texts), host=draw(texts), path=draw(texts), query=draw(texts),
        http_version=draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0"])), endpoint=draw(texts),
        status=draw(st.integers(100, 999)) if answered else None, reason=draw(texts),
        latency_ms=draw(st.floats(0, 1e7, allow_nan=False)) if answered else None,
        req_body_bytes=draw(st.integers(0, 1 << 40)), resp_body_bytes=draw(st.integers(0, 1 << 40)),
        req_content_type=draw(texts), resp_content_type=draw(texts), client_id=draw(texts),
        api_key_hash=draw(st.none() | texts), user_agent=draw(texts),
        flags=draw(st.sampled_from([(), ("gap",), ["pipelined", "no_response"]])),
        forwarded_for="203.0.113.9", forwarded="for=203.0.113.9", req_body=draw(st.binary(max_size=20)),
        resp_body=draw(st.binary(max_size=20)), raw_target="/secret?token=x", req_headers=[(b"cookie", b"a=b")],
        resp_headers=[(b"set-cookie", b"c=d")],
    )  # fmt: skip


def test_every_public_field_crosses_and_no_private_one() -> None:
    assert sorted([*NUMBER_FIELDS, *TEXT_FIELDS, *OBJECT_FIELDS]) == sorted(PUBLIC_FIELDS)
    assert not set(PRIVATE_FIELDS) & {*NUMBER_FIELDS, *TEXT_FIELDS, *OBJECT_FIELDS}
    assert len(TEXT_FIELDS) == shipping.TEXT_COLUMNS


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(transactions(), keysets, keysets, st.booleans()), max_size=12), max_size=4),
       st.booleans(), st.integers(1, 40))  # fmt: skip
def test_blocks_arrive_as_the_tuples_of_each_transaction_gave_them(blocks, tagged, max_codes) -> None:
    """What the parent holds of each transaction, block after block: its public fields as the worker had them,
    private ones at their defaults, the bytes its bodies weighed, the worker's alerts, its key sets beside its
    feature row, and where it was emitted. Texts cross once each, until their numbering starts again (here after
    as few as `max_codes`), and the parent's copy of them stays as bounded as the worker's numbering."""
    numbered: dict = {}
    texts: list = []
    original = shipping.MAX_TEXT_CODES
    shipping.MAX_TEXT_CODES = max_codes
    try:
        for rows in blocks:
            check_block(rows, tagged, numbered, texts)
            assert len(texts) == len(numbered) <= max_codes + 15 * len(rows)
    finally:
        shipping.MAX_TEXT_CODES = original


def check_block(rows: list[tuple], tagged: bool, numbered: dict, texts: list) -> None:
    block = [transaction for transaction, _, _, _ in rows]
    features = np.arange(len(rows) * 3, dtype=np.float64).reshape(len(rows), 3) if tagged else None
    alerts = []
    for index, (transaction, request, response, raises) in enumerate(rows):
        if tagged:
            transaction.payload_features = (features, index, (request, response))
        raised = Alert(transaction.ts, "injection", "sqli", "high", transaction.src_ip, transaction.client_id,
                       transaction.method, transaction.endpoint, "an injection", "' OR 1=1", 1.0)  # fmt: skip
        alerts.append([raised] if raises else [])
    positions = [(3 * index + 1, index) for index in range(len(rows))]
    sent = ship(block, positions, alerts, tagged, numbered)
    shipped = pickle.loads(pickle.dumps(sent, protocol=pickle.HIGHEST_PROTOCOL))
    entries = received(shipped, features, texts)
    assert len(entries) == len(rows)
    for index, (transaction, body_bytes, raised, position) in enumerate(entries):
        sent = block[index]
        assert public_values(transaction) == public_values(sent)
        assert [type(value) for value in public_values(transaction)][:5] == [float, str, int, str, int]
        assert (transaction.forwarded_for, transaction.forwarded, transaction.raw_target) == ("", "", "")
        assert (transaction.req_body, transaction.resp_body) == (b"", b"")
        assert (transaction.req_headers, transaction.resp_headers) == ((), ())
        assert body_bytes == len(sent.req_body) + len(sent.resp_body)
        assert list(raised) == alerts[index]
        assert position == positions[index]
        if tagged:
            values, row, pair = transaction.payload_features
            assert values[row].tolist() == features[index].tolist() and pair == sent.payload_features[2]
        else:
            assert transaction.payload_features is None


def test_a_text_crosses_once_and_arrives_as_one_object() -> None:
    """A block's repeated texts, and texts an earlier block sent, are not sent again: the parent's transactions
    share one object for each."""
    numbered: dict = {}
    texts: list = []
    first = [Transaction(1.0, "10.0.0.1", 5000, "10.0.0.2", 80, "GET", f"/items/{n}", "api", f"/items/{n}", "",
                         "HTTP/1.1", endpoint="/items/{id}", status=200, latency_ms=1.5) for n in range(3)]  # fmt: skip
    shipped = ship(first, [(n, 0) for n in range(3)], [[], [], []], False, numbered)
    assert "10.0.0.1" in shipped.new_texts and len(shipped.new_texts) == len(set(shipped.new_texts))
    held = received(pickle.loads(pickle.dumps(shipped)), None, texts)
    assert held[0][0].src_ip is held[2][0].src_ip and held[0][0].endpoint is held[1][0].endpoint
    again = ship(first[:1], [(9, 0)], [[]], False, numbered)
    assert again.new_texts == []
    later = received(pickle.loads(pickle.dumps(again)), None, texts)
    assert later[0][0].uri is held[0][0].uri and later[0][0].uri == "/items/0"


def test_an_empty_block_crosses() -> None:
    shipped = ship([], [], [], True, {})
    assert received(pickle.loads(pickle.dumps(shipped)), np.empty((0, 3)), []) == []
