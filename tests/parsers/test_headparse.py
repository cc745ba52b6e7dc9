"""parsers/headparse.py (the kernel) and parsers/headread.py (its wrapper) read a head exactly as h11 does, or defer;
compiled equals plain Python.

h11 is the oracle: every buffer is also given to a fresh ReceiveBuffer and h11's reader. ACCEPTED must match
h11's event field by field and in the bytes consumed; INCOMPLETE must match h11 returning None without raising;
DEFER is always allowed. Realistic heads (and the heads of the bundled real captures) must be ACCEPTED, so the
fast path is not a no-op.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import dpkt
import h11
import numpy as np
import pytest
from h11._readers import maybe_read_from_IDLE_client, maybe_read_from_SEND_RESPONSE_server
from h11._receivebuffer import ReceiveBuffer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.kernels import examples, python_body
from support.samples import PCAPS

from parsers.headparse import (
    ACCEPTED,
    DEFER,
    INCOMPLETE,
    MAX_FIELDS,
    META_HEAD_LENGTH,
    META_N_FIELDS,
    N_META,
    scan_head,
)
from parsers.headread import COMMON_TOKENS, FastHead, read_head

REAL_REQUESTS = [
    b"GET /api/v1/orders/12345678-9abc-4def-8000-000000000002 HTTP/1.1\r\nHost: 127.0.0.1:18081\r\n"
    b"User-Agent: curl/7.88.1\r\nAccept: */*\r\nX-Api-Key: sample-api-key-0123456789abcdef\r\n"
    b"X-Forwarded-For: 192.0.2.1\r\n\r\n",
    b"HEAD /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1:18081\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
    b"POST /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1:18081\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n"
    b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
    b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhcGlzcHkifQ.c2FtcGxlLXNpZ25hdHVyZQ\r\n"
    b"Content-Length: 20536\r\n\r\n",
    b"GET /static/products.json HTTP/1.1\r\nHost: 127.0.0.1:18082\r\nAccept: application/json\r\n\r\n",
    b"PUT /api/v1/items/7 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: python-requests/2.31.0\r\n"
    b"Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\nContent-Length: 17\r\n"
    b"Content-Type: application/json\r\n\r\n{\"name\": \"seven\"}",
    b"POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET / HTTP/1.0\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
]
REAL_RESPONSES = [
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 25 Nov 2026 23:40:12 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: 331\r\nLast-Modified: Wed, 25 Nov 2026 23:40:12 GMT\r\n"
    b"Connection: keep-alive\r\nETag: \"6b0771dc-14b\"\r\nAccept-Ranges: bytes\r\n\r\n{\"items\": []}",
    b"HTTP/1.1 404 Not Found\r\nServer: nginx/1.22.1\r\nDate: Wed, 25 Nov 2026 23:40:12 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: 21\r\nConnection: keep-alive\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nServer: SampleApi/1.0 Python/3.11.7\r\nDate: Wed, 25 Nov 2026 23:40:06 GMT\r\n"
    b"ETag: \"cfg-v1\"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nServer: SampleApi/1.0 Python/3.11.7\r\nDate: Wed, 25 Nov 2026 23:40:06 GMT\r\n"
    b"Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.7\r\nDate: Wed, 25 Nov 2026 23:40:06 GMT\r\n"
    b"Content-type: text/html\r\nContent-Length: 120\r\nLast-Modified: Wed, 25 Nov 2026 23:00:00 GMT\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    b"HTTP/1.1 204\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
]


def h11_read(data: bytes, is_request: bool) -> tuple[str, object, int]:
    """("error" | "incomplete" | "event", event, bytes consumed) from h11's reader on a fresh buffer."""
    buffer = ReceiveBuffer()
    buffer += data
    reader = maybe_read_from_IDLE_client if is_request else maybe_read_from_SEND_RESPONSE_server
    try:
        event = reader(buffer)
    except h11.ProtocolError:
        return "error", None, 0
    if event is None:
        return "incomplete", None, 0
    return "event", event, len(data) - len(buffer)


