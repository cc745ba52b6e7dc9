"""`read_head`: an HTTP/1.x message head read as h11 0.16 reads it, with the kernel of parsers.headparse.

The kernel is numba's; this wrapper around it runs for every message, so it is a module of its own, which the
compiled build (setup.py) compiles. The kernel writes offsets only into module-level scratch arrays, which make
`read_head` non-reentrant: call it from one thread at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

import numpy as np

from parsers.headparse import ACCEPTED, MAX_FIELDS, N_META, VERSION_LENGTH, scan_head
from parsers.memo import SharedHeaders


@dataclass
class FastHead:
    """The parts of h11's Request / Response / InformationalResponse event that the HTTP layer reads.

    Compiled, an extension type (parsers/headread.pxd) that the parser reads as a C struct; not `slots=True`,
    which Cython's dataclasses do not take."""

    head_length: int
    http_version: bytes
    headers: list[tuple[bytes, bytes]]
    method: bytes = b""
    target: bytes = b""
    status: int = 0
    reason: bytes = b""
    # How the body is framed, as the headers say (the kernel accepts one Content-Length or one chunked
    # Transfer-Encoding at most): what the parser would otherwise look up in the headers per message.
    content_length: int = -1
    chunked: bool = False


_FIELDS = np.zeros((MAX_FIELDS, 4), dtype=np.int64)
_FIELDS_FLAT = _FIELDS.reshape(-1)  # the same memory; a 1-D slice converts to a list faster than rows do
_META = np.zeros(N_META, dtype=np.int64)


# Servers send the same response head again and again (all within the second of its Date header), and a client
# the same header fields under request lines that differ by their target. A response head accepted once is
# remembered by its exact bytes; a request's header fields by the bytes from its version on (the version decides
# whether Host is required), its request line then checked with h11's own expression. At most HEAD_MEMO_ENTRIES
# of each, of at most HEAD_MEMO_MAX_BYTES (a few MB), forgotten all at once when full. What is remembered is
# shared by every message with that head: its header list is never changed.
HEAD_MEMO_ENTRIES = 4096
HEAD_MEMO_MAX_BYTES = 2048
_HEAD_END = b"\r\n\r\n"
_LINE_END = b"\r\n"
_VERSION_PREFIX = b" HTTP/"
_response_heads: dict[bytes, FastHead] = {}
_request_fields: dict[bytes, tuple[bytes, SharedHeaders, int, bool]] = {}  # -> (version, headers, length, chunked)
# The entries found or made last, checked first: the next head is often one of them (the same client's next request,
# an answer of one of the few endpoints a server answers in turn), and comparing it in place spares copying its bytes
# as a key, hashing them and the lookup. A key ends with the head's only CRLF CRLF: a head that starts with it (for
# a request, from its version on) ends where the key does, so at most one of them matches. The last
# RECENT_RESPONSES response heads and RECENT_REQUESTS requests' header lines made or looked up, newest first (the
# clients of one service send a few kinds of request in turn: with the last request's lines alone, 27% of the bench
# capture's requests missed and were looked up by key). The lists are changed in place: rebinding a module global
# changes the module's dictionary, and every global this module reads, which compiled code caches by that
# dictionary's version, was then looked up again (some 215,000 lookups over the bench capture's first 120,000
# packets).
RECENT_RESPONSES = 8
RECENT_REQUESTS = 8
_recent_responses: list[tuple[bytes, FastHead]] = []
_recent_requests: list[tuple[bytes, tuple[bytes, SharedHeaders, int, bool]]] = []


