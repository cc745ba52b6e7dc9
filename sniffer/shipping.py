"""A worker's transactions as they cross the pipe to the parent of `--workers N`: in columns, not a tuple each.

Each transaction goes to the parent with its public fields (the private ones, headers and bodies, stay where its
detectors read them), the bytes its bodies weighed, the alerts the worker's detectors raised on it, its JSON key
sets for the payload baselines and where in the input it was emitted. As a tuple per transaction, pickled, that cost
the worker some 13,000 instructions a transaction (reading the fields through their descriptors, making the tuple,
pickling two dozen objects) and the parent some 8,200 (unpickling, and making the transaction again through its
`__init__`'s argument parsing): callgrind, compiled, 2 processes on the bench capture's first 120,000 packets.

In columns, the numbers of a block go as two arrays, one pickled block of bytes each. Text goes as codes, one
array of them: each worker numbers every distinct text it ships (`ship`'s `numbered`) and sends a text itself only
the first time, and the parent keeps each worker's texts by number (`received`), so a connection's addresses, a
client's id or an endpoint's name cross once, and the parent's transactions share one object per text, as one
process's mostly do. The numbering starts again once it holds MAX_TEXT_CODES texts (the parent's copy then too), so
a stream of distinct URIs stays bounded. The few transactions that raised alerts carry them in a dictionary by
row. Compiled (setup.py, with shipping.pxd), both ends read and set the transaction's fields as C struct fields.
Measured as above, the worker now spends some 6,000 instructions a transaction on it (4,300 making the columns,
most of it numbering the texts, and 1,700 pickling them) and the parent some 3,500. A text that is the very object
the row before had takes that row's code without a lookup: `ship` went from 148M to 99M instructions there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.alert import Alert
from parsers.transaction import Transaction

# The columns of `ShippedRows.integers`, in order.
SRC_PORT, DST_PORT, STATUS, REQ_BODY_BYTES, RESP_BODY_BYTES, BODY_BYTES, POSITION, FLOW_POSITION = range(8)
INTEGER_COLUMNS = 8
NO_STATUS = -1  # a transaction without a response (status None); HTTP status codes are 100 to 999
# The columns of `ShippedRows.reals`: the request's time, and the latency (NaN where there is none).
TS, LATENCY_MS = range(2)
REAL_COLUMNS = 2
# The text fields, in the order of a row's codes (`ShippedRows.codes`); each is a str, api_key_hash also None.
TEXT_FIELDS = (
    "src_ip", "dst_ip", "method", "uri", "host", "path", "query", "http_version", "endpoint", "reason",
    "req_content_type", "resp_content_type", "client_id", "api_key_hash", "user_agent",
)  # fmt: skip
TEXT_COLUMNS = 15
MAX_TEXT_CODES = 1 << 16
# Every public field of a transaction crosses: tests/sniffer/test_shipping.py checks these against PUBLIC_FIELDS.
NUMBER_FIELDS = ("ts", "src_port", "dst_port", "status", "latency_ms", "req_body_bytes", "resp_body_bytes")
OBJECT_FIELDS = ("flags",)  # a list of its own per row: mostly the one shared empty tuple


@dataclass
class ShippedRows:
    """A block's transactions in columns (row i: its i-th transaction)."""

    integers: np.ndarray  # int64, one row each, INTEGER_COLUMNS wide
    reals: np.ndarray  # float64, one row each, REAL_COLUMNS wide
    codes: np.ndarray  # int64, one row each, TEXT_COLUMNS wide: each text's number (see `ship`)
    new_texts: list  # the texts numbered for this block, in the order of their numbers
    restarted: bool  # the numbering started again with this block
    flags: list
    requests: list  # each row's request JSON key set for the payload baselines (None: none, or no baselines)
    responses: list
    alerts: dict[int, list[Alert]]  # the rows whose worker raised alerts, and those alerts

    def __len__(self) -> int:
        return len(self.integers)


