"""A batch's keys grouped once: each distinct key gets a code, each row the code of its key.

The detectors keep state per key (a client; a client and an endpoint; a client, method and endpoint) in bounded
slot tables. Looking each row's key up in each table costs a tuple and a hash per row and per table, while a
batch of a busy API holds a handful of distinct keys. So a batch's text columns are coded first (as the rows
come, by parsers.transaction.ColumnsBuilder; `codes_of` where a detector needs other keys), keys made of several
columns are grouped from their columns' codes by a numba kernel, and only the distinct keys meet the tables.
Groups are numbered in the order of their first row. numpy's own `unique` would do the grouping too, but costs
some 30 us a call on a batch of a few hundred rows, more than it saves.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, NamedTuple

import numpy as np

from parsers.transaction import TransactionColumns, transaction_columns
from sniffer.aot import kernel


class TransactionBatch(list):
    """A batch of transactions, as the detection engine hands it to each detector, that remembers what several
    detectors read (`columns_of`, `operations_of`, `detectors.batchbodies.bodies_of`), so that it is taken from
    the transactions once."""

    __slots__ = ("bodies", "columns", "operations")

    def __init__(self, transactions: Sequence = ()) -> None:
        super().__init__(transactions)
        self.columns: TransactionColumns | None = None
        self.operations: tuple[list[tuple[str, str]], np.ndarray] | None = None
        self.bodies: tuple[int, Any] | None = None  # (the limit they were cut at, detectors.batchbodies.BatchBodies)


def columns_of(transactions: Sequence) -> TransactionColumns:
    """The fields the detectors read, a column each, taken in one pass (parsers.transaction.transaction_columns);
    remembered by a TransactionBatch (shared: do not change them)."""
    columns = getattr(transactions, "columns", None)
    if columns is None:
        columns = transaction_columns(transactions)
        if isinstance(transactions, TransactionBatch):
            transactions.columns = columns
    return columns


def statuses_of(transactions: Sequence) -> np.ndarray:
    """Each row's response status, 0 where no response was seen (shared: do not change it; not made read-only,
    which numba would compile its kernels apart for)."""
    return columns_of(transactions).statuses


def operations_of(transactions: Sequence) -> tuple[list[tuple[str, str]], np.ndarray]:
    """(the distinct (method, endpoint) operations of a batch in order of first row, each row's index into them).
    The endpoint is the path where templating gave none. Remembered by a TransactionBatch.

    Methods and endpoints are coded apart (strings keep their hashes; tuples would be hashed at every lookup)
    and their codes grouped."""
    operations = getattr(transactions, "operations", None)
    if operations is not None:
        return operations
    columns = columns_of(transactions)
    endpoints, endpoint_codes = columns.distinct_endpoints, columns.endpoint_codes
    if "" in endpoints:  # rare: no template, the path stands in
        rows = zip(columns.methods, columns.endpoints, columns.paths, strict=True)
        operations = codes_of([(method, endpoint or path) for method, endpoint, path in rows])
    else:
        methods, method_codes = columns.distinct_methods, columns.method_codes
        if len(methods) == 1:
            operations = ([(methods[0], endpoint) for endpoint in endpoints], endpoint_codes)
        else:
            by_operation = group((len(methods), method_codes), (len(endpoints), endpoint_codes))
            operations = ([(methods[method_codes[row]], endpoints[endpoint_codes[row]])
                           for row in by_operation.firsts.tolist()], by_operation.codes)  # fmt: skip
    if isinstance(transactions, TransactionBatch):
        transactions.operations = operations
    return operations


def codes_of(values: Sequence[Hashable]) -> tuple[list, np.ndarray]:
    """(distinct values in order of first appearance, each row's index into them)."""
    index = dict.fromkeys(values)
    distinct = list(index)
    index.update(zip(distinct, range(len(distinct)), strict=True))
    return distinct, np.fromiter(map(index.__getitem__, values), np.int64, len(values))


class Groups(NamedTuple):
    """Rows grouped by key: each row's group, and each group's first and last row (groups by first row)."""

    codes: np.ndarray
    firsts: np.ndarray
    lasts: np.ndarray

    def __len__(self) -> int:
        return len(self.firsts)

    def recency_order(self) -> np.ndarray:
        """The groups ordered by their last row: touching their keys in this order leaves a least-recently-used
        table in the order that touching every row's key in turn would."""
        return np.argsort(self.lasts, kind="stable")

    def first_per_group(self, rows: np.ndarray) -> list[tuple[int, int]]:
        """(first row, number of rows) per group among `rows` (ascending), in order of first row: one alert per key
        and batch carries the rest as its count."""
        if not len(rows):
            return []
        firsts, counts = first_per_group(rows, self.codes, len(self.firsts))
        return list(zip(firsts.tolist(), counts.tolist(), strict=True))


def group(*columns: tuple[int, np.ndarray]) -> Groups:
    """The rows grouped by the tuple of several coded columns, each given as (number of codes, row codes)."""
    joint = columns[0][1]
    for count, codes in columns[1:]:
        joint = joint * count + codes
    return Groups(*group_rows(joint))


# Grouping hashes each key into an open-addressing table of at least twice as many slots as rows: one pass, in row
# order, so groups are numbered by first row as they are met (a stable sort of the keys, then renumbering by
# first row, took 8-19 us a batch of 512, this 1.6-1.9). The table's slot of a key: its low 31 bits, with the
# high ones folded in, times an odd constant (the product fits in int64: no overflow in plain Python either),
# bits 20 and up. Codes combined by `group` are multiples of a column's count plus a code, which a mask of the
# low bits alone would pile into a few slots.
HASH_MULTIPLIER = 0x9E3779B1
HASH_SHIFT = 20
LOW_31_BITS = 0x7FFFFFFF


@kernel("i8[::1]")
def group_rows(keys):
    """(each row's group, each group's first row, each group's last row) of integer keys, groups numbered in the
    order of their first row."""
    count = len(keys)
    codes = np.empty(count, np.int64)
    firsts = np.empty(count, np.int64)
    lasts = np.empty(count, np.int64)
    size = 16
    while size < 2 * count:
        size *= 2
    mask = size - 1
    slot_keys = np.empty(size, np.int64)
    slot_groups = np.full(size, -1, np.int64)
    groups = 0
    for row in range(count):
        key = keys[row]
        slot = ((((key ^ (key >> 31)) & LOW_31_BITS) * HASH_MULTIPLIER) >> HASH_SHIFT) & mask
        while True:
            found = slot_groups[slot]
            if found < 0:
                slot_groups[slot] = groups
                slot_keys[slot] = key
                firsts[groups] = row
                lasts[groups] = row
                codes[row] = groups
                groups += 1
                break
            if slot_keys[slot] == key:
                lasts[found] = row
                codes[row] = found
                break
            slot = (slot + 1) & mask
    return codes, firsts[:groups], lasts[:groups]


@kernel("i8[::1]", "i8[::1]", "i8")
def first_per_group(rows, codes, groups):
    """(first row, number of rows) of each group present among `rows` (ascending), in order of first row."""
    counts = np.zeros(groups, np.int64)
    found_rows = np.empty(len(rows), np.int64)
    found_groups = np.empty(len(rows), np.int64)
    found = 0
    for row in rows:
        code = codes[row]
        if counts[code] == 0:
            found_rows[found] = row
            found_groups[found] = code
            found += 1
        counts[code] += 1
    result = np.empty(found, np.int64)
    for position in range(found):
        result[position] = counts[found_groups[position]]
    return found_rows[:found], result
