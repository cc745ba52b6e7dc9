"""The transaction record: one HTTP request paired with its response, the unit every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

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


@dataclass(slots=True)
class Transaction:
    """One HTTP/1.x request and (when seen) its final response.

    `ts` is the packet time of the request's first byte; `latency_ms` runs from it to the packet time of the
    response's first byte. Addresses are the client (`src_*`) and the server (`dst_*`), whatever the capture's
    direction of first sight. `uri` is the request-target exactly as on the wire (decoded as latin-1 so every byte
    survives); `path` and `query` are split from it. Secrets never sit here in clear: only `api_key_hash`.
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
    endpoint: str = ""
    status: int | None = None
    reason: str = ""
    latency_ms: float | None = None
    req_body_bytes: int = 0
    resp_body_bytes: int = 0
    req_content_type: str = ""
    resp_content_type: str = ""
    client_id: str = ""
    api_key_hash: str | None = None
    user_agent: str = ""
    flags: list[str] = field(default_factory=list)
    # Not written to the transaction log: header values the identity stage needs, and bounded decoded bodies that
    # later analysis (detectors) reads. Kept off the JSON line so no secret or payload leaks through it.
    forwarded_for: str = ""
    forwarded: str = ""
    req_body: bytes = b""
    resp_body: bytes = b""
    raw_target: str = ""  # the request-target before redaction, for the detectors
    # All header fields as parsed (lower-case names, raw values), Authorization and Cookie included: for the
    # detectors only, which must redact whatever they quote.
    req_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    resp_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    # Computed from the bodies by a worker process, for the payload-anomaly baselines of the parent (--workers).
    payload_features: Any = None

    def to_record(self) -> dict:
        """The JSON-line form: public fields only, never header secrets or bodies. Read field by field (not
        `dataclasses.asdict`, which deep-copies the headers and bodies it would then throw away)."""
        record = dict(zip(PUBLIC_FIELDS, public_values(self), strict=True))
        record["flags"] = list(self.flags)
        return record


PUBLIC_FIELDS = tuple(field.name for field in fields(Transaction) if field.name not in PRIVATE_FIELDS)
public_values = attrgetter(*PUBLIC_FIELDS)  # a transaction's public fields, in PUBLIC_FIELDS order
