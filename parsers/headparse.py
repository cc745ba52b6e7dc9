"""A numba fast path for reading an HTTP/1.x message head, exactly as h11 0.16's head readers would.

h11's `maybe_read_from_IDLE_client` / `maybe_read_from_SEND_RESPONSE_server` split the head into lines, match a
regex per line and then normalise and validate the headers in Python; on a replay that is about a quarter of the
time. `read_head` does the same work in one compiled pass over the receive buffer and answers with one of:

- INCOMPLETE: h11 would return None (no blank line yet) without raising;
- ACCEPTED: h11 would return an event equal to the `FastHead` given back, and consume `head_length` bytes;
- DEFER: anything else. h11 would raise, or the head is legal but rare enough that it is left to h11 (the caller
  then runs h11's reader on the same buffer). Accepting less is always safe; accepting differently never is.

What is deferred although h11 accepts it: obs-fold continuation lines, a repeated Content-Length (h11 collapses
equal ones), a Content-Length with a comma or more than 18 digits, Content-Length together with
Transfer-Encoding, more than MAX_FIELDS header lines. Everything else h11 rejects is deferred too: a buffer
starting with a byte below 0x21 (h11 raises even on an incomplete head), bad start lines, bad header lines (bare
CR, NUL, space before the colon, ...), a Transfer-Encoding other than one `chunked`, a 1.1 request without
a Host, a request with more than one Host, a status code below 100.

The kernel writes offsets only (start-line pieces and one (name_start, name_end, value_start, value_end) row per
header) into scratch arrays; `read_head` (parsers.headread, a module of its own so that the compiled build can
compile it, which it cannot do to numba's kernels) slices one copy of the head into bytes.
"""

from __future__ import annotations

import numpy as np

from sniffer.aot import kernel

INCOMPLETE, ACCEPTED, DEFER = 0, 1, 2

MAX_FIELDS = 128  # header lines per head; more is rare enough to leave to h11
MAX_CONTENT_LENGTH_DIGITS = 18  # fits an int64 whatever the digits; h11 allows 20

LF = 0x0A
CR = 0x0D
SP = 0x20
HTAB = 0x09
COLON = 0x3A
DOT = 0x2E
DIGIT_0 = 0x30
DIGIT_9 = 0x39
UPPER_A = 0x41
UPPER_Z = 0x5A
LOWER_OFFSET = 0x20
FIRST_VISIBLE = 0x21  # h11 raises on a buffer whose first byte is below this, complete head or not

# Byte classes as bit flags, from the grammar of h11's _abnf.py.
TOKEN = 1  # tchar: field names and methods
VCHAR = 2  # 0x21-0x7e: request targets
FIELD_VCHAR = 4  # h11's `[^\x00\s]`: header values and reason phrases (control characters included)
OWS = 8  # SP / HTAB

# META slots: where the kernel leaves the start line's pieces and the counts.
META_HEAD_LENGTH = 0
META_N_FIELDS = 1
META_FIRST_START = 2  # request: method; response: reason
META_FIRST_END = 3
META_TARGET_START = 4
META_TARGET_END = 5
META_VERSION_START = 6  # the three bytes "d.d"
META_STATUS = 7
META_CHUNKED_ROW = 8  # the Transfer-Encoding row, whose value h11 gives back lower-cased; -1 if none
META_CONTENT_LENGTH = 9  # the Content-Length value; -1 if none
N_META = 10

VERSION_LENGTH = 3  # "1.1"
STATUS_LINE_MIN = 12  # "HTTP/1.1 200"
HTTP_PREFIX = np.frombuffer(b"HTTP/", dtype=np.uint8)
NAME_HOST = np.frombuffer(b"host", dtype=np.uint8)
NAME_CONTENT_LENGTH = np.frombuffer(b"content-length", dtype=np.uint8)
NAME_TRANSFER_ENCODING = np.frombuffer(b"transfer-encoding", dtype=np.uint8)
VALUE_CHUNKED = np.frombuffer(b"chunked", dtype=np.uint8)
VERSION_1_1 = np.frombuffer(b"1.1", dtype=np.uint8)


def _byte_classes() -> np.ndarray:
    """One bit-flag entry per byte value; the regexes of h11's _abnf.py turned into a table."""
    classes = np.zeros(256, dtype=np.uint8)
    tchar = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for value in tchar:
        classes[value] |= TOKEN
    for value in range(0x21, 0x7F):
        classes[value] |= VCHAR
    for value in range(256):
        # Python's bytes-pattern \s is exactly [ \t\n\r\f\v]; h11 excludes it and NUL from field-vchar.
        if value not in b"\x00 \t\n\r\x0b\x0c":
            classes[value] |= FIELD_VCHAR
    classes[SP] |= OWS
    classes[HTAB] |= OWS
    return classes