def _request_line(data: bytes) -> tuple[bytes, bytes, int] | None:
    r"""(method, target, where the version number begins) of a request line that h11's request-line expression
    would match from the method to ` HTTP/`: `([-!#$%&'*+.^_`|~0-9a-zA-Z]+) ([\x21-\x7e]+) HTTP/`, a method of
    token characters and a target of visible ASCII; None where it would not, or where the version would begin
    past HEAD_MEMO_MAX_BYTES (no remembered head is longer). A target holds no space, so the first space ends the
    method, and the first byte that is not visible ASCII ends the target. The caller checks what follows: the
    version and the first CRLF. Compiled, the loops are C loops over the bytes (parsers/headread.pxd); finding the
    line's end first, with `bytes.find`, cost a method call by name (some 1,500 instructions a request)."""
    limit = min(len(data), HEAD_MEMO_MAX_BYTES)
    space = 0
    while space < limit:
        byte = data[space]
        if byte == 0x20:
            break
        if not (0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A or 0x30 <= byte <= 0x39 or byte in b"-!#$%&'*+.^_`|~"):
            return None
        space += 1
    if space == 0 or space >= limit:
        return None
    target_end = space + 1
    while target_end < limit:
        byte = data[target_end]
        if byte < 0x21 or byte > 0x7E:
            break
        target_end += 1
    version_start = target_end + len(_VERSION_PREFIX)
    if target_end == space + 1 or version_start > limit or not data.startswith(_VERSION_PREFIX, target_end):
        return None
    text = data  # compiled, the bytes by a C pointer (headread.pxd): the target copied out without a slice object
    return _method(data, space), text[space + 1 : target_end], version_start


