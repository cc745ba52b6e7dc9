import pytest

from parsers.detect import (
    REQUEST_START,
    RESPONSE_START,
    find_message_start,
    looks_like_request_stream,
    message_starts_at_zero,
)
from parsers.lenient import lenient_request_head, partial_head, with_empty_host
from parsers.messages import MessageHead


@pytest.mark.parametrize(
    "first_bytes",
    [
        b"GET /api/v1/users HTTP/1.1\r\nHost: api\r\n",
        b"OPTIONSHTTP/1.1\r\n",
        b"\xc3\xa9GET / HTTP/1.1\r\n",
        b"M-SEARCH * HTTP/1.1\r\n",
        b"CCM_POST /x HTTP/1.1\r\n",
        b"GET /path\r\n",
        b"GET /",
        b"GET\r\n",
        b"GET /a-very-long-path/that/runs/past/forty",
    ],
)
def test_request_like_first_bytes_read_as_http(first_bytes):
    assert looks_like_request_stream(first_bytes) is True


@pytest.mark.parametrize(
    "first_bytes",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n",
        b"\x00\x00\x00\x01",
        b"220 mail.example.org ESMTP Postfix\r\n",
        b"A" * 40,
    ],
)
def test_other_protocols_do_not_read_as_http(first_bytes):
    assert looks_like_request_stream(first_bytes) is False


@pytest.mark.parametrize("first_bytes", [b"", b"G", b"GE", b"POST", b"SSH-2.0-Open"])
def test_too_few_bytes_give_no_verdict(first_bytes):
    assert looks_like_request_stream(first_bytes) is None


@pytest.mark.parametrize(
    ("buffer", "position"),
    [
        (b"GET /a HTTP/1.1\r\nHost: api\r\n\r\n", 0),
        (b"tail of a body\r\nPOST /items HTTP/1.1\r\n", 16),
        (b"tail\nDELETE /items/7 HTTP/1.0\n", 5),
        (b"not at a line start: GET /a HTTP/1.1\r\n", -1),
        (b"GET /a\r\n", -1),
        (b"GET /a HTTP/1.1", -1),
        (b"HTTP/1.1 200 OK\r\n", -1),
    ],
)
def test_request_start_is_a_versioned_request_line_at_a_line_start(buffer, position):
    assert find_message_start(buffer, REQUEST_START) == position


@pytest.mark.parametrize(
    ("buffer", "position"),
    [
        (b"HTTP/1.1 200 OK\r\n", 0),
        (b"HTTP/1.1 204\r\n", 0),
        (b"body tail\r\nHTTP/1.0 404 Not Found\r\n", 11),
        (b"body tail HTTP/1.1 200 OK\r\n", -1),
        (b"HTTP/1.1 20 OK\r\n", -1),
        (b"GET /a HTTP/1.1\r\n", -1),
    ],
)
def test_response_start_is_a_status_line_at_a_line_start(buffer, position):
    assert find_message_start(buffer, RESPONSE_START) == position


def test_find_message_start_searches_from_the_given_offset():
    buffer = b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 201 Created\r\n"
    assert find_message_start(buffer, RESPONSE_START, start=1) == 19


@pytest.mark.parametrize(
    ("buffer", "position"), [(b"GET / HTTP/1.1\r\n", 0), (b"\r\nGET / HTTP/1.1\r\n", -1), (b" GET / HTTP/1.1\r\n", -1)]
)
def test_message_starts_at_zero_looks_only_at_offset_zero(buffer, position):
    assert message_starts_at_zero(buffer, REQUEST_START) == position


def test_lenient_head_reads_request_line_without_target():
    buffer = b"OPTIONS HTTP/1.1\r\nHost: api\r\n\r\n"
    head, length = lenient_request_head(buffer, 5)
    assert (head, length) == (
        MessageHead(5, "1.1", [(b"host", b"api")], method="OPTIONS", target="", flags=["parse_error"]),
        len(buffer),
    )


def test_lenient_head_reads_target_glued_to_version_as_http09():
    head, length = lenient_request_head(b"GET /HTTP/1.1\r\nHost: api\r\n\r\n", 5)
    assert (head, length) == (MessageHead(5, "0.9", [], method="GET", target="/HTTP/1.1", flags=["parse_error"]), 15)


def test_lenient_head_reads_cut_version():
    buffer = b"GET / HTTP/1.\r\n\r\nGET /next HTTP/1.1\r\n"
    head, length = lenient_request_head(buffer, 5)
    assert (head, length) == (MessageHead(5, "1.", [], method="GET", target="/", flags=["parse_error"]), 17)


def test_lenient_head_keeps_header_lines_and_skips_broken_ones():
    buffer = b"GET /x HTTP/1.1\r\nHost: api\r\nBad Header Line\r\nAccept:  */* \r\n\r\n"
    head, _ = lenient_request_head(buffer, 5)
    assert head.headers == [(b"host", b"api"), (b"accept", b"*/*")]


@pytest.mark.parametrize(
    "buffer",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n",
        b"GET / FTP/1.1\r\n\r\n",
        b"get /lower\r\n",
        b"GET relative\r\n",
        b"GET / HTTP/1.1\r\nHost: api\r\n",
        b"GET / HTTP/1.1",
    ],
)
def test_lenient_head_refuses_what_is_not_a_request_head(buffer):
    assert lenient_request_head(buffer, 5) is None


def test_with_empty_host_adds_an_empty_host_after_the_request_line():
    assert (
        with_empty_host(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n") == b"GET / HTTP/1.1\r\nHost: \r\nAccept: */*\r\n\r\n"
    )


def test_partial_head_reads_a_status_line():
    head = partial_head(False, b"HTTP/1.1 404 Not Found\r\nContent-Ty", 9)
    assert head == MessageHead(9, "1.1", [], status=404, reason="Not Found", flags=["gap"])


def test_partial_head_reads_a_status_line_without_reason():
    assert partial_head(False, b"HTTP/1.0 204\r\n", 9) == MessageHead(9, "1.0", [], status=204, flags=["gap"])


def test_partial_head_reads_a_request_line():
    head = partial_head(True, b"POST /items HTTP/1.1\r\nContent-Le", 9)
    assert head == MessageHead(9, "1.1", [], method="POST", target="/items", flags=["gap"])


@pytest.mark.parametrize(
    ("is_request", "buffer"),
    [(False, b"HTTP/1.1 404 Not Fo"), (False, b"garbage\r\n"), (True, b"POST /items HT"), (True, b"POST\r\n")],
)
def test_partial_head_without_a_whole_start_line_is_none(is_request, buffer):
    assert partial_head(is_request, buffer, 9) is None