BYTE_CLASSES = _byte_classes()


@kernel()
def _all_in_class(buf: np.ndarray, start: int, end: int, flag: int) -> bool:
    """Whether every byte of buf[start:end] has the class flag (true for an empty range)."""
    for i in range(start, end):
        if not BYTE_CLASSES[buf[i]] & flag:
            return False
    return True


@kernel()
def _is_digit(value: int) -> bool:
    return DIGIT_0 <= value <= DIGIT_9


@kernel()
def _equals_lowered(buf: np.ndarray, start: int, end: int, lowercase: np.ndarray) -> bool:
    """Whether buf[start:end], ASCII-lower-cased as bytes.lower() does, equals `lowercase`."""
    if end - start != lowercase.shape[0]:
        return False
    for i in range(lowercase.shape[0]):
        value = buf[start + i]
        if UPPER_A <= value <= UPPER_Z:
            value += LOWER_OFFSET
        if value != lowercase[i]:
            return False
    return True


@kernel()
def _head_end(buf: np.ndarray) -> tuple[int, int]:
    """(index of the LF ending the last head line, head length) at the first `\\n\\r?\\n`; (-1, -1) if none.

    The leftmost match of h11's blank-line regex: the head is everything up to and including it.
    """
    n = buf.shape[0]
    for i in range(n - 1):
        if buf[i] == LF:
            if buf[i + 1] == LF:
                return i, i + 2
            if buf[i + 1] == CR and i + 2 < n and buf[i + 2] == LF:
                return i, i + 3
    return -1, -1


@kernel()
def _line_end(buf: np.ndarray, start: int, last_lf: int) -> tuple[int, int]:
    """(content end, index of the LF) of the line starting at `start`; h11 strips one CR before the LF."""
    lf = start
    while lf < last_lf and buf[lf] != LF:
        lf += 1
    end = lf
    if end > start and buf[end - 1] == CR:
        end -= 1
    return end, lf


@kernel()
def _is_version(buf: np.ndarray, start: int) -> bool:
    """Whether buf[start:start + 8] is `HTTP/d.d` (the caller checked the length)."""
    for i in range(HTTP_PREFIX.shape[0]):
        if buf[start + i] != HTTP_PREFIX[i]:
            return False
    return _is_digit(buf[start + 5]) and buf[start + 6] == DOT and _is_digit(buf[start + 7])


@kernel()
def _request_line(buf: np.ndarray, end: int, meta: np.ndarray) -> bool:
    """h11's request_line: `token SP 1*VCHAR SP HTTP/d.d`, the whole line; fills the META slots."""
    method_end = 0
    while method_end < end and BYTE_CLASSES[buf[method_end]] & TOKEN:
        method_end += 1
    if method_end == 0 or method_end >= end or buf[method_end] != SP:
        return False
    target_start = method_end + 1
    target_end = target_start
    while target_end < end and BYTE_CLASSES[buf[target_end]] & VCHAR:
        target_end += 1
    http_start = target_end + 1
    if target_end == target_start or end - http_start != 8 or buf[target_end] != SP:
        return False
    if not _is_version(buf, http_start):
        return False
    meta[META_FIRST_START] = 0
    meta[META_FIRST_END] = method_end
    meta[META_TARGET_START] = target_start
    meta[META_TARGET_END] = target_end
    meta[META_VERSION_START] = http_start + 5
    return True


@kernel()
def _status_line(buf: np.ndarray, end: int, meta: np.ndarray) -> bool:
    """h11's status_line: `HTTP/d.d SP 3DIGIT [SP reason]`, reason any of SP / HTAB / field-vchar.

    A missing reason and an empty one both read as b"". Codes below 100 fail h11's event checks, so they fail here.
    """
    if end < STATUS_LINE_MIN or not _is_version(buf, 0) or buf[8] != SP:
        return False
    status = 0
    for i in range(9, 12):
        if not _is_digit(buf[i]):
            return False
        status = status * 10 + int(buf[i]) - DIGIT_0
    if status < 100:
        return False
    reason_start = 12
    if end > 12:
        if buf[12] != SP or not _all_in_class(buf, 13, end, FIELD_VCHAR | OWS):
            return False
        reason_start = 13
    meta[META_FIRST_START] = reason_start
    meta[META_FIRST_END] = end
    meta[META_VERSION_START] = 5
    meta[META_STATUS] = status
    return True