def ship(
    transactions: list[Transaction],
    positions: list[tuple[int, int]],
    alerts: list[list[Alert]],
    tagged: bool,
    numbered: dict[str | None, int],
) -> ShippedRows:
    """The block's columns. `positions`: where each transaction was emitted (`Pipeline.position`, the position of
    its flow's last segment). `tagged`: the payload baselines' features were attached (`payload_features`).
    `numbered`: the worker's texts shipped so far, by their numbers (kept from block to block)."""
    count = len(transactions)
    restarted = len(numbered) >= MAX_TEXT_CODES
    if restarted:
        numbered.clear()
    integers = np.empty((count, INTEGER_COLUMNS), dtype=np.int64)
    reals = np.empty((count, REAL_COLUMNS), dtype=np.float64)
    codes = np.empty((count, TEXT_COLUMNS), dtype=np.int64)
    ints = memoryview(integers.reshape(-1))  # compiled: typed, each store a C write (shipping.pxd)
    floats = memoryview(reals.reshape(-1))
    text_codes = memoryview(codes.reshape(-1))
    new_texts: list[str | None] = []
    previous: tuple = ()  # the row before's texts: mostly the same objects (a connection's addresses, its client)
    flags, requests, responses = [], [], []
    raised: dict[int, list[Alert]] = {}
    for row in range(count):
        at, real_at, text_at = row * INTEGER_COLUMNS, row * REAL_COLUMNS, row * TEXT_COLUMNS
        transaction = transactions[row]
        status, latency = transaction.status, transaction.latency_ms
        position, flow_position = positions[row]
        ints[at + SRC_PORT] = transaction.src_port
        ints[at + DST_PORT] = transaction.dst_port
        ints[at + STATUS] = NO_STATUS if status is None else status
        ints[at + REQ_BODY_BYTES] = transaction.req_body_bytes
        ints[at + RESP_BODY_BYTES] = transaction.resp_body_bytes
        ints[at + BODY_BYTES] = len(transaction.req_body) + len(transaction.resp_body)
        ints[at + POSITION] = position
        ints[at + FLOW_POSITION] = flow_position
        floats[real_at + TS] = transaction.ts
        floats[real_at + LATENCY_MS] = np.nan if latency is None else latency
        texts = (
            transaction.src_ip, transaction.dst_ip, transaction.method, transaction.uri, transaction.host,
            transaction.path, transaction.query, transaction.http_version, transaction.endpoint, transaction.reason,
            transaction.req_content_type, transaction.resp_content_type, transaction.client_id,
            transaction.api_key_hash, transaction.user_agent,
        )  # fmt: skip
        for column in range(TEXT_COLUMNS):
            text = texts[column]
            if row and text is previous[column]:  # the row before's very text: its code, without a lookup
                text_codes[text_at + column] = text_codes[text_at - TEXT_COLUMNS + column]
                continue
            code = numbered.get(text)
            if code is None:
                code = numbered[text] = len(numbered)
                new_texts.append(text)
            text_codes[text_at + column] = code
        previous = texts
        flags.append(transaction.flags)
        if tagged:
            pair = transaction.payload_features[2]
            requests.append(pair[0])
            responses.append(pair[1])
        if alerts[row]:
            raised[row] = alerts[row]
    return ShippedRows(integers, reals, codes, new_texts, restarted, flags, requests, responses, raised)


def received(shipped: ShippedRows, features: np.ndarray | None, texts: list[str | None]) -> list[tuple]:
    """The parent's held entries of a shipped block: (transaction, bytes its bodies weighed, alerts raised,
    (position, flow position)). `features`: the rows' anomaly feature values, one row each (None: no baselines).
    `texts`: the worker's texts by their numbers, as its earlier blocks sent them (kept from block to block).
    Each transaction's private fields are their defaults, as a worker's transaction comes."""
    if shipped.restarted:
        texts.clear()
    texts.extend(shipped.new_texts)
    count = len(shipped)
    ints = memoryview(shipped.integers.reshape(-1))
    floats = memoryview(shipped.reals.reshape(-1))
    text_codes = memoryview(shipped.codes.reshape(-1))
    flags, requests, responses, raised = shipped.flags, shipped.requests, shipped.responses, shipped.alerts
    entries = []
    for row in range(count):
        at, real_at, text_at = row * INTEGER_COLUMNS, row * REAL_COLUMNS, row * TEXT_COLUMNS
        transaction = Transaction.__new__(Transaction)
        status = ints[at + STATUS]
        latency = floats[real_at + LATENCY_MS]
        transaction.ts = floats[real_at + TS]
        transaction.src_ip = texts[text_codes[text_at]]
        transaction.src_port = ints[at + SRC_PORT]
        transaction.dst_ip = texts[text_codes[text_at + 1]]
        transaction.dst_port = ints[at + DST_PORT]
        transaction.method = texts[text_codes[text_at + 2]]
        transaction.uri = texts[text_codes[text_at + 3]]
        transaction.host = texts[text_codes[text_at + 4]]
        transaction.path = texts[text_codes[text_at + 5]]
        transaction.query = texts[text_codes[text_at + 6]]
        transaction.http_version = texts[text_codes[text_at + 7]]
        transaction.endpoint = texts[text_codes[text_at + 8]]
        transaction.status = None if status == NO_STATUS else status
        transaction.reason = texts[text_codes[text_at + 9]]
        transaction.latency_ms = None if latency != latency else latency  # NaN: none
        transaction.req_body_bytes = ints[at + REQ_BODY_BYTES]
        transaction.resp_body_bytes = ints[at + RESP_BODY_BYTES]
        transaction.req_content_type = texts[text_codes[text_at + 10]]
        transaction.resp_content_type = texts[text_codes[text_at + 11]]
        transaction.client_id = texts[text_codes[text_at + 12]]
        transaction.api_key_hash = texts[text_codes[text_at + 13]]
        transaction.user_agent = texts[text_codes[text_at + 14]]
        transaction.flags = flags[row]
        transaction.forwarded_for = transaction.forwarded = transaction.raw_target = ""
        transaction.req_body = transaction.resp_body = b""
        transaction.req_headers = transaction.resp_headers = ()
        transaction.payload_features = None
        if features is not None:  # the block's values stay in its array (see Transaction.payload_features)
            transaction.payload_features = (features, row, (requests[row], responses[row]))
        position = (ints[at + POSITION], ints[at + FLOW_POSITION])
        entries.append((transaction, ints[at + BODY_BYTES], raised.get(row, ()), position))
    return entries
