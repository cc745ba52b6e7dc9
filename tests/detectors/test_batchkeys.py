"""Grouping a batch's keys: the kernels against their Python bodies and a dict-based reference."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from support.kernels import python_body

from detectors.batchkeys import codes_of, first_per_group, group, group_rows

keys = st.lists(st.integers(-3, 6), max_size=300)
# What `group` makes of several coded columns: multiples of a column's count plus a code, and any int64 at all.
wide_keys = st.lists(
    st.one_of(st.integers(0, 40).map(lambda code: code * 1024), st.integers(-(2**63), 2**63 - 1)), max_size=300
)


def reference_groups(values: list[int]) -> tuple[list[int], list[int], list[int]]:
    """(each row's group, each group's first row, last row), groups by first row: plain dicts."""
    numbers: dict[int, int] = {}
    firsts: list[int] = []
    lasts: list[int] = []
    codes = []
    for row, value in enumerate(values):
        if value not in numbers:
            numbers[value] = len(numbers)
            firsts.append(row)
            lasts.append(row)
        lasts[numbers[value]] = row
        codes.append(numbers[value])
    return codes, firsts, lasts


@settings(max_examples=200, deadline=None)
@given(st.one_of(keys, wide_keys))
def test_group_rows_matches_its_python_body_and_a_dict(values) -> None:
    array = np.array(values, np.int64)
    expected = reference_groups(values)
    for kernel in (group_rows, python_body(group_rows)):
        codes, firsts, lasts = kernel(array)
        assert (codes.tolist(), firsts.tolist(), lasts.tolist()) == expected


@settings(max_examples=200, deadline=None)
@given(keys, st.data())
def test_first_per_group_counts_each_group_from_its_first_row(values, data) -> None:
    codes, _, firsts = reference_groups(values)
    rows = sorted(data.draw(st.sets(st.integers(0, max(0, len(values) - 1)))) if values else [])
    expected: dict[int, list[int]] = {}
    for row in rows:
        expected.setdefault(codes[row], [row, 0])[1] += 1
    for kernel in (first_per_group, python_body(first_per_group)):
        found_rows, counts = kernel(np.array(rows, np.int64), np.array(codes, np.int64), len(firsts))
        assert list(zip(found_rows.tolist(), counts.tolist(), strict=True)) == [tuple(v) for v in expected.values()]


@settings(max_examples=100, deadline=None)
@given(keys)
def test_touching_groups_in_recency_order_leaves_the_lru_order_of_touching_every_row(values) -> None:
    row_by_row: OrderedDict[int, None] = OrderedDict()
    for value in values:
        row_by_row[value] = None
        row_by_row.move_to_end(value)
    distinct, codes = codes_of(values)
    grouped: OrderedDict[int, None] = OrderedDict()
    for code in group((len(distinct), codes)).recency_order().tolist():
        grouped[distinct[code]] = None
    assert list(grouped) == list(row_by_row)


def test_pairs_of_columns_group_by_both_and_say_where_each_group_starts() -> None:
    clients, client_codes = codes_of(["a", "b", "a", "a", "b", "c"])
    endpoints, endpoint_codes = codes_of(["/x", "/x", "/y", "/x", "/x", "/x"])
    assert clients == ["a", "b", "c"] and endpoints == ["/x", "/y"]
    pairs = group((len(clients), client_codes), (len(endpoints), endpoint_codes))
    assert pairs.codes.tolist() == [0, 1, 2, 0, 1, 3]
    assert pairs.firsts.tolist() == [0, 1, 2, 5]
    assert pairs.lasts.tolist() == [3, 4, 2, 5]
    assert pairs.first_per_group(np.array([1, 3, 4, 5])) == [(1, 2), (3, 1), (5, 1)]
    assert pairs.first_per_group(np.array([], np.int64)) == []


def test_a_batch_takes_its_operations_from_the_transactions_once() -> None:
    from detectors.batchkeys import TransactionBatch, operations_of
    from parsers.transaction import Transaction

    def sent(method: str, path: str, endpoint: str) -> Transaction:
        return Transaction(ts=1.0, src_ip="127.0.0.1", src_port=1, dst_ip="127.0.0.2", dst_port=80,
                           method=method, uri=path, host="h", path=path, query="", http_version="HTTP/1.1",
                           endpoint=endpoint)  # fmt: skip

    rows = [sent("GET", "/users/1", "/users/{id}"), sent("POST", "/users", "/users"),
            sent("GET", "/users/2", "/users/{id}"), sent("GET", "/raw", "")]  # fmt: skip
    batch = TransactionBatch(rows)
    operations, codes = operations_of(batch)
    assert operations == [("GET", "/users/{id}"), ("POST", "/users"), ("GET", "/raw")]
    assert codes.tolist() == [0, 1, 0, 2]
    batch[0].method = "DELETE"  # remembered: not read again
    assert operations_of(batch)[0] is operations
    assert operations_of(list(batch))[0][0] == ("DELETE", "/users/{id}")  # a plain list is read each time


def test_a_batch_takes_its_statuses_from_the_transactions_once() -> None:
    from detectors.batchkeys import TransactionBatch, statuses_of
    from parsers.transaction import Transaction

    rows = [Transaction(ts=1.0, src_ip="127.0.0.1", src_port=1, dst_ip="127.0.0.2", dst_port=80, method="GET",
                        uri="/", host="h", path="/", query="", http_version="1.1", status=status)
            for status in (200, None, 401)]  # fmt: skip
    batch = TransactionBatch(rows)
    statuses = statuses_of(batch)
    assert statuses.tolist() == [200, 0, 401]  # no response: 0
    batch[1].status = 500  # remembered: not read again
    assert statuses_of(batch) is statuses
    assert statuses_of(list(batch)).tolist() == [200, 500, 401]  # a plain list is read each time