def assert_agrees_with_h11(data: bytes, is_request: bool) -> int:
    """Checks read_head against h11 on `data` (as bytes and as the bytearray h11 buffers); returns the verdict."""
    verdict, head = read_head(data, is_request)
    assert read_head(bytearray(data), is_request) == (verdict, head)
    outcome, event, consumed = h11_read(data, is_request)
    if verdict == INCOMPLETE:
        assert head is None and outcome == "incomplete", (data, outcome)
    elif verdict == ACCEPTED:
        assert outcome == "event", (data, outcome)
        assert head.head_length == consumed
        assert head.http_version == event.http_version
        assert head.headers == list(event.headers)
        if is_request:
            assert (head.method, head.target, head.status, head.reason) == (event.method, event.target, 0, b"")
        else:
            assert (head.method, head.target, head.status, head.reason) == (b"", b"", event.status_code, event.reason)
        assert all(type(part) is bytes for pair in head.headers for part in pair)
        # The framing facts are what h11's headers say.
        values = dict(event.headers)
        assert head.chunked == (values.get(b"transfer-encoding") == b"chunked")
        assert head.content_length == (int(values[b"content-length"]) if b"content-length" in values else -1)
    else:
        assert verdict == DEFER and head is None
    return verdict


# A grammar of almost-valid heads. Each piece comes from a legal pool or, with probability `oddness` percent
# (drawn per example, 0 for a fully legal head), from a pool of the tricky cases of h11's grammar.
Pool = tuple[st.SearchStrategy[bytes], st.SearchStrategy[bytes]]


def pool(legal: list[bytes], odd: list[bytes] | st.SearchStrategy[bytes]) -> Pool:
    return st.sampled_from(legal), odd if isinstance(odd, st.SearchStrategy) else st.sampled_from(odd)


EOL = pool([b"\r\n", b"\r\n", b"\n"], [b"\r", b"\r\r\n", b""])
METHOD = pool([b"GET", b"POST", b"PUT", b"M-SEARCH", b"get", b"!#$%&'*+-.^_`|~09azAZ"],
              [b"", b"G{T", b"GET\x00", b"\xc3\xa9", b"G T"])
TARGET = pool([b"/", b"/a?b=c&d=%20", b"*", b"http://x.test:80/p", b"/~!$'()*+,;=:@"],
              [b"/\x80", b"/a b", b"", b"/\x7f", b"/\t"])
