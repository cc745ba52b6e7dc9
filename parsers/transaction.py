"""The transaction record: one HTTP request paired with its response, the unit every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any, NamedTuple

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
    exactly its fields. Its `__init__` is written out (`init=False`), its list fields defaulting to None for a new
    empty list: a Cython dataclass's own `__init__` imports `dataclasses` again, on every call, for each
    `default_factory` field (about 100 ns each, three here).
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
    flags: list[str]
    # Not written to the transaction log: header values the identity stage needs, and bounded decoded bodies that
    # later analysis (detectors) reads. Kept off the JSON line so no secret or payload leaks through it.
    forwarded_for: str
    forwarded: str
    req_body: bytes
    resp_body: bytes
    raw_target: str  # the request-target before redaction, for the detectors
    # All header fields as parsed (lower-case names, raw values), Authorization and Cookie included: for the
    # detectors only, which must redact whatever they quote.
    req_headers: list[tuple[bytes, bytes]]
    resp_headers: list[tuple[bytes, bytes]]
    # Computed from the bodies by a worker process, for the payload-anomaly baselines of the parent (--workers).
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
        flags: list[str] | None = None,
        forwarded_for: str = "",
        forwarded: str = "",
        req_body: bytes = b"",
        resp_body: bytes = b"",
        raw_target: str = "",
        req_headers: list[tuple[bytes, bytes]] | None = None,
        resp_headers: list[tuple[bytes, bytes]] | None = None,
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
        self.flags = [] if flags is None else flags
        self.forwarded_for = forwarded_for
        self.forwarded = forwarded
        self.req_body = req_body
        self.resp_body = resp_body
        self.raw_target = raw_target
        self.req_headers = [] if req_headers is None else req_headers
        self.resp_headers = [] if resp_headers is None else resp_headers
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
    """The fields of a batch of transactions that the detectors read, one list per field (row j: transaction j).
    Body columns hold the requests' values, then the responses' (2 x rows)."""

    ts: list[float]
    client_ids: list[str]
    src_ips: list[str]
    methods: list[str]
    endpoints: list[str]
    paths: list[str]
    statuses: list[int]  # 0 where no response was seen
    targets: list[str]  # the request-target before redaction, the uri where there is none
    req_headers: list[list[tuple[bytes, bytes]]]
    resp_headers: list[list[tuple[bytes, bytes]]]
    bodies: list[bytes]
    body_lengths: list[int]
    content_type_ids: list[int]  # the id of each body's content type str (the builder shares one per type)
    wire_bytes: list[int]  # each body's size on the wire (req_body_bytes, resp_body_bytes)


def transaction_columns(transactions: list[Transaction]) -> TransactionColumns:
    """The batch's TransactionColumns, in one pass. Compiled, the pass reads each field as a C struct field
    (parsers/transaction.pxd); a pass per field over the batch (`map` over an attrgetter, as the detectors did)
    reads it through the type's attribute lookup, some 25-40 ns a row and field."""
    ts, client_ids, src_ips, methods, endpoints, paths, statuses, targets = [], [], [], [], [], [], [], []
    req_headers, resp_headers, req_bodies, resp_bodies = [], [], [], []
    req_lengths, resp_lengths, req_types, resp_types, req_wire, resp_wire = [], [], [], [], [], []
    for transaction in transactions:
        ts.append(transaction.ts)
        client_ids.append(transaction.client_id)
        src_ips.append(transaction.src_ip)
        methods.append(transaction.method)
        endpoints.append(transaction.endpoint)
        paths.append(transaction.path)
        statuses.append(transaction.status or 0)
        targets.append(transaction.raw_target or transaction.uri)
        req_headers.append(transaction.req_headers)
        resp_headers.append(transaction.resp_headers)
        req_bodies.append(transaction.req_body)
        resp_bodies.append(transaction.resp_body)
        req_lengths.append(len(transaction.req_body))
        resp_lengths.append(len(transaction.resp_body))
        req_types.append(id(transaction.req_content_type))
        resp_types.append(id(transaction.resp_content_type))
        req_wire.append(transaction.req_body_bytes)
        resp_wire.append(transaction.resp_body_bytes)
    return TransactionColumns(
        ts, client_ids, src_ips, methods, endpoints, paths, statuses, targets, req_headers, resp_headers,
        req_bodies + resp_bodies, req_lengths + resp_lengths, req_types + resp_types, req_wire + resp_wire,
    )  # fmt: skip
