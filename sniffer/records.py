"""Turns a finished Exchange of a flow into a Transaction: addresses, URI parts, endpoint, identity, bodies."""

from __future__ import annotations

from urllib.parse import urlsplit

from detectors.openapi import ApiSpec
from parsers.bodies import decode_body
from parsers.correlate import Exchange
from parsers.memo import SharedHeaders
from parsers.messages import MessageHead
from parsers.redact import redact_query, redact_target
from parsers.templating import EndpointTemplater
from parsers.transaction import Transaction
from sniffer.flows import Flow
from sniffer.identity import ClientIdentity

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
NS_PER_US = 1_000
MAX_CONTENT_TYPES = 1024
# Bodies shared with the previous one of their endpoint and direction (see _shared_body): at most this many
# endpoints' last bodies of at most this size each, per direction: 8 MB at most.
MAX_SHARED_BODY_ENDPOINTS = 1024
MAX_SHARED_BODY_BYTES = 4096


def split_target(target: str) -> tuple[str, str, str]:
    """(host from an absolute-form target or "", path, query) of a request-target as on the wire."""
    if target.startswith("/") or target == "*":
        path, _, query = target.partition("?")
        return "", path, query
    if "://" in target[:16]:
        parts = urlsplit(target)
        return parts.netloc.rpartition("@")[2], parts.path or "/", parts.query
    # authority-form (CONNECT host:port) or something odd: keep it whole as the path
    return "", target, ""


def target_parts(target: str) -> tuple[str, str, str, str]:
    """(host of an absolute-form target or "", path, redacted query, redacted target) of a request-target."""
    if target.startswith("/") and "?" not in target and "@" not in target:
        # The usual target, a path alone: nothing to split or redact. Two scans, where the split's partition was a
        # method call that made a tuple and its strs (some 500 instructions a transaction, compiled).
        return "", target, "", target
    uri_host, path, query = split_target(target)
    if query:
        query = redact_query(query)
    if target.startswith("/") and "@" not in target:
        # Origin-form: the target is the path and the query, the query just redacted (not redacted twice).
        return uri_host, path, query, (f"{path}?{query}" if "?" in target else target)
    return uri_host, path, query, redact_target(target)


def _text(value: bytes) -> str:
    return value.decode("latin-1")


# What a request's header fields say, apart from the address it came from: (content type, user agent,
# X-Forwarded-For, Forwarded, API key digest, Host).
RequestFacts = tuple[str, str, str, str, str | None, str]


# From 2**20 s (some 12 days past the epoch) on, `seconds` may add the fraction as a double (see there).
EXACT_SUM_FROM_S = 1 << 20


def seconds(ts_ns: int) -> float:
    """`ts_ns / NS_PER_S`, the correctly rounded quotient Python gives, without its division of two int objects
    (exact for a dividend past 2**53, some 550 instructions a transaction). From EXACT_SUM_FROM_S on, the whole
    seconds plus the fraction as doubles round to the same double: the fraction `part / 1e9` is off by at most
    2**-54, while the exact quotient lies at least 2**(k+9) / (1e9 * 2**53) from any midpoint between the doubles
    around it (k: the binade of the whole seconds, 2**9 the greatest power of two dividing 1e9), which is farther
    from k = 20 on. Compiled, C integers and doubles (sniffer/records.pxd); before that, Python's division.
    tests/sniffer/test_records.py holds it to the division."""
    per_s = NS_PER_S  # compiled, a C integer, as ts_ns is
    whole = ts_ns // per_s
    if whole < EXACT_SUM_FROM_S:
        return ts_ns / NS_PER_S
    return whole + (ts_ns - whole * per_s) / per_s