VERSION = pool([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9"],
               [b"http/1.1", b"HTTP/1.10", b"HTTP/1", b"HTTP/a.1", b"HTTP/1.1 ", b"HTTP/1,1"])
SPACE = pool([b" "], [b"  ", b"\t", b""])
CODE = pool([b"200", b"404", b"100", b"101", b"999", b"204", b"304"], [b"099", b"000", b"20", b"2000", b"2x0"])
REASON = pool([b" OK", b"", b" ", b" Not Found", b" OK ", b"  OK", b" \tX", b" \x01", b" \x80\xff", b" \x1c\x7f"],
              [b"OK", b" \x00", b" \x0b", b" a\rb", b" \x0c"])
NAME = pool([b"X-Foo", b"Set-Cookie", b"Accept", b"content-type", b"X_y~|^`", b"Hos", b"Hostx", b"Content-Lengt",
             b"Transfer-Encodings", b"Hosts"],
            [b"Host", b"HOST", b"Content-Length", b"content-LENGTH", b"Transfer-Encoding", b"Bad Name", b"", b"X\x80"])
SEPARATOR = pool([b": ", b": ", b":", b":\t", b":  \t", b"::"], [b" :", b""])
VALUE = pool([b"x", b"example.com", b"12", b"a b", b"a\tb", b"a  \t b", b"", b"\x01", b"\x7f", b"\x80\xff", b"\x1c",
              b"\x1f", b"1,2", b"chunked", b"gzip, chunked", b"\"q\""],
             st.one_of(st.sampled_from([b"\x00", b"a\rb", b"\x0b", b"\x0c", b"a\r"]), st.binary(max_size=6)))
OWS_EDGE = pool([b"", b"", b" ", b"\t", b" \t "], [b"\x0b", b"\r"])
FOLD = pool([b""], [b" folded", b"\tfolded", b" "])
HOST_VALUE = pool([b"example.com", b"127.0.0.1:8080", b""], [b"a b", b"\x00"])
CONTENT_LENGTH = pool([b"12", b"0012", b"0", b"9" * 18],
                      [b"1,2", b"12, 12", b"12,12", b"9" * 19, b"9" * 21, b"-1", b"+1", b"1 2", b"", b"\x01"])
CHUNKED = pool([b"chunked", b"Chunked", b"CHUNKED"], [b"gzip, chunked", b"chunked , ", b"identity", b""])
PREFIX = pool([b""], [b"\r\n", b"\n", b" ", b"\t", b"\x00", b"\r", b"\x16\x03"])
BLANK_LINE = pool([b"\r\n", b"\r\n", b"\n"], [b"", b"\r\r\n", b" \r\n"])
HOST_COUNT = pool([b"1"], [b"0", b"2"])
FRAMING = pool([b"", b"length", b"chunked"], [b"both", b"length length", b"chunked chunked"])


def piece(draw: st.DrawFn, choice: Pool, oddness: int) -> bytes:
    legal, odd = choice
    return draw(odd if draw(st.integers(0, 99)) < oddness else legal)


@st.composite
def almost_heads(draw: st.DrawFn, is_request: bool) -> bytes:
    """A start line, headers (Host and framing headers among them), a blank line and a body, then mutations."""
    oddness = draw(st.sampled_from([0, 0, 2, 5, 15, 40, 100]))

    def one(choice: Pool) -> bytes:
        return piece(draw, choice, oddness)

    def header(name: bytes, value: bytes) -> bytes:
        line = name + one(SEPARATOR) + one(OWS_EDGE) + value + one(OWS_EDGE) + one(EOL)
        return line + one(FOLD)

    if is_request:
        start = one(METHOD) + one(SPACE) + one(TARGET) + one(SPACE) + one(VERSION) + one(EOL)
    else:
        start = one(VERSION) + one(SPACE) + one(CODE) + one(REASON) + one(EOL)
    lines = [header(one(NAME), one(VALUE)) for _ in range(draw(st.integers(0, 6)))]
    extra = [header(draw(st.sampled_from([b"Host", b"host", b"HOST"])), one(HOST_VALUE))
             for _ in range(int(one(HOST_COUNT)))]
    for framing in one(FRAMING).split():
        for kind in [b"length", b"chunked"] if framing == b"both" else [framing]:
            if kind == b"length":
                extra.append(header(draw(st.sampled_from([b"Content-Length", b"content-length"])), one(CONTENT_LENGTH)))
            else:
                extra.append(header(draw(st.sampled_from([b"Transfer-Encoding", b"TRANSFER-encoding"])), one(CHUNKED)))
    for line in extra:
        lines.insert(draw(st.integers(0, len(lines))), line)
    data = one(PREFIX) + start + b"".join(lines) + one(BLANK_LINE) + draw(st.binary(max_size=8))
    return mutate(draw, data, oddness)


def mutate(draw: st.DrawFn, data: bytes, oddness: int) -> bytes:
    """Random bytes inserted, case changed, truncation: more of the first two the odder the example."""
    if draw(st.integers(0, 99)) < oddness:
        for _ in range(draw(st.integers(1, 2))):
            position = draw(st.integers(0, len(data)))
            data = data[:position] + draw(st.binary(min_size=1, max_size=3)) + data[position:]
    if draw(st.integers(0, 99)) < oddness:
        data = draw(st.sampled_from([bytes.upper, bytes.lower, bytes.swapcase]))(data)
    if draw(st.integers(0, 4)) == 0:
        data = data[:draw(st.integers(0, len(data)))]
    return data


@settings(max_examples=examples(2000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.data())
def test_read_head_agrees_with_h11_on_almost_valid_heads(is_request: bool, data: st.DataObject) -> None:
    assert_agrees_with_h11(data.draw(almost_heads(is_request)), is_request)


@settings(max_examples=examples(500), deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_read_head_agrees_with_h11_on_random_bytes(data: bytes, is_request: bool) -> None:
    assert_agrees_with_h11(data, is_request)


@pytest.mark.parametrize("data", REAL_REQUESTS)
def test_realistic_requests_are_accepted(data: bytes) -> None:
    assert assert_agrees_with_h11(data, True) == ACCEPTED


@pytest.mark.parametrize("data", REAL_RESPONSES)
def test_realistic_responses_are_accepted(data: bytes) -> None:
    assert assert_agrees_with_h11(data, False) == ACCEPTED


def test_every_truncation_of_a_realistic_head_is_incomplete_then_accepted() -> None:
    for data, is_request in [(REAL_REQUESTS[2], True), (REAL_RESPONSES[0], False)]:
        verdicts = [assert_agrees_with_h11(data[:end], is_request) for end in range(len(data) + 1)]
        head_length = data.index(b"\r\n\r\n") + 4
        assert verdicts == [INCOMPLETE] * head_length + [ACCEPTED] * (len(data) + 1 - head_length)


def test_transfer_encoding_value_is_lower_cased_as_h11_stores_it() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: ChUnKeD\r\nX-Case: KeEp\r\n\r\n"
    verdict, head = read_head(data, False)
    assert verdict == ACCEPTED
    assert head == FastHead(head_length=len(data), http_version=b"1.1", status=200, reason=b"OK",
                            headers=[(b"transfer-encoding", b"chunked"), (b"x-case", b"KeEp")], chunked=True)


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: a\r\n b\r\n\r\n",
])
def test_rare_heads_h11_accepts_are_deferred(data: bytes) -> None:
    assert h11_read(data, True)[0] == "event"
    assert read_head(data, True) == (DEFER, None)


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nX: y\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"HTTP/1.1 099 Low\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
])
def test_heads_h11_rejects_are_deferred(data: bytes) -> None:
    is_request = not data.startswith(b"HTTP/")
    assert h11_read(data, is_request)[0] == "error"
    assert read_head(data, is_request) == (DEFER, None)