@kernel()
def _header_line(buf: np.ndarray, start: int, fields: np.ndarray, row: int) -> int:
    """h11's header_field, `token ":" OWS [field-content] OWS`, over the line starting at `start`, in one pass.

    Returns the index of the LF ending the line, or -1 if the line fails (a CR is only allowed just before the
    LF, which h11 strips); fields[row] gets the name and value slices. The head's last line ends at an LF, so
    every scan stops there without a bound.
    """
    name_end = start
    while BYTE_CLASSES[buf[name_end]] & TOKEN:
        name_end += 1
    if name_end == start or buf[name_end] != COLON:
        return -1
    i = name_end + 1
    while BYTE_CLASSES[buf[i]] & OWS:
        i += 1
    value_start = i
    value_end = i
    while buf[i] != LF:
        byte_class = BYTE_CLASSES[buf[i]]
        if byte_class & FIELD_VCHAR:
            value_end = i + 1
        elif not byte_class & OWS and not (buf[i] == CR and buf[i + 1] == LF):
            return -1
        i += 1
    fields[row, 0] = start
    fields[row, 1] = name_end
    fields[row, 2] = value_start
    fields[row, 3] = value_end
    return i


@kernel()
def _framing_and_host_ok(
    buf: np.ndarray, fields: np.ndarray, n_fields: int, is_request: bool, host_required: bool, meta: np.ndarray
) -> bool:
    """normalize_and_validate's Content-Length / Transfer-Encoding rules and Request's Host rules.

    Only the plain cases pass: one Content-Length of 1-18 digits, or one Transfer-Encoding that is `chunked` in
    any case, not both; in a request, exactly one Host when required, never more than one (responses may have
    any number). The Transfer-Encoding row goes to meta[META_CHUNKED_ROW], the Content-Length value to
    meta[META_CONTENT_LENGTH].
    """
    meta[META_CHUNKED_ROW] = -1
    meta[META_CONTENT_LENGTH] = -1
    hosts = 0
    content_lengths = 0
    transfer_encodings = 0
    for i in range(n_fields):
        name_start, name_end, value_start, value_end = fields[i, 0], fields[i, 1], fields[i, 2], fields[i, 3]
        if _equals_lowered(buf, name_start, name_end, NAME_HOST):
            hosts += 1
        elif _equals_lowered(buf, name_start, name_end, NAME_CONTENT_LENGTH):
            content_lengths += 1
            digits = value_end - value_start
            if digits == 0 or digits > MAX_CONTENT_LENGTH_DIGITS:
                return False
            length = 0
            for j in range(value_start, value_end):
                if not _is_digit(buf[j]):
                    return False
                length = length * 10 + (np.int64(buf[j]) - DIGIT_0)
            meta[META_CONTENT_LENGTH] = length
        elif _equals_lowered(buf, name_start, name_end, NAME_TRANSFER_ENCODING):
            transfer_encodings += 1
            meta[META_CHUNKED_ROW] = i
            if not _equals_lowered(buf, value_start, value_end, VALUE_CHUNKED):
                return False
    if is_request and (hosts > 1 or (host_required and hosts == 0)):
        return False
    return content_lengths + transfer_encodings <= 1


@kernel("readonly u1[::1]", "b1", "i8[:, ::1]", "i8[::1]")
def scan_head(buf: np.ndarray, is_request: bool, fields: np.ndarray, meta: np.ndarray) -> int:
    """Reads the head at the start of `buf` (uint8) as h11 would; returns INCOMPLETE, ACCEPTED or DEFER.

    On ACCEPTED, meta (int64, N_META) holds the head length, the number of header rows and the start line's
    pieces; fields (int64, MAX_FIELDS x 4) holds one (name_start, name_end, value_start, value_end) row per
    header line, in order. Other verdicts leave them in an unspecified state.
    """
    if buf.shape[0] == 0:
        return INCOMPLETE
    if buf[0] < FIRST_VISIBLE:
        return DEFER
    last_lf, head_length = _head_end(buf)
    if last_lf < 0:
        return INCOMPLETE
    end, lf = _line_end(buf, 0, last_lf)
    if is_request:
        if not _request_line(buf, end, meta):
            return DEFER
    elif not _status_line(buf, end, meta):
        return DEFER
    n_fields = 0
    start = lf + 1
    while start <= last_lf:
        if n_fields == MAX_FIELDS:
            return DEFER
        lf = _header_line(buf, start, fields, n_fields)
        if lf < 0:
            return DEFER
        n_fields += 1
        start = lf + 1
    version = meta[META_VERSION_START]
    host_required = is_request and _equals_lowered(buf, version, version + VERSION_LENGTH, VERSION_1_1)
    if not _framing_and_host_ok(buf, fields, n_fields, is_request, host_required, meta):
        return DEFER
    meta[META_HEAD_LENGTH] = head_length
    meta[META_N_FIELDS] = n_fields
    return ACCEPTED
