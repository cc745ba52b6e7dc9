"""The transaction's JSON-line form: public fields only, in declaration order, the same as dataclasses.asdict
would give them, and independent of the transaction it came from; a batch's columns, as the detectors read them,
field by field; and how transactions are gathered into the detectors' batches."""

from __future__ import annotations

import json
from dataclasses import asdict, fields

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.transaction import (
    IDENTITY_SCAN,
    PRIVATE_FIELDS,
    PUBLIC_FIELDS,
    BatchCollector,
    ColumnsBuilder,
    Transaction,
    TransactionColumns,
    carried_features,
    transaction_columns,
)  # fmt: skip
from sniffer.sinks.jsonl import JsonLinesSink


def a_transaction() -> Transaction:
    transaction = Transaction(
        ts=1700000000.123456, src_ip="10.0.0.1", src_port=40000, dst_ip="10.0.0.2", dst_port=80, method="POST",
        uri="/login?password=***", host="api.example", path="/login", query="password=***", http_version="1.1",
        endpoint="/login", status=401, reason="Unauthorized", latency_ms=1.5, client_id="10.0.0.1",
        user_agent="curl/8 \u00e9", flags=["midstream"],
    )  # fmt: skip
    transaction.req_body = b'{"password": "hunter2"}'
    transaction.req_headers = [(b"authorization", b"Bearer secret-token")]
    transaction.forwarded_for = "192.0.2.7"
    transaction.raw_target = "/login?password=hunter2"
    return transaction


def test_record_is_asdict_without_the_private_fields() -> None:
    transaction = a_transaction()
    expected = asdict(transaction)
    for name in PRIVATE_FIELDS:
        del expected[name]
    record = transaction.to_record()
    assert record == expected
    assert list(record) == [field.name for field in fields(Transaction) if field.name not in PRIVATE_FIELDS]
    assert list(record) == list(PUBLIC_FIELDS)


def test_record_shares_nothing_mutable_with_the_transaction() -> None:
    transaction = a_transaction()
    record = transaction.to_record()
    record["flags"].append("changed")
    assert transaction.flags == ["midstream"]


def test_json_line_holds_no_secret_and_reads_back_as_the_record(tmp_path) -> None:
    transaction = a_transaction()
    path = tmp_path / "transactions.jsonl"
    sink = JsonLinesSink(str(path))
    sink.write(transaction)
    sink.close()
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and text.count("\n") == 1
    assert "hunter2" not in text and "secret-token" not in text and "192.0.2.7" not in text
    assert "curl/8 \u00e9" in text  # not escaped: the log is UTF-8
    assert json.loads(text) == transaction.to_record()


def test_columns_hold_each_transactions_fields_requests_then_responses() -> None:
    login = a_transaction()
    login.resp_body, login.resp_content_type, login.resp_body_bytes = b"denied", "text/plain", 40
    login.req_content_type, login.req_body_bytes = "application/json", 23
    login.resp_headers = [(b"content-type", b"text/plain")]
    unanswered = Transaction(
        ts=1700000001.5, src_ip="10.0.0.3", src_port=40001, dst_ip="10.0.0.2", dst_port=80, method="GET",
        uri="/items/7", host="api.example", path="/items/7", query="", http_version="1.1", endpoint="/items/{id}",
    )  # fmt: skip
    rows = [login, unanswered]
    columns = transaction_columns(rows)
    assert columns.ts.dtype == np.float64 and columns.ts.tolist() == [1700000000.123456, 1700000001.5]
    assert columns.client_ids == ["10.0.0.1", ""] and columns.src_ips == ["10.0.0.1", "10.0.0.3"]
    assert columns.methods == ["POST", "GET"] and columns.endpoints == ["/login", "/items/{id}"]
    assert columns.paths == ["/login", "/items/7"]
    assert columns.statuses.dtype == np.int64 and columns.statuses.tolist() == [401, 0]  # no response: 0
    assert columns.targets == ["/login?password=hunter2", "/items/7"]  # the raw target, else the uri
    assert columns.req_headers[0] is login.req_headers and columns.resp_headers[0] is login.resp_headers
    assert columns.req_headers[1] == () and columns.resp_headers[1] == ()  # none parsed: the shared empty default
    assert columns.bodies == [b'{"password": "hunter2"}', b"", b"denied", b""]
    assert columns.body_lengths.tolist() == [23, 0, 6, 0]
    assert columns.body_sources.tolist() == [0, 1, 2, 3]  # two endpoints: no body repeats another of its own
    assert columns.wire_bytes.tolist() == [23, 0, 40, 0]
    assert columns.distinct_endpoints == ["/login", "/items/{id}"] and columns.endpoint_codes.tolist() == [0, 1]
    assert columns.distinct_methods == ["POST", "GET"] and columns.method_codes.tolist() == [0, 1]
    assert columns.distinct_clients == ["10.0.0.1", ""] and columns.client_codes.tolist() == [0, 1]
    assert columns.path_lengths.tolist() == [6, 8]
    assert columns.target_lengths.tolist() == [len("/login?password=hunter2"), 8]
    numeric = {column.dtype for column in columns if isinstance(column, np.ndarray)}
    assert numeric == {np.dtype(np.int64), np.dtype(np.float64)}
    assert [len(column) for column in transaction_columns([])] == [0] * len(columns)