@pytest.mark.parametrize("data, is_request, tokens", [
    (b"PATCH /a HTTP/1.0\r\nX-Unique-Token-Test: 1\r\n\r\n", True, (b"1.0", b"PATCH")),
    (b"HTTP/1.1 404 Not Found\r\nX-Unique-Token-Test: 2\r\n\r\n", False, (b"1.1", b"Not Found")),
])
def test_read_head_hands_out_the_shared_token_objects(
    data: bytes, is_request: bool, tokens: tuple[bytes, bytes]
) -> None:
    """The parser finds a token's shared text by the object's address (parsers/http1.py): a head read by the kernel
    gives COMMON_TOKENS' own objects, and so does one remembered from it."""
    for _ in range(2):  # read by the kernel, then remembered
        verdict, head = read_head(bytes(data), is_request)
        assert verdict == ACCEPTED
        version, first = tokens
        assert head.http_version is COMMON_TOKENS[version]
        assert (head.method if is_request else head.reason) is COMMON_TOKENS[first]
    verdict, head = read_head(b"HTTP/1.1 299 Made Up\r\nX-Unique-Token-Test: 3\r\n\r\n", False)
    assert head.reason == b"Made Up" and b"Made Up" not in COMMON_TOKENS


def test_read_head_leaves_a_bytearray_resizable_as_h11_needs() -> None:
    data = bytearray(REAL_RESPONSES[1])
    assert read_head(data, False)[0] == ACCEPTED
    del data[:10]
    data += b"more"


def test_too_many_header_lines_are_deferred() -> None:
    data = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * MAX_FIELDS + b"\r\n"
    assert h11_read(data, True)[0] == "event"
    assert read_head(data, True) == (DEFER, None)
    assert assert_agrees_with_h11(b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * (MAX_FIELDS - 1) + b"\r\n",
                                  True) == ACCEPTED


def capture_payloads(name: str) -> set[bytes]:
    """The TCP payloads of a bundled Ethernet capture that start an HTTP message."""
    payloads = set()
    with open(PCAPS / name, "rb") as capture:
        for _, frame in dpkt.pcap.Reader(capture):
            packet = dpkt.ethernet.Ethernet(frame).data
            if isinstance(packet, dpkt.ip.IP | dpkt.ip6.IP6) and isinstance(packet.data, dpkt.tcp.TCP):
                payload = bytes(packet.data.data)
                if b"HTTP/1." in payload[:300]:
                    payloads.add(payload)
    return payloads


@pytest.mark.parametrize("name", ["api_python_curl.pcap", "api_nginx_wrk.pcap"])
def test_heads_of_real_captures_are_accepted_as_h11_reads_them(name: str) -> None:
    accepted = 0
    for payload in capture_payloads(name):
        is_request = not payload.startswith(b"HTTP/")
        outcome = h11_read(payload, is_request)[0]
        verdict = assert_agrees_with_h11(payload, is_request)
        assert (verdict == ACCEPTED) == (outcome == "event"), payload
        accepted += verdict == ACCEPTED
    assert accepted >= 10


def _scratch() -> tuple[np.ndarray, np.ndarray]:
    return np.full((MAX_FIELDS, 4), -7, dtype=np.int64), np.full(N_META, -7, dtype=np.int64)