def latency_ms(elapsed_ns: int) -> float:
    """Milliseconds, rounded to the microsecond. A whole number of microseconds (every pcap with microsecond
    timestamps) is divided exactly: round(x, 3) formats its float to decimal, and costs several times more."""
    per_us = NS_PER_US  # compiled, a C integer, as elapsed_ns is (sniffer/records.pxd): C arithmetic, exact here
    if elapsed_ns % per_us == 0:
        return (elapsed_ns // per_us) / per_us
    return round(elapsed_ns / NS_PER_MS, 3)


class EndpointNamer:
    """The endpoint of a request: the spec's path template when a spec is given and matches (literal segments
    beat parameters, as OpenAPI requires), else apispy's own template. Templates are learned from the paths in
    the order they are named (parsers.templating): with several workers, the parent names every endpoint again,
    in input order, so that they come out as one process names them."""

    __slots__ = ("spec", "templater")

    def __init__(self, templater: EndpointTemplater, spec: ApiSpec | None = None) -> None:
        self.templater = templater
        self.spec = spec

    def endpoint(self, method: str, path: str) -> str:
        if self.spec is not None:
            template = self.spec.match(method, path)
            if template is not None:
                return template
        return self.templater.template(path)


class TransactionBuilder:
    """Holds the stages that enrich a transaction; `build` is called once per finished exchange."""

    __slots__ = ("api_key_headers", "content_types", "facts_token", "identity", "max_decoded_body_bytes", "namer",
                 "request_bodies", "response_bodies")  # fmt: skip

    def __init__(
        self,
        templater: EndpointTemplater,
        identity: ClientIdentity,
        api_key_headers: tuple[bytes, ...] = (b"x-api-key",),
        max_decoded_body_bytes: int = 65536,
        spec: ApiSpec | None = None,
    ) -> None:
        self.namer = EndpointNamer(templater, spec)
        self.identity = identity
        self.api_key_headers = api_key_headers
        self.max_decoded_body_bytes = max_decoded_body_bytes
        # The parser hands out one header list for all requests with the same header lines: their facts are
        # read once per list and kept on it, under this builder's token (parsers.memo.SharedHeaders).
        self.facts_token = object()
        # Each content type as one shared str, by its raw value (at most MAX_CONTENT_TYPES, emptied when full): the
        # payload detectors tell runs of identical bodies by their content types' identity (detectors.batchbodies).
        self.content_types: dict[bytes, str] = {}
        # Each endpoint's last request body and last response body (see _shared_body).
        self.request_bodies: dict[str, bytes] = {}
        self.response_bodies: dict[str, bytes] = {}

    def build(self, flow: Flow, exchange: Exchange) -> Transaction:
        client, server = flow.client(), flow.server()
        request, response = exchange.request, exchange.response
        flags = list(exchange.flags)
        if request is not None:
            ts_ns = request.ts_ns
            uri_host, path, query, uri = target_parts(request.target)
            facts = self._facts_of(request)
            host = facts[5] or uri_host
            method, version = request.method, request.http_version
        else:
            ts_ns = response.ts_ns
            host = path = query = method = uri = ""
            version = response.http_version
        transaction = _transaction(
            seconds(ts_ns), client.ip, client.port, server.ip, server.port, method, uri, host, path, query, version,
            self.namer.endpoint(method, path) if request is not None else "",
        )
        transaction.client_id = client.ip
        if request is not None:
            transaction.raw_target = request.target
            self._add_request(transaction, request, exchange, flags, facts)
        if response is not None:
            transaction.status = response.status
            transaction.reason = response.reason
            if request is not None:
                transaction.latency_ms = latency_ms(response.ts_ns - request.ts_ns)
            transaction.resp_content_type = self._content_type(response.header(b"content-type"))
            transaction.resp_headers = response.headers
            self._add_response_body(transaction, response, exchange, flags)
        elif "no_response" not in flags:
            flags.append("no_response")
        if exchange.interim_statuses:
            flags.append("interim_" + "_".join(map(str, exchange.interim_statuses)))
        if flags:  # else the shared empty default: a batch held for the detectors holds no empty list a row
            transaction.flags = flags if len(flags) == 1 else _unique(flags)
        return transaction

    def _facts_of(self, request: MessageHead) -> RequestFacts:
        """The request's facts, read once per shared header list and kept on the list itself: a memo by the list's
        id cost some 640 instructions a transaction when compiled, this a field read and a comparison."""
        headers = request.headers
        if type(headers) is not SharedHeaders:
            return self._request_facts(request)
        shared = headers  # a typed local when compiled: its fields are C reads
        kept = shared.request_facts
        if kept is not None and kept[0] is self.facts_token:
            return kept[1]
        facts = self._request_facts(request)
        shared.request_facts = (self.facts_token, facts)
        return facts

    def _add_request(
        self, transaction: Transaction, request: MessageHead, exchange: Exchange, flags: list, facts: RequestFacts
    ) -> None:
        transaction.req_headers = request.headers
        (transaction.req_content_type, transaction.user_agent, transaction.forwarded_for, transaction.forwarded,
         transaction.api_key_hash, _) = facts  # fmt: skip
        transaction.client_id = self.identity.client_id(
            transaction.src_ip, transaction.forwarded_for, transaction.forwarded
        )
        flags.extend(request.flags)
        end = exchange.request_end
        if end is not None:
            transaction.req_body_bytes = end.body_bytes
            flags.extend(end.flags)
            transaction.req_body = _shared_body(
                self.request_bodies, transaction.endpoint, self._decoded(end.body, request, end.flags, flags)
            )

    def _request_facts(self, request: MessageHead) -> RequestFacts:
        credential = request.header(b"authorization")
        if not credential:
            for name in self.api_key_headers:
                credential = request.header(name)
                if credential:
                    break
        return (
            self._content_type(request.header(b"content-type")),
            _text(request.header(b"user-agent")),
            _text(request.header(b"x-forwarded-for")),
            _text(request.header(b"forwarded")),
            self.identity.api_key_hash(credential) if credential else None,
            _text(request.header(b"host")),
        )

    def _content_type(self, raw: bytes) -> str:
        content_type = self.content_types.get(raw)
        if content_type is None:
            if len(self.content_types) >= MAX_CONTENT_TYPES:
                self.content_types.clear()
            content_type = self.content_types[raw] = _text(raw)
        return content_type

    def _add_response_body(self, transaction: Transaction, response: MessageHead, exchange: Exchange, flags: list):
        flags.extend(response.flags)
        end = exchange.response_end
        if end is not None:
            transaction.resp_body_bytes = end.body_bytes
            flags.extend(end.flags)
            transaction.resp_body = _shared_body(
                self.response_bodies, transaction.endpoint, self._decoded(end.body, response, end.flags, flags)
            )

    def _decoded(self, body: bytes, head: MessageHead, end_flags: list, flags: list) -> bytes:
        if not body or "gap" in end_flags:
            return b""
        encoding = head.header(b"content-encoding")
        if not encoding:  # the usual identity body: what decode_body gives it, without the call
            limit = self.max_decoded_body_bytes
            return body if len(body) <= limit else body[:limit]  # compiled, no slice object for a body that fits
        decoded, ok = decode_body(body, encoding, self.max_decoded_body_bytes)
        if not ok:
            flags.append("decode_error")
        return decoded


def _transaction(
    ts: float, src_ip: str, src_port: int, dst_ip: str, dst_port: int, method: str, uri: str, host: str, path: str,
    query: str, http_version: str, endpoint: str
) -> Transaction:
    """`Transaction(ts, ..., endpoint)`: these twelve fields, every other at its default. Compiled, a C call that
    sets C fields, where calling the class parsed its 33 arguments: 52M instructions on the bench subset, some 1,050
    a transaction; made here, the replay executes 28M fewer in all (callgrind, 3,885.7M before, 3,857.8M after).
    tests/sniffer/test_records.py holds it to the class's defaults."""
    transaction = Transaction.__new__(Transaction)
    transaction.ts = ts
    transaction.src_ip = src_ip
    transaction.src_port = src_port
    transaction.dst_ip = dst_ip
    transaction.dst_port = dst_port
    transaction.method = method
    transaction.uri = uri
    transaction.host = host
    transaction.path = path
    transaction.query = query
    transaction.http_version = http_version
    transaction.endpoint = endpoint
    transaction.status = None
    transaction.reason = ""
    transaction.latency_ms = None
    transaction.req_body_bytes = 0
    transaction.resp_body_bytes = 0
    transaction.req_content_type = ""
    transaction.resp_content_type = ""
    transaction.client_id = ""
    transaction.api_key_hash = None
    transaction.user_agent = ""
    transaction.flags = ()
    transaction.forwarded_for = ""
    transaction.forwarded = ""
    transaction.req_body = b""
    transaction.resp_body = b""
    transaction.raw_target = ""
    transaction.req_headers = ()
    transaction.resp_headers = ()
    transaction.payload_features = None
    return transaction


def _shared_body(last_bodies: dict[str, bytes], endpoint: str, body: bytes) -> bytes:
    """The body, or the same bytes already held: an API sends one endpoint's same body again and again (a list
    page, a fixed answer, an error), and a transaction that shares the previous body's object costs no memory
    for it while the detectors hold a batch (the batch stays in the CPU's caches), and is told a repeat by
    identity there (detectors.batchbodies). Bounded: MAX_SHARED_BODY_ENDPOINTS bodies of at most
    MAX_SHARED_BODY_BYTES, forgotten all at once when full."""
    if not body or len(body) > MAX_SHARED_BODY_BYTES:
        return body
    previous = last_bodies.get(endpoint)
    if previous is not None:
        if previous == body:
            return previous
    elif len(last_bodies) >= MAX_SHARED_BODY_ENDPOINTS:
        last_bodies.clear()
    last_bodies[endpoint] = body
    return body


def _unique(flags: list[str]) -> list[str]:
    return list(dict.fromkeys(flags))