# The methods nearly every request carries, each as one bytes object: a method sliced from every request line was a new
# object (some 550 instructions), whose hash the parser's table of shared texts then computed again.
_COMMON_METHODS = (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS")
# Every method, version and standard reason phrase a head read here gives, as one bytes object each (a fixed set):
# the parser finds its shared text (parsers/http1.py, whose table holds these very objects as keys) by the object's
# address, where a token sliced from a head was compared byte by byte (some 140 instructions a lookup).
COMMON_TOKENS = {
    token: token
    for token in (*_COMMON_METHODS, b"CONNECT", b"TRACE", b"1.0", b"1.1",
                  *(status.phrase.encode() for status in HTTPStatus))  # fmt: skip
}


def _method(data: bytes, length: int) -> bytes:
    """The request line's method, its first `length` bytes: a common one's shared bytes, else a slice."""
    for method in _COMMON_METHODS:
        if len(method) == length and data.startswith(method):
            return method
    return data[:length]


def _remembered_request(
    head_length: int, remembered: tuple[bytes, SharedHeaders, int, bool], method: bytes, target: bytes
) -> FastHead:
    """A request's FastHead from the remembered facts of its header fields and its request line's parts."""
    version, headers, content_length, chunked = remembered
    # Field by field: compiled, C struct fields set, where calling the class matched its nine parameters for every
    # request (this function took some 470 instructions a request that way, 270 this way).
    head = FastHead.__new__(FastHead)
    head.head_length = head_length
    head.http_version = version
    head.headers = headers
    head.method = method
    head.target = target
    head.status = 0
    head.reason = b""
    head.content_length = content_length
    head.chunked = chunked
    return head


def read_head(data: bytes | bytearray, is_request: bool) -> tuple[int, FastHead | None]:
    """(INCOMPLETE, None) when h11 would return None (need more bytes) without raising; (ACCEPTED, head) when h11
    would return an event equal to `head`; (DEFER, None) in every other case (h11 would raise, or the kernel is not
    sure).

    `data` is the whole content of h11's ReceiveBuffer at a message start; it is not modified, and no view of it
    outlives the call (a bytearray with a live numpy view could not be resized by h11). The header list returned
    may be shared (see HEAD_MEMO_ENTRIES): do not change it.
    """
    # The bytes a remembered head can span, as bytes: compiled, startswith on them is a C call (headread.pxd).
    start_bytes = data if type(data) is bytes else bytes(data[:HEAD_MEMO_MAX_BYTES])
    parts = None
    if is_request:
        # A remembered key starts with the version and its CRLF, so a key found where the version begins also
        # finds the line's end: no method or target holds a CR or LF.
        parts = _request_line(start_bytes)
        if parts is not None:
            version_start = parts[2]
            recent = _recent_requests  # a typed local when compiled: a C loop over the list
            for last_key, remembered in recent:
                if version_start + len(last_key) <= HEAD_MEMO_MAX_BYTES and start_bytes.startswith(
                    last_key, version_start
                ):
                    return ACCEPTED, _remembered_request(version_start + len(last_key), remembered, parts[0], parts[1])
    else:
        recent = _recent_responses
        for last_key, remembered_head in recent:
            if start_bytes.startswith(last_key):
                return ACCEPTED, remembered_head
    key = None
    end = start_bytes.find(_HEAD_END, 0, HEAD_MEMO_MAX_BYTES)
    if end >= 0:
        if is_request:
            line_end = start_bytes.find(_LINE_END, 0, end + 2)
            if line_end > VERSION_LENGTH:
                key = start_bytes[line_end - VERSION_LENGTH : end + 4]
                remembered = _request_fields.get(key)
                if remembered is not None and parts is not None and parts[2] == line_end - VERSION_LENGTH:
                    _recent(_recent_requests, RECENT_REQUESTS, key, remembered)
                    return ACCEPTED, _remembered_request(end + 4, remembered, parts[0], parts[1])
        else:
            key = start_bytes[: end + 4]
            remembered_head = _response_heads.get(key)
            if remembered_head is not None:
                _recent(_recent_responses, RECENT_RESPONSES, key, remembered_head)
                return ACCEPTED, remembered_head
    verdict = scan_head(np.frombuffer(data, np.uint8), is_request, _FIELDS, _META)
    if verdict != ACCEPTED:
        return verdict, None
    (head_length, n_fields, first_start, first_end, target_start, target_end, version_start, status, chunked_row,
     content_length) = _META.tolist()
    head = bytes(data[:head_length])
    lowered = head.lower()  # names are tokens (ASCII), so lowering the whole head lowers them as h11 does
    bounds = iter(_FIELDS_FLAT[:4 * n_fields].tolist())
    headers = [(lowered[a:b], head[c:d]) for a, b, c, d in zip(bounds, bounds, bounds, bounds, strict=False)]
    if chunked_row >= 0:
        headers[chunked_row] = (b"transfer-encoding", b"chunked")  # h11 stores the value lower-cased
    http_version = _shared_token(head[version_start:version_start + VERSION_LENGTH])
    first = _shared_token(head[first_start:first_end])  # the method, or the reason phrase
    chunked = chunked_row >= 0
    if is_request:
        fast = FastHead(head_length, http_version, headers, first, head[target_start:target_end],
                        content_length=content_length, chunked=chunked)
    else:
        fast = FastHead(head_length, http_version, headers, status=status, reason=first,
                        content_length=content_length, chunked=chunked)
    # Remembered only when the head the kernel read is the one looked up and, for a request, the line it read ends
    # with the version just before the first CRLF: the key then holds exactly the version and the header lines.
    if key is not None and head_length == end + 4 and (not is_request or version_start + VERSION_LENGTH == line_end):
        fast.headers = SharedHeaders(headers)
        memo = _request_fields if is_request else _response_heads
        if len(memo) >= HEAD_MEMO_ENTRIES:
            memo.clear()
        if is_request:
            remembered = (http_version, fast.headers, content_length, chunked)
            memo[key] = remembered
            _recent(_recent_requests, RECENT_REQUESTS, key, remembered)
        else:
            memo[key] = fast
            _recent(_recent_responses, RECENT_RESPONSES, key, fast)
    return ACCEPTED, fast


def _shared_token(token: bytes) -> bytes:
    """The COMMON_TOKENS object equal to `token`, else `token` itself (heads read by the kernel only: a head read
    once is remembered, so this runs for few messages)."""
    return COMMON_TOKENS.get(token, token)


def _recent(recent: list, size: int, key: bytes, value: object) -> None:
    """Puts an entry first among the recent ones (at most `size`), which do not hold it yet (read_head looked
    there first)."""
    recent.insert(0, (key, value))
    del recent[size:]