def scan_both_ways(data: bytes, is_request: bool) -> None:
    """scan_head compiled and its Python body (`py_func`) give the same verdict and the same offsets."""
    buf = np.frombuffer(data, np.uint8)
    compiled_fields, compiled_meta = _scratch()
    python_fields, python_meta = _scratch()
    verdict = scan_head(buf, is_request, compiled_fields, compiled_meta)
    assert python_body(scan_head)(buf, is_request, python_fields, python_meta) == verdict
    if verdict == ACCEPTED:
        np.testing.assert_array_equal(compiled_meta, python_meta)
        n_fields = compiled_meta[META_N_FIELDS]
        np.testing.assert_array_equal(compiled_fields[:n_fields], python_fields[:n_fields])
        assert compiled_meta[META_HEAD_LENGTH] <= len(data)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.data())
def test_scan_head_compiled_equals_python_body(is_request: bool, data: st.DataObject) -> None:
    scan_both_ways(data.draw(almost_heads(is_request)), is_request)


REFERENCE_DUMP = """
import json, sys
from parsers.headread import read_head
cases = json.loads(sys.stdin.read())
out = []
for text, is_request in cases:
    verdict, head = read_head(text.encode("latin-1"), is_request)
    out.append([verdict, None if head is None else repr(head)])
print(json.dumps(out))
"""


def test_whole_kernel_without_jit_equals_compiled() -> None:
    """NUMBA_DISABLE_JIT=1 makes every helper plain Python too, not only the top-level body."""
    rng = random.Random(1234)
    cases = [(data, True) for data in REAL_REQUESTS] + [(data, False) for data in REAL_RESPONSES]
    for data, is_request in list(cases):
        for _ in range(40):
            position = rng.randrange(len(data) + 1)
            mutated = data[:position] + bytes([rng.randrange(256)]) + data[position + rng.randrange(2):]
            cases.append((mutated[:rng.randrange(len(mutated) + 1)] if rng.random() < 0.2 else mutated, is_request))
    payload = json.dumps([(data.decode("latin-1"), is_request) for data, is_request in cases])
    environment = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run([sys.executable, "-c", REFERENCE_DUMP], input=payload, env=environment, text=True,
                            capture_output=True, check=True)
    reference = json.loads(result.stdout)
    compiled = [[verdict, None if head is None else repr(head)]
                for verdict, head in (read_head(data, is_request) for data, is_request in cases)]
    assert compiled == reference
    assert sum(verdict == ACCEPTED for verdict, _ in compiled) > len(REAL_REQUESTS) + len(REAL_RESPONSES)


def test_a_head_read_again_is_the_remembered_one_and_equal_to_a_fresh_reading() -> None:
    from parsers import headread

    head = b"HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 03:00:00 GMT\r\nContent-Length: 2\r\n\r\n"
    headread._response_heads.clear()
    first = read_head(bytearray(head + b"{}"), False)
    again = read_head(bytearray(head + b"[]HTTP/1.1 204"), False)  # what follows the head plays no part
    assert first[0] == again[0] == ACCEPTED and again[1] is first[1]
    headread._response_heads.clear()
    assert read_head(bytearray(head), False) == first
    other = read_head(bytearray(head.replace(b":00 GMT", b":01 GMT")), False)[1]
    assert other is not first[1] and other.headers[0] == (b"date", b"Thu, 26 Nov 2026 03:00:01 GMT")


def test_the_last_remembered_head_is_checked_first_in_place() -> None:
    """The head found or remembered last is compared with the next one where it lies: the same head (for a request,
    the same lines from the version on) is read from it without a lookup, even once the memos were emptied."""
    from parsers import headread

    head = b"HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 03:00:02 GMT\r\nContent-Length: 2\r\n\r\n"
    first = read_head(bytearray(head + b"{}"), False)[1]
    headread._response_heads.clear()
    assert read_head(head + b"[]", False)[1] is first
    shorter = head.replace(b"\r\nContent-Length: 2", b"")  # a prefix of the last head's bytes, a head of its own
    assert read_head(shorter + b"Content-Length: 2\r\n\r\n", False)[1].headers == [
        (b"date", b"Thu, 26 Nov 2026 03:00:02 GMT")]
    lines = b" HTTP/1.1\r\nHost: api\r\nAccept: */*\r\n\r\n"
    first = read_head(b"GET /users/1" + lines, True)[1]
    headread._request_fields.clear()
    again = read_head(b"POST /users/2?x=1" + lines + b"{}", True)[1]
    assert again.headers is first.headers and (again.method, again.target, again.head_length) == (
        b"POST", b"/users/2?x=1", len(b"POST /users/2?x=1" + lines))
    assert read_head(b"GET /users/3 HTTP/1.0\r\nHost: api\r\nAccept: */*\r\n\r\n", True)[1].http_version == b"1.0"


