"""The transaction record: one HTTP request paired with its response, the unit every later stage consumes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any, NamedTuple

import numpy as np

# Held for later stages in the process, never written out: header values, bodies, the unredacted target.
PRIVATE_FIELDS = (
    "forwarded_for",
    "forwarded",
    "req_body",
    "resp_body",
    "raw_target",
    "req_headers",
    "resp_headers",
    "payload_features",
)


@dataclass(init=False)
class Transaction:
    """One HTTP/1.x request and (when seen) its final response.

    `ts` is the packet time of the request's first byte; `latency_ms` runs from it to the packet time of the
    response's first byte. Addresses are the client (`src_*`) and the server (`dst_*`), whatever the capture's
    direction of first sight. `uri` is the request-target exactly as on the wire (decoded as latin-1 so every byte
    survives); `path` and `query` are split from it. Secrets never sit here in clear: only `api_key_hash`.

    Compiled (setup.py), an extension type (parsers/transaction.pxd; Cython makes it a dataclass of its own, with
    the same fields, `__eq__` and `__repr__`): the pipeline builds one per transaction and reads and sets its
    fields as C struct fields. Not `slots=True`, which Cython's dataclasses do not take: plain Python gives it a
    `__dict__`, which the compiled build would not have, and tests/test_compiled.py checks that the .pxd declares
    exactly its fields. Its `__init__` is written out (`init=False`): a Cython dataclass's own `__init__` imports
    `dataclasses` again, on every call, for each `default_factory` field (about 100 ns each). Flags and header
    lists default to one shared empty tuple, not a new list each: the builder sets lists of its own, and three
    empty lists made to be dropped cost a transaction an allocation, a collector tracking and a free each, in
    memory a batch held for the detectors had pushed out of the cache. Nothing changes them once built.
    """

    ts: float
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    method: str
    uri: str
    host: str
    path: str
    query: str
    http_version: str
    endpoint: str
    status: int | None
    reason: str
    latency_ms: float | None
    req_body_bytes: int
    resp_body_bytes: int
    req_content_type: str
    resp_content_type: str
    client_id: str
    api_key_hash: str | None
    user_agent: str
    flags: Sequence[str]
    # Not written to the transaction log: header values the identity stage needs, and bounded decoded bodies that
    # later analysis (detectors) reads. Kept off the JSON line so no secret or payload leaks through it.
    forwarded_for: str
    forwarded: str
    req_body: bytes
    resp_body: bytes
    raw_target: str  # the request-target before redaction, for the detectors
    # All header fields as parsed (lower-case names, raw values), Authorization and Cookie included: for the
    # detectors only, which must redact whatever they quote.
    req_headers: Sequence[tuple[bytes, bytes]]
    resp_headers: Sequence[tuple[bytes, bytes]]
    # Computed from the bodies by a worker process, for the payload-anomaly baselines of the parent (--workers):
    # (the feature values of its block, one row each, as a 2-D array; its row there; its JSON key set pair).
    payload_features: Any

    def __init__(
        self,
        ts: float,
        src_ip: str,
        src_port: int,
        dst_ip: str,
        dst_port: int,
        method: str,
        uri: str,
        host: str,
        path: str,
        query: str,
        http_version: str,
        endpoint: str = "",
        status: int | None = None,
        reason: str = "",
        latency_ms: float | None = None,
        req_body_bytes: int = 0,
        resp_body_bytes: int = 0,
        req_content_type: str = "",
        resp_content_type: str = "",
        client_id: str = "",
        api_key_hash: str | None = None,
        user_agent: str = "",
        flags: Sequence[str] = (),
        forwarded_for: str = "",
        forwarded: str = "",
        req_body: bytes = b"",
        resp_body: bytes = b"",
        raw_target: str = "",
        req_headers: Sequence[tuple[bytes, bytes]] = (),
        resp_headers: Sequence[tuple[bytes, bytes]] = (),
        payload_features: Any = None,
    ) -> None:
        self.ts = ts
        self.src_ip = src_ip
        self.src_port = src_port
        self.dst_ip = dst_ip
        self.dst_port = dst_port
        self.method = method
        self.uri = uri
        self.host = host
        self.path = path
        self.query = query
        self.http_version = http_version
        self.endpoint = endpoint
        self.status = status
        self.reason = reason
        self.latency_ms = latency_ms
        self.req_body_bytes = req_body_bytes
        self.resp_body_bytes = resp_body_bytes
        self.req_content_type = req_content_type
        self.resp_content_type = resp_content_type
        self.client_id = client_id
        self.api_key_hash = api_key_hash
        self.user_agent = user_agent
        self.flags = flags
        self.forwarded_for = forwarded_for
        self.forwarded = forwarded
        self.req_body = req_body
        self.resp_body = resp_body
        self.raw_target = raw_target
        self.req_headers = req_headers
        self.resp_headers = resp_headers
        self.payload_features = payload_features

    def to_record(self) -> dict:
        """The JSON-line form: public fields only, never header secrets or bodies. Read field by field (not
        `dataclasses.asdict`, which deep-copies the headers and bodies it would then throw away)."""
        record = dict(zip(PUBLIC_FIELDS, public_values(self), strict=True))
        record["flags"] = list(self.flags)
        return record


PUBLIC_FIELDS = tuple(field.name for field in fields(Transaction) if field.name not in PRIVATE_FIELDS)
public_values = attrgetter(*PUBLIC_FIELDS)  # a transaction's public fields, in PUBLIC_FIELDS order


class TransactionColumns(NamedTuple):
    """The fields of a batch of transactions that the detectors read, one column per field (row j: transaction j):
    text and object columns as lists, numeric ones as numpy arrays, which the detectors' numpy and numba code
    reads as they are. Body columns hold the requests' values, then the responses' (2 x rows)."""

    ts: np.ndarray  # float64
    client_ids: list[str]
    src_ips: list[str]
    methods: list[str]
    endpoints: list[str]
    paths: list[str]
    statuses: np.ndarray  # int64, 0 where no response was seen
    targets: list[str]  # the request-target before redaction, the uri where there is none
    req_headers: list[Sequence[tuple[bytes, bytes]]]
    resp_headers: list[Sequence[tuple[bytes, bytes]]]
    bodies: list[bytes]
    body_lengths: np.ndarray  # int64
    # int64: each body's first body of its run of identical ones (itself if none came before): the bodies of one
    # endpoint and direction, one after the other, with the same content type and the very same bytes (see
    # detectors.batchbodies, which reads each run's first body only)
    body_sources: np.ndarray
    wire_bytes: np.ndarray  # int64: each body's size on the wire (req_body_bytes, resp_body_bytes)
    # Coded as the rows come: the distinct values in order of first row, and each row's index into them (int64).
    distinct_endpoints: list[str]
    endpoint_codes: np.ndarray
    distinct_methods: list[str]
    method_codes: np.ndarray
    distinct_clients: list[str]
    client_codes: np.ndarray
    path_lengths: np.ndarray  # int64, in code points
    target_lengths: np.ndarray  # int64, in code points
    # The header lists coded by identity (the parser shares one list per distinct header block), as above.
    distinct_req_headers: list[Sequence[tuple[bytes, bytes]]]
    req_header_codes: np.ndarray
    distinct_resp_headers: list[Sequence[tuple[bytes, bytes]]]
    resp_header_codes: np.ndarray


class ColumnsBuilder:
    """A batch's TransactionColumns as they are taken, one transaction at a time (`append`).

    Compiled, the transaction's fields are read as C struct fields (parsers/transaction.pxd), the text and object
    ones appended to typed lists and the numeric ones written as C numbers into arrays made for `capacity` rows
    (grown if more come): no int object per row for a length or an id, no list of them to turn into an array for
    each detector that reads them. The arrays are written through memoryviews, which plain Python writes too,
    more cheaply than a numpy array's item assignment. Endpoints, methods and client ids are coded here too, a
    dict lookup each while the row is at hand (the builder shares their strs, so their hashes are cached), rather
    than in a pass per column over the finished batch; header lists likewise, by identity; and each body is
    compared with the previous body of its endpoint and direction, which is mostly the very same object
    (sniffer.records shares an endpoint's repeated bodies), to mark the runs of identical bodies."""

    __slots__ = (
        "_client_codes", "_endpoint_codes", "_last_req_rows", "_last_resp_rows", "_method_codes", "_path_lengths",
        "_req_header_codes", "_req_lengths", "_req_sources", "_req_types", "_req_wire", "_resp_header_codes",
        "_resp_lengths", "_resp_sources", "_resp_types", "_resp_wire", "_statuses", "_target_lengths", "_ts",
        "capacity", "count", "client_ids", "distinct_clients", "distinct_endpoints", "distinct_methods",
        "distinct_req_headers", "distinct_resp_headers", "distinct_types", "endpoints", "methods", "paths",
        "req_bodies", "req_headers", "resp_bodies", "resp_headers", "src_ips", "targets", "client_index",
        "endpoint_index", "method_index", "req_header_index", "resp_header_index", "type_index", "last_rows",
        "numbers",
    )  # fmt: skip

    def __init__(self, capacity: int = 1024) -> None:
        self.count = 0
        self.client_ids: list[str] = []
        self.src_ips: list[str] = []
        self.methods: list[str] = []
        self.endpoints: list[str] = []
        self.paths: list[str] = []
        self.targets: list[str] = []
        self.req_headers: list[Sequence[tuple[bytes, bytes]]] = []
        self.resp_headers: list[Sequence[tuple[bytes, bytes]]] = []
        self.req_bodies: list[bytes] = []
        self.resp_bodies: list[bytes] = []
        self.distinct_endpoints: list[str] = []
        self.endpoint_index: dict[str, int] = {}
        self.distinct_methods: list[str] = []
        self.method_index: dict[str, int] = {}
        self.distinct_clients: list[str] = []
        self.client_index: dict[str, int] = {}
        self.distinct_req_headers: list[Sequence[tuple[bytes, bytes]]] = []
        self.req_header_index: dict[int, int] = {}  # by id: the lists are alive while the batch holds them
        self.distinct_resp_headers: list[Sequence[tuple[bytes, bytes]]] = []
        self.resp_header_index: dict[int, int] = {}
        self.distinct_types: list[str] = []
        self.type_index: dict[str, int] = {}
        self._allocate(max(1, capacity))

    def _allocate(self, capacity: int) -> None:
        """Arrays for `capacity` rows, holding the rows taken so far."""
        # Not zeroed: `append` writes every column of a row before anything reads it, and `columns` hands out the
        # rows taken. Zeroing them cost a memset of 139 KB a batch of 1,024, written to memory nothing else had touched
        # lately (callgrind, bench_q: 7.5M instructions, and some 126k misses of a 512 KiB L2).
        ts = np.empty(capacity, dtype=np.float64)
        numbers = np.empty((N_NUMBER_COLUMNS, capacity), dtype=np.int64)
        # Per endpoint code (there are no more codes than rows), the row of its last request body and of its last
        # response body: C integers, where lists of them made an int object per row.
        last_rows = np.empty((2, capacity), dtype=np.int64)
        if self.count:
            ts[: self.count] = self.numbers[0][: self.count]
            numbers[:, : self.count] = self.numbers[1][:, : self.count]
            last_rows[:, : len(self.distinct_endpoints)] = self.last_rows[:, : len(self.distinct_endpoints)]
        self.capacity = capacity
        self.numbers = (ts, numbers)
        self.last_rows = last_rows
        self._last_req_rows, self._last_resp_rows = memoryview(last_rows[0]), memoryview(last_rows[1])
        self._ts = memoryview(ts)
        rows = [memoryview(row) for row in numbers]
        self._statuses, self._req_lengths, self._resp_lengths, self._req_types, self._resp_types = rows[:5]
        self._req_wire, self._resp_wire, self._endpoint_codes, self._method_codes, self._client_codes = rows[5:10]
        self._path_lengths, self._target_lengths, self._req_sources, self._resp_sources = rows[10:14]
        self._req_header_codes, self._resp_header_codes = rows[14:]

    def append(self, transaction: Transaction) -> None:
        """Takes the transaction's fields."""
        row = self.count
        if row == self.capacity:
            self._allocate(2 * self.capacity)
        req_body, resp_body = transaction.req_body, transaction.resp_body
        req_length, resp_length = len(req_body), len(resp_body)
        client_id, method, endpoint = transaction.client_id, transaction.method, transaction.endpoint
        path, target = transaction.path, transaction.raw_target or transaction.uri
        self._ts[row] = transaction.ts
        self.client_ids.append(client_id)
        # The previous row's codes: most rows repeat them (see _code).
        last = self._client_codes[row - 1] if row else -1
        self._client_codes[row] = _code(self.client_index, self.distinct_clients, client_id, last)
        self.src_ips.append(transaction.src_ip)
        self.methods.append(method)
        last = self._method_codes[row - 1] if row else -1
        self._method_codes[row] = _code(self.method_index, self.distinct_methods, method, last)
        self.endpoints.append(endpoint)
        last = self._endpoint_codes[row - 1] if row else -1
        known_endpoints = len(self.distinct_endpoints)
        endpoint_code = _code(self.endpoint_index, self.distinct_endpoints, endpoint, last)
        self._endpoint_codes[row] = endpoint_code
        self.paths.append(path)
        self._path_lengths[row] = len(path)
        self._statuses[row] = transaction.status or 0
        self.targets.append(target)
        self._target_lengths[row] = len(target)
        req_headers, resp_headers = transaction.req_headers, transaction.resp_headers
        self.req_headers.append(req_headers)
        self.resp_headers.append(resp_headers)
        last = self._req_header_codes[row - 1] if row else -1
        code = _identity_code(self.req_header_index, self.distinct_req_headers, req_headers, last)
        self._req_header_codes[row] = code
        last = self._resp_header_codes[row - 1] if row else -1
        code = _identity_code(self.resp_header_index, self.distinct_resp_headers, resp_headers, last)
        self._resp_header_codes[row] = code
        # Content types coded like endpoints (one code space for both directions): a body repeats only with the
        # same content type.
        last = self._req_types[row - 1] if row else -1
        req_type = _code(self.type_index, self.distinct_types, transaction.req_content_type, last)
        last = self._resp_types[row - 1] if row else -1
        resp_type = _code(self.type_index, self.distinct_types, transaction.resp_content_type, last)
        if endpoint_code == known_endpoints:  # the batch's first row of this endpoint
            self._last_req_rows[endpoint_code] = -1
            self._last_resp_rows[endpoint_code] = -1
        # A body's run starts at the first row of its previous row's run where it repeats that row's body.
        previous = self._last_req_rows[endpoint_code]
        repeats = _repeats(previous, req_body, req_type, self.req_bodies, self._req_types)
        self._req_sources[row] = self._req_sources[previous] if repeats else row
        previous = self._last_resp_rows[endpoint_code]
        repeats = _repeats(previous, resp_body, resp_type, self.resp_bodies, self._resp_types)
        self._resp_sources[row] = self._resp_sources[previous] if repeats else row
        self._last_req_rows[endpoint_code] = row
        self._last_resp_rows[endpoint_code] = row
        self.req_bodies.append(req_body)
        self.resp_bodies.append(resp_body)
        self._req_lengths[row] = req_length
        self._resp_lengths[row] = resp_length
        self._req_types[row] = req_type
        self._resp_types[row] = resp_type
        self._req_wire[row] = transaction.req_body_bytes
        self._resp_wire[row] = transaction.resp_body_bytes
        self.count = row + 1

    def columns(self) -> TransactionColumns:
        """The columns taken so far (the lists and arrays themselves: append no more after this)."""
        count = self.count
        ts, numbers = self.numbers
        (statuses, req_lengths, resp_lengths, _, _, req_wire, resp_wire, endpoint_codes, method_codes, client_codes,
         path_lengths, target_lengths, req_sources, resp_sources, req_header_codes,
         resp_header_codes) = numbers[:, :count]  # fmt: skip
        return TransactionColumns(
            ts[:count], self.client_ids, self.src_ips, self.methods, self.endpoints, self.paths, statuses,
            self.targets, self.req_headers, self.resp_headers, self.req_bodies + self.resp_bodies,
            np.concatenate((req_lengths, resp_lengths)), np.concatenate((req_sources, resp_sources + count)),
            np.concatenate((req_wire, resp_wire)), self.distinct_endpoints, endpoint_codes, self.distinct_methods,
            method_codes, self.distinct_clients, client_codes, path_lengths, target_lengths, self.distinct_req_headers,
            req_header_codes, self.distinct_resp_headers, resp_header_codes,
        )  # fmt: skip


# The int64 rows of ColumnsBuilder.numbers: statuses; body lengths, content type codes and sizes (requests',
# responses'); endpoint, method and client codes; path and target lengths; body run sources and header list codes
# (requests', responses').
N_NUMBER_COLUMNS = 16


# A batch's first few distinct header lists are told by identity alone: a busy API's batch holds a handful (4 to
# 5 on the bench capture), and `id` costs a builtin call, an audit hook and an int object a row.
IDENTITY_SCAN = 8


def _identity_code(index: dict[int, int], distinct: list, value: object, last: int) -> int:
    """The object's code in a batch by identity (see `_code`); `last`: the previous row's code (-1: none), which
    most rows repeat."""
    if last >= 0 and distinct[last] is value:
        return last
    for position in range(min(len(distinct), IDENTITY_SCAN)):
        if distinct[position] is value:
            return position
    key = id(value)
    code = index.get(key)
    if code is None:
        code = index[key] = len(distinct)
        distinct.append(value)
    return code


def _repeats(previous: int, body: bytes, type_id: int, bodies: list[bytes], type_ids: Any) -> bool:
    """Whether a body repeats its `previous` row's (of the same endpoint and direction; -1: none): the same content
    type and bytes (mostly the very same object)."""
    return previous >= 0 and type_ids[previous] == type_id and bodies[previous] == body


def _code(index: dict[str, int], distinct: list[str], value: str, last: int) -> int:
    """The value's code in a batch: its index in `distinct`, where it is appended when first seen. `last`: the
    previous row's code in the column (-1: none). Most rows repeat the previous row's client, method and content
    types, as the very same str (the builder and parser share them), found by address where a lookup would hash
    and probe (some 150 instructions, five a row)."""
    if last >= 0 and distinct[last] is value:
        return last
    code = index.get(value)
    if code is None:
        code = index[value] = len(distinct)
        distinct.append(value)
    return code


def transaction_columns(transactions: list[Transaction]) -> TransactionColumns:
    """The batch's TransactionColumns, in one pass."""
    builder = ColumnsBuilder(len(transactions))
    for transaction in transactions:
        builder.append(transaction)
    return builder.columns()


def carried_features(
    transactions: list[Transaction], interned: dict, aliases: dict
) -> tuple[list[int] | None, np.ndarray | None, list, list, list[int], list[int]]:
    """For the payload baselines' judge in the parent of `--workers` (detectors.payload.AnomalyJudge), in one pass
    over a batch (a C loop when compiled): the rows that carry features computed elsewhere (`payload_features`;
    None when every row does), their feature values (a 2-D array, a row each; None when no row carries them),
    their request and response key sets, and the ids of those.

    A row's values stay in the array of the block that brought them: they are taken from each block's array at
    once (`_gather`), where a view per row and a stack of them cost some 3,000 instructions a row (compiled,
    callgrind, the parent of `--workers 2` on the bench capture's first 120,000 packets: 150M of its 3,210M).

    Each key set is the first equal one `interned` holds: the judge finds runs of rows with the very same key
    sets. Each block a worker sends arrives with copies of its own, shared by its rows: `aliases` (id of a copy ->
    (the copy, its interned key set); holding the copy keeps its id from being reused) maps each copy once, where
    every row's key sets were looked up by value. Rows mostly bring the key sets the row before brought: those are
    not looked up again, nor their ids taken again (each `id()` is a call into Python). With the rows' places kept in
    arrays, not lists of ints, the pass went from 168M to 82M instructions on that subset."""
    count = len(transactions)
    sources: list = []  # each block array the rows' values are in, in order of first row
    source_numbers = np.empty(count, dtype=np.int64)  # per carried row: the number of its source in `sources`
    taken = np.empty(count, dtype=np.int64)  # per carried row: its row in its source
    carried_rows = np.empty(count, dtype=np.int64)  # per carried row: its row in the batch
    numbers = memoryview(source_numbers)  # compiled: typed, each store a C write (transaction.pxd)
    taken_at = memoryview(taken)
    rows_at = memoryview(carried_rows)
    requests, responses, request_ids, response_ids = [], [], [], []
    last_source = last_request = last_response = None
    last_number = -1
    request, request_id, response, response_id = None, id(None), None, id(None)
    carried_count = 0
    row = 0
    for transaction in transactions:
        carried = transaction.payload_features
        if carried is not None:
            source = carried[0]
            if source is not last_source:
                last_source = source
                for number in range(len(sources)):
                    if sources[number] is source:
                        last_number = number
                        break
                else:
                    last_number = len(sources)
                    sources.append(source)
            numbers[carried_count] = last_number
            taken_at[carried_count] = carried[1]
            rows_at[carried_count] = row
            carried_count += 1
            pair = carried[2]
            if pair[0] is not last_request:
                last_request = pair[0]
                request = _interned(last_request, interned, aliases)
                request_id = id(request)
            if pair[1] is not last_response:
                last_response = pair[1]
                response = _interned(last_response, interned, aliases)
                response_id = id(response)
            requests.append(request)
            responses.append(response)
            request_ids.append(request_id)
            response_ids.append(response_id)
        row += 1
    if not carried_count:
        return None, None, requests, responses, request_ids, response_ids
    values = _gather(sources, source_numbers[:carried_count], taken[:carried_count])
    rows = None if carried_count == count else carried_rows[:carried_count].tolist()
    return rows, values, requests, responses, request_ids, response_ids


def _gather(sources: list, numbers: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """Row `taken[i]` of array `sources[numbers[i]]` for each i, in one array."""
    first = sources[0]
    if len(sources) == 1:
        if len(taken) == len(first) and (taken == np.arange(len(first))).all():
            return first  # a whole block, in order (the parent's own shard, or one worker's block)
        return first[taken]
    values = np.empty((len(taken), first.shape[1]), dtype=first.dtype)
    for number in range(len(sources)):
        which = numbers == number
        values[which] = sources[number][taken[which]]
    return values


def _interned(keyset: Any, interned: dict, aliases: dict) -> Any:
    if keyset is None:
        return None
    alias = aliases.get(id(keyset))
    if alias is not None and alias[0] is keyset:
        return alias[1]
    first = interned.setdefault(keyset, keyset)
    aliases[id(keyset)] = (keyset, first)
    return first


class BatchCollector:
    """Transactions gathered into the detectors' batches, and each batch's columns taken in one pass when it is
    sealed. Compiled, `add` is a C call from the replay loop (sniffer/replay.pxd) that holds the transaction and
    adds up its bodies, no more: taken as each transaction came, the columns' code ran between the parser's for
    every transaction and pushed it out of the CPU's instruction cache, which cost more than reading the batch
    again once it is whole (see `seal`).

    A batch is sealed once it holds `batch_size` transactions or `max_body_bytes` of bodies, or, before the next
    is added, once that one comes `max_delay_s` (packet time) after the batch's first: decided by the transactions
    alone, so a replay batches them alike however it runs. Sealed batches wait for `take`, each as (the
    transactions, their TransactionColumns, the alerts raised elsewhere that came with them)."""

    __slots__ = ("batch_size", "body_bytes", "carried", "max_body_bytes", "max_delay_s", "sealed", "started_s",
                 "transactions")  # fmt: skip

    def __init__(self, batch_size: int, max_body_bytes: int, max_delay_s: float) -> None:
        self.batch_size = batch_size
        self.max_body_bytes = max_body_bytes
        self.max_delay_s = max_delay_s
        self.started_s = 0.0  # packet time of the open batch's first transaction
        self.body_bytes = 0
        self.transactions: list[Transaction] = []
        self.carried: list = []
        self.sealed: list[tuple[list[Transaction], TransactionColumns, list]] = []

    def __len__(self) -> int:
        """Transactions in the open batch."""
        return len(self.transactions)

    def add(self, transaction: Transaction, body_bytes: int = -1, raised: Sequence = ()) -> bool:
        """Adds a transaction to the open batch; True once a batch is sealed. `body_bytes` (-1: the transaction's
        own bodies) and `raised`: for a transaction a worker process parsed and inspected, what its bodies weighed
        there and the alerts the worker's detectors raised, which travel with its batch."""
        ts = transaction.ts
        if self.transactions and ts - self.started_s >= self.max_delay_s:
            self.seal()
        if not self.transactions:
            self.started_s = ts
        self.transactions.append(transaction)
        if body_bytes < 0:
            body_bytes = len(transaction.req_body) + len(transaction.resp_body)
        self.body_bytes += body_bytes
        if raised:
            self.carried.extend(raised)
        if len(self.transactions) >= self.batch_size or self.body_bytes >= self.max_body_bytes:
            self.seal()
        return len(self.sealed) > 0

    def seal_due(self, now_s: float) -> bool:
        """Seals the open batch if its first transaction is `max_delay_s` old at `now_s` (the wall time of an idle
        live link); True once a batch is sealed."""
        if self.transactions and now_s - self.started_s >= self.max_delay_s:
            self.seal()
        return len(self.sealed) > 0

    def seal(self) -> None:
        """Seals the open batch, if it holds a transaction, and takes its columns.

        One pass over the whole batch reads each transaction again, from memory the parser has since moved on
        from, but it runs the columns' code in a loop of its own, not between the parser's. Callgrind on bench_q
        (compiled, every detector, time series as line protocol, a last level sized as one core's L2, two heap
        layouts) counted the same instructions either way (6,578M and 6,582M as each came, 6,570M and 6,571M
        here), and fewer misses here: first-level instruction misses 235.4M and 235.3M, here 228.0M and 228.0M;
        first-level data misses 142.0M and 142.0M, here 137.2M and 136.6M; L2 misses 33.7M and 32.2M, here 29.8M
        and 31.4M. Without detectors the replay took 22.2M and 25.1M L2 misses: detection's extra fell from 11.5M
        and 7.1M to 7.6M and 6.3M."""
        if not self.transactions:
            return
        self.sealed.append((self.transactions, transaction_columns(self.transactions), self.carried))
        self.transactions, self.carried, self.body_bytes = [], [], 0

    def take(self) -> list[tuple[list[Transaction], TransactionColumns, list]]:
        """The sealed batches, oldest first, handed over."""
        sealed, self.sealed = self.sealed, []
        return sealed