def same_columns(these: TransactionColumns, those: TransactionColumns) -> bool:
    return all(
        np.array_equal(this, that) if isinstance(this, np.ndarray) else this == that
        for this, that in zip(these, those, strict=True)
    )


def test_columns_grow_past_the_rows_they_were_made_for() -> None:
    rows = [a_request(10.0 + n, b"x" * n) for n in range(5)]
    builder = ColumnsBuilder(capacity=2)
    for row in rows:
        builder.append(row)
    columns = builder.columns()
    assert builder.capacity == 8 and same_columns(columns, transaction_columns(rows))
    assert columns.ts.tolist() == [10.0, 11.0, 12.0, 13.0, 14.0]
    assert columns.body_lengths.tolist() == [0, 1, 2, 3, 4, 0, 0, 0, 0, 0]
    assert columns.wire_bytes.tolist() == [0] * 10
    # Coded in order of first row: two endpoints, one client.
    rows[3].endpoint = rows[4].endpoint = "/items/{id}"
    columns = transaction_columns(rows)
    assert columns.distinct_endpoints == ["/items", "/items/{id}"]
    assert columns.endpoint_codes.tolist() == [0, 0, 0, 1, 1]
    assert columns.distinct_clients == [""] and columns.client_codes.tolist() == [0] * 5


def test_flags_and_header_lists_default_to_one_shared_empty_tuple() -> None:
    """Not a new list each: the builder sets lists of its own, so a default one would be made only to be dropped."""
    first, second = a_request(1.0), a_request(2.0)
    for name in ("flags", "req_headers", "resp_headers"):
        assert getattr(first, name) == () and getattr(first, name) is getattr(second, name)
    assert first.to_record()["flags"] == []


def test_columns_are_written_whole_whatever_their_arrays_held_before() -> None:
    """The arrays are not zeroed when made (np.empty): every column of a row must be written before it is read,
    also past a growth, which copies only the rows taken."""
    poison = -7777
    rows = [a_request(10.0 + n, b"x" * n) for n in range(3)] + [a_transaction()]
    builder = ColumnsBuilder(capacity=2)
    for row in rows:
        ts, numbers = builder.numbers  # made anew when the builder grows
        ts[builder.count :] = poison
        numbers[:, builder.count :] = poison
        builder.append(row)
    columns = builder.columns()
    numeric = [column for column in columns if isinstance(column, np.ndarray)]
    assert builder.capacity == 4 and all((column != poison).all() for column in numeric)
    assert same_columns(columns, transaction_columns(rows))


def a_request(ts: float, body: bytes = b"") -> Transaction:
    return Transaction(
        ts=ts, src_ip="10.0.0.3", src_port=40001, dst_ip="10.0.0.2", dst_port=80, method="POST", uri="/items",
        host="api.example", path="/items", query="", http_version="1.1", endpoint="/items", req_body=body,
    )  # fmt: skip


def test_a_collector_seals_batches_by_count_by_body_bytes_and_by_delay_with_their_columns() -> None:
    collector = BatchCollector(batch_size=3, max_body_bytes=100, max_delay_s=1.0)
    first = [a_request(10.0), a_request(10.1, b"x" * 10), a_request(10.2)]
    assert [collector.add(row) for row in first] == [False, False, True]  # the third fills the batch
    assert len(collector) == 0
    (transactions, columns, carried), = collector.take()
    assert transactions == first and same_columns(columns, transaction_columns(first)) and carried == []
    assert collector.take() == []
    # Bodies: 60 + 50 bytes pass 100, counted as the transactions hold them unless the caller says otherwise.
    assert collector.add(a_request(11.0, b"y" * 60)) is False
    assert collector.add(a_request(11.1), body_bytes=50, raised=["alert"]) is True
    (transactions, _, carried), = collector.take()
    assert [row.ts for row in transactions] == [11.0, 11.1] and carried == ["alert"]
    # A transaction a second after the batch's first seals the batch before it, and opens the next.
    assert collector.add(a_request(12.0)) is False
    assert collector.add(a_request(12.5)) is False
    assert collector.add(a_request(13.0), raised=["later"]) is True
    (transactions, _, carried), = collector.take()
    assert [row.ts for row in transactions] == [12.0, 12.5] and carried == []
    assert len(collector) == 1 and collector.started_s == 13.0
    # An idle link: the open batch is sealed once its first transaction is the delay old at the given time.
    assert collector.seal_due(13.9) is False and len(collector) == 1
    assert collector.seal_due(14.0) is True
    (transactions, _, carried), = collector.take()
    assert [row.ts for row in transactions] == [13.0] and carried == ["later"]
    collector.seal()  # nothing open: nothing sealed
    assert collector.take() == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=60))