def test_requests_of_a_few_kinds_in_turn_are_read_from_the_recent_ones_in_place() -> None:
    """Clients of one service send a few kinds of request in turn (a GET, a POST with a body, another client's
    header order): the last RECENT_REQUESTS kinds are all compared in place, so none is looked up by key; a kind
    that fell out of them is looked up again."""
    from parsers import headread

    kinds = [b" HTTP/1.1\r\nHost: api\r\nX-Kind: %d\r\n\r\n" % number for number in range(headread.RECENT_REQUESTS)]
    first = [read_head(b"GET /items/%d" % number + lines, True)[1] for number, lines in enumerate(kinds)]
    headread._request_fields.clear()  # only the recent ones are left to read them from
    for turn in range(3):
        for number, lines in enumerate(kinds):
            head = read_head(b"PUT /items/%d%d" % (turn, number) + lines + b"{}", True)[1]
            assert head.headers is first[number].headers and head.target == b"/items/%d%d" % (turn, number)
    assert len(headread._request_fields) == 0
    read_head(b"GET / HTTP/1.1\r\nHost: api\r\nX-Kind: new\r\n\r\n", True)  # pushes the oldest kind out
    again = read_head(b"GET /items/0" + kinds[0], True)[1]
    assert again.headers is not first[0].headers and again.headers == first[0].headers


def test_remembered_heads_are_kept_apart_by_direction_and_bounded() -> None:
    from parsers import headread

    request = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    assert read_head(bytearray(request), True)[0] == ACCEPTED
    assert read_head(bytearray(request), False)[0] == DEFER  # not a status line, whatever was remembered
    for number in range(headread.HEAD_MEMO_ENTRIES + 10):
        read_head(bytearray(b"GET /%d HTTP/1.1\r\nHost: x%d\r\n\r\n" % (number, number)), True)
        read_head(bytearray(b"HTTP/1.1 200 OK\r\nX-Id: %d\r\n\r\n" % number), False)
    assert len(headread._request_fields) <= headread.HEAD_MEMO_ENTRIES
    assert len(headread._response_heads) <= headread.HEAD_MEMO_ENTRIES


def h11_request(head: bytes) -> tuple | None:
    buffer = ReceiveBuffer()
    buffer += head
    try:
        event = maybe_read_from_IDLE_client(buffer)
    except h11.ProtocolError:
        return None
    return event.method, event.target, event.http_version, list(event.headers)


def fast_request(head: bytes) -> tuple | None:
    outcome, fast = read_head(bytearray(head), True)
    if outcome != ACCEPTED:
        return None if outcome == DEFER else outcome
    return fast.method, fast.target, fast.http_version, fast.headers


@pytest.mark.parametrize(
    "heads",
    [
        # the same header lines under other request lines: read from what was remembered, as h11 reads them
        [b"GET /users/1 HTTP/1.1\r\nHost: api\r\nAccept: */*\r\n\r\n",
         b"GET /users/2 HTTP/1.1\r\nHost: api\r\nAccept: */*\r\n\r\n",
         b"DELETE /users/3?x=1 HTTP/1.1\r\nHost: api\r\nAccept: */*\r\n\r\n",
         b"GET /bad target HTTP/1.1\r\nHost: api\r\nAccept: */*\r\n\r\n",
         b"G@T /users/4 HTTP/1.1\r\nHost: api\r\nAccept: */*\r\n\r\n",
         # its header lines end past HEAD_MEMO_MAX_BYTES: read afresh, never from what was remembered
         b"GET /" + b"a" * 2030 + b" HTTP/1.1\r\nHost: api\r\nAccept: */*\r\n\r\n"],
        # the version decides whether Host is needed: never shared across versions
        [b"GET / HTTP/1.0\r\nAccept: */*\r\n\r\n", b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
         b"GET /x HTTP/1.0\r\nAccept: */*\r\n\r\n"],
        # a request line ended by a bare LF: its header lines are not what follows the first CRLF
        [b"GET / HTTP/1.0\nX: 1.1\r\n\r\n", b"GET /a HTTP/1.1\r\n\r\n", b"GET /b HTTP/1.0\r\n\r\n",
         b"GET /c HTTP/1.0\nX: 1.0\r\n\r\n"],
    ],
    ids=["targets", "versions", "bare-lf"],
)
def test_remembered_request_fields_give_what_h11_gives(heads: list[bytes]) -> None:
    from parsers import headread

    headread._request_fields.clear()
    for _ in range(2):  # first from the kernel, then from what was remembered
        for head in heads:
            assert fast_request(head) in (None, h11_request(head)), head
            if fast_request(head) is None:
                continue
            assert fast_request(head) == h11_request(head), head


def test_requests_differing_only_by_target_share_their_header_list() -> None:
    from parsers import headread

    headread._request_fields.clear()
    first = read_head(bytearray(b"GET /users/1 HTTP/1.1\r\nHost: api\r\n\r\n"), True)[1]
    second = read_head(bytearray(b"PUT /users/22 HTTP/1.1\r\nHost: api\r\n\r\nbody"), True)[1]
    assert second.headers is first.headers
    assert (second.method, second.target, second.http_version, second.head_length) == (b"PUT", b"/users/22", b"1.1",
                                                                                        37)  # fmt: skip


# Request lines around each edge of h11's request-line expression, ending with an accepted version.
EDGE_REQUEST_LINES = [
    b"GET / HTTP/1.1", b"M T HTTP/1.1", b"GET  / HTTP/1.1", b" GET / HTTP/1.1", b"GET /  HTTP/1.1",
    b"GET HTTP/1.1", b" HTTP/1.1", b"GET /a b HTTP/1.1", b"GET /a\tb HTTP/1.1", b"GET /\x7f HTTP/1.1",
    b"GET /\x80 HTTP/1.1", b"G(T / HTTP/1.1", b"G\x00T / HTTP/1.1", b"GET\t/ HTTP/1.1", b"GET /~!$&'()*+,;= HTTP/1.1",
    b"M-!#$%&'*+.^_`|~9z / HTTP/1.0", b"GET http://h:1/p?q=1#f HTTP/1.1", b"GET\x20\x21 HTTP/1.1", b"/ HTTP/1.1",
    b"GET /x\x20HTTP/1.1",
]


def _request_line_where_h11_reads_it(line: bytes) -> tuple[bytes, bytes] | None:
    """The method and target `_request_line` finds in `line` followed by a head's end, when the version it finds
    begins where `line`'s does (read_head then compares the version and the rest with a remembered key)."""
    from parsers.headread import _request_line

    parts = _request_line(line + b"\r\nHost: a\r\n\r\n")
    return None if parts is None or parts[2] != len(line) - 3 else parts[:2]


@pytest.mark.parametrize("line", EDGE_REQUEST_LINES)
def test_request_line_matches_h11s_request_line_expression(line: bytes) -> None:
    from h11._readers import request_line_re

    match = request_line_re.fullmatch(line)
    expected = None if match is None else (match.group("method"), match.group("target"))
    assert _request_line_where_h11_reads_it(line) == expected


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=12), st.sampled_from([b" ", b"  ", b"\t", b""]), st.binary(max_size=24),
       st.sampled_from([b" ", b"", b"  "]))
def test_request_line_agrees_with_h11_on_any_bytes(method: bytes, gap: bytes, target: bytes, end: bytes) -> None:
    from h11._readers import request_line_re

    line = method + gap + target + end + b"HTTP/1.1"
    match = request_line_re.fullmatch(line)
    expected = None if match is None else (match.group("method"), match.group("target"))
    assert _request_line_where_h11_reads_it(line) == expected


def test_request_line_whose_version_begins_past_the_remembered_heads_length_is_not_read() -> None:
    from parsers.headread import HEAD_MEMO_MAX_BYTES, _request_line

    filler = b"a" * (HEAD_MEMO_MAX_BYTES - len(b"GET / HTTP/"))
    assert _request_line(b"GET /" + filler + b" HTTP/1.1\r\n\r\n")[2] == HEAD_MEMO_MAX_BYTES
    assert _request_line(b"GET /a" + filler + b" HTTP/1.1\r\n\r\n") is None