def test_header_lists_are_coded_by_identity_in_order_of_first_row(picks) -> None:
    """Equal lists that are different objects stay apart; one object met again gets its first code, among the
    first IDENTITY_SCAN distinct lists of a batch and past them."""
    pool = [[], [], [(b"a", b"1")], [(b"a", b"1")], [(b"b", b"2")], []] * 2  # equal, apart by identity
    pool = [list(headers) for headers in pool]
    assert len(pool) > IDENTITY_SCAN
    rows = []
    for request, response in picks:
        row = a_request(1.0)
        row.req_headers, row.resp_headers = pool[request], pool[response]
        rows.append(row)
    columns = transaction_columns(rows)
    for distinct, codes, lists in (
        (columns.distinct_req_headers, columns.req_header_codes, [row.req_headers for row in rows]),
        (columns.distinct_resp_headers, columns.resp_header_codes, [row.resp_headers for row in rows]),
    ):
        by_id: dict[int, int] = {}
        for headers in lists:
            by_id.setdefault(id(headers), len(by_id))
        assert [id(found) for found in distinct] == list(by_id)
        assert codes.tolist() == [by_id[id(headers)] for headers in lists]


def test_carried_features_give_each_key_set_as_the_first_equal_one_and_map_each_copy_once() -> None:
    """What the parent's payload judge reads of a batch: the rows that carry features, their values taken from the
    arrays of the blocks that brought them, and key sets interned, so that copies of one key set (each block of a
    worker brings its own) become one object."""
    first, copy = frozenset({"id", "name"}), frozenset({"id", "name"})
    other = frozenset({"qty"})
    block, later = np.arange(8.0).reshape(4, 2), np.arange(100.0, 106.0).reshape(3, 2)
    rows = [a_transaction() for _ in range(5)]
    rows[0].payload_features = (block, 2, (first, None))
    rows[1].payload_features = (later, 0, (copy, other))
    rows[3].payload_features = (block, 0, (None, copy))
    rows[4].payload_features = (later, 2, (other, None))
    interned: dict = {}
    aliases: dict = {}
    tagged, values, requests, responses, request_ids, response_ids = carried_features(rows, interned, aliases)
    assert tagged == [0, 1, 3, 4]
    assert values.tolist() == [[4.0, 5.0], [100.0, 101.0], [0.0, 1.0], [104.0, 105.0]]
    assert requests == [first, first, None, other] and requests[1] is first
    assert responses == [None, other, first, None] and responses[2] is first
    assert request_ids == [id(first), id(first), id(None), id(other)]
    assert response_ids == [id(None), id(other), id(first), id(None)]
    assert aliases[id(copy)] == (copy, first) and aliases[id(copy)][1] is first and len(interned) == 2
    whole = [a_transaction() for _ in range(4)]
    for row, transaction in enumerate(whole):
        transaction.payload_features = (block, row, (None, None))
    tagged, values = carried_features(whole, interned, aliases)[:2]
    assert tagged is None and values is block  # one block's rows, all of them in order: its own array
    whole[0].payload_features = None
    assert carried_features(whole, interned, aliases)[1].tolist() == block[1:].tolist()
    assert carried_features(whole[:1], interned, aliases)[1] is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5)), max_size=40))
def test_texts_are_coded_by_value_in_order_of_first_row_whether_or_not_rows_share_the_str(picks) -> None:
    """A row that repeats the previous row's str object takes its code without a lookup; an equal str that is a
    different object (a client id decoded anew, say) still gets the same code."""
    words = ["GET", "POST", "10.0.0.1", "/items", "text/plain", ""]
    fresh = [word.encode().decode() for word in words]  # equal, never the same object (but the empty str)
    rows = []
    for number, (method, client, content_type) in enumerate(picks):
        row = a_request(1.0)
        pool = words if number % 3 else fresh
        row.method, row.client_id, row.endpoint = pool[method], pool[client], pool[method]
        row.req_content_type, row.resp_content_type = pool[content_type], pool[(content_type + number) % 6]
        rows.append(row)
    columns = transaction_columns(rows)
    for distinct, codes, values in (
        (columns.distinct_methods, columns.method_codes, [row.method for row in rows]),
        (columns.distinct_clients, columns.client_codes, [row.client_id for row in rows]),
        (columns.distinct_endpoints, columns.endpoint_codes, [row.endpoint for row in rows]),
    ):
        in_order = list(dict.fromkeys(values))
        assert distinct == in_order and codes.tolist() == [in_order.index(value) for value in values]
