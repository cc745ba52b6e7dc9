import gzip
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.correlate import Exchange, TransactionCorrelator
from parsers.http1 import Http1DirectionParser, ParserLimits
from parsers.messages import ROLE_REQUESTS, ROLE_RESPONSES, ROLE_UNKNOWN, MessageEnd, MessageHead, MessageSink

GET = b"GET /a HTTP/1.1\r\nHost: api\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
POST = b"POST /items?id=7 HTTP/1.1\r\nHost: api\r\nContent-Length: 5\r\n\r\nhello"
CREATED_CHUNKED = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
WEBSOCKET_UPGRADE = b"GET /ws HTTP/1.1\r\nHost: api\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
TLS_CLIENT_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32))


class DirectionSink(MessageSink):
    """Like sniffer/flows.py's _DirectionSink: messages go to the shared correlator; role and verdict are recorded."""

    def __init__(self, conversation: "Conversation") -> None:
        self.conversation = conversation
        self.correlator = conversation.correlator
        self.roles: list[int] = []
        self.verdicts: list[bool] = []

    def on_head(self, role: int, head: MessageHead) -> None:
        self.correlator.on_head(role, head)

    def on_interim(self, head: MessageHead) -> None:
        self.correlator.on_interim(head)

    def on_end(self, role: int, end: MessageEnd) -> None:
        self.correlator.on_end(role, end)

    def on_role(self, role: int) -> None:
        self.roles.append(role)
        self.conversation.role_found(self, role)

    def on_verdict(self, looks_like_http: bool) -> None:
        self.verdicts.append(looks_like_http)

    def response_context(self) -> tuple[bytes, bool]:
        return self.correlator.response_context()


class Conversation:
    """Both directions of one connection; each parser is made at its first byte, as sniffer/flows.py does."""

    def __init__(
        self,
        limits: ParserLimits | None = None,
        at_stream_start: bool = True,
        client_role: int = ROLE_REQUESTS,
        server_role: int = ROLE_RESPONSES,
    ) -> None:
        self.limits = limits or ParserLimits()
        self.at_stream_start = at_stream_start
        self.exchanges: list[Exchange] = []
        self.correlator = TransactionCorrelator(self.exchanges.append, self._switch_decided)
        self.client_sink = DirectionSink(self)
        self.server_sink = DirectionSink(self)
        self._roles = {"client": client_role, "server": server_role}
        self._parsers: dict[str, Http1DirectionParser] = {}

    def _parser(self, side: str) -> Http1DirectionParser:
        if side not in self._parsers:
            sink = self.client_sink if side == "client" else self.server_sink
            self._parsers[side] = Http1DirectionParser(self._roles[side], sink, self.limits, self.at_stream_start)
        return self._parsers[side]

    @property
    def client(self) -> Http1DirectionParser:
        return self._parser("client")

    @property
    def server(self) -> Http1DirectionParser:
        return self._parser("server")

    def role_found(self, sink: DirectionSink, role: int) -> None:
        other_side = "server" if sink is self.client_sink else "client"
        other_role = ROLE_RESPONSES if role == ROLE_REQUESTS else ROLE_REQUESTS
        self._roles[other_side] = other_role
        if other_side in self._parsers:
            self._parsers[other_side].set_role(other_role)

    def _switch_decided(self, switched: bool) -> None:
        self.client.resolve_switch(switched)

    def close(self) -> list[Exchange]:
        for parser in self._parsers.values():
            parser.fin()
        self.correlator.close()
        return self.exchanges


def all_flags(exchange: Exchange) -> list[str]:
    """Every flag of an exchange, de-duplicated in order, as sniffer/records.py merges them."""
    flags = list(exchange.flags)
    for part in (exchange.request, exchange.request_end, exchange.response, exchange.response_end):
        if part is not None:
            flags.extend(part.flags)
    return list(dict.fromkeys(flags))


def summary(exchange: Exchange) -> tuple:
    request, request_end, response, response_end = (
        exchange.request,
        exchange.request_end,
        exchange.response,
        exchange.response_end,
    )
    return (
        (request.ts_ns, request.method, request.target, request.http_version, request.headers),
        (request_end.body_bytes, request_end.body),
        (response.ts_ns, response.status, response.reason, response.headers),
        (response_end.body_bytes, response_end.body),
        all_flags(exchange),
    )


def post_exchange(request_parts: list[bytes], response_parts: list[bytes]) -> list[Exchange]:
    conversation = Conversation()
    for part in request_parts:
        conversation.client.feed(1 if part is request_parts[0] else 2, part)
    for part in response_parts:
        conversation.server.feed(3 if part is response_parts[0] else 4, part)
    return conversation.exchanges


POST_SUMMARY = (
    (1, "POST", "/items?id=7", "1.1", [(b"host", b"api"), (b"content-length", b"5")]),
    (5, b"hello"),
    (3, 201, "Created", [(b"transfer-encoding", b"chunked")]),
    (3, b"abc"),
    [],
)


def test_get_with_content_length_response_makes_one_exchange():
    conversation = Conversation()
    conversation.client.feed(1, GET)
    conversation.server.feed(2, OK)
    assert [summary(exchange) for exchange in conversation.exchanges] == [
        (
            (1, "GET", "/a", "1.1", [(b"host", b"api")]),
            (0, b""),
            (2, 200, "OK", [(b"content-length", b"2")]),
            (2, b"hi"),
            [],
        )
    ]


def test_post_with_chunked_answer_in_whole_segments_makes_one_exchange():
    assert [summary(exchange) for exchange in post_exchange([POST], [CREATED_CHUNKED])] == [POST_SUMMARY]


def test_common_methods_and_versions_are_shared_strings_and_others_are_kept():
    """Every GET carries the one shared "GET" (the detectors code a batch's methods by dict lookups, which find a
    shared str by its address), and a method nobody registered still comes through as sent."""
    conversation = Conversation()
    conversation.client.feed(1, GET + GET.replace(b"/a", b"/b") + b"BREW /pot HTTP/1.0\r\nHost: api\r\n\r\n")
    for ts in (2, 3, 4):
        conversation.server.feed(ts, OK)
    first, second, third = (exchange.request for exchange in conversation.exchanges)
    assert (first.method, first.http_version) == ("GET", "1.1")
    assert second.method is first.method and second.http_version is first.http_version
    assert (third.method, third.http_version) == ("BREW", "1.0")


@pytest.mark.parametrize("split_at", range(1, len(POST)))
def test_request_split_at_any_position_gives_the_same_exchange(split_at):
    exchanges = post_exchange([POST[:split_at], POST[split_at:]], [CREATED_CHUNKED])
    assert [summary(exchange) for exchange in exchanges] == [POST_SUMMARY]


@pytest.mark.parametrize("split_at", range(1, len(CREATED_CHUNKED)))
def test_response_split_at_any_position_gives_the_same_exchange(split_at):
    exchanges = post_exchange([POST], [CREATED_CHUNKED[:split_at], CREATED_CHUNKED[split_at:]])
    assert [summary(exchange) for exchange in exchanges] == [POST_SUMMARY]


def test_pipelined_requests_in_one_feed_are_answered_in_order():
    conversation = Conversation()
    conversation.client.feed(1, b"GET /1 HTTP/1.1\r\nHost: api\r\n\r\nGET /2 HTTP/1.1\r\nHost: api\r\n\r\n")
    conversation.server.feed(2, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none")
    conversation.server.feed(3, b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\ntwo")
    outcome = [
        (exchange.request.target, exchange.response.status, exchange.response_end.body, exchange.flags)
        for exchange in conversation.exchanges
    ]
    assert outcome == [("/1", 200, b"one", []), ("/2", 404, b"two", ["pipelined"])]


def test_chunked_response_with_extensions_and_trailers_counts_dechunked_bytes():
    conversation = Conversation()
    conversation.client.feed(1, GET + GET)
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n3;last\r\nabc\r\n0\r\nX-Checksum: 1234\r\nX-Other: y\r\n\r\n"
    )
    conversation.server.feed(2, chunked + OK)
    ends = [(exchange.response_end.body_bytes, exchange.response_end.body) for exchange in conversation.exchanges]
    assert ends == [(8, b"helloabc"), (2, b"hi")]


def test_close_delimited_response_is_not_emitted_before_fin():
    conversation = Conversation()
    conversation.client.feed(1, b"GET / HTTP/1.0\r\n\r\n")
    conversation.server.feed(2, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ")
    assert conversation.exchanges == []


def test_close_delimited_http10_response_ends_at_fin():
    conversation = Conversation()
    conversation.client.feed(1, b"GET / HTTP/1.0\r\n\r\n")
    conversation.server.feed(2, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ")
    conversation.server.feed(3, b"part two")
    conversation.server.fin()
    ends = [
        (exchange.response_end.body_bytes, exchange.response_end.body, all_flags(exchange))
        for exchange in conversation.exchanges
    ]
    assert ends == [(18, b"part one, part two", [])]


def test_head_response_with_content_length_has_no_body():
    conversation = Conversation()
    conversation.client.feed(1, b"HEAD /a HTTP/1.1\r\nHost: api\r\n\r\n" + GET)
    conversation.server.feed(2, b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n" + OK)
    outcome = [(exchange.request.method, exchange.response_end.body_bytes) for exchange in conversation.exchanges]
    assert outcome == [("HEAD", 0), ("GET", 2)]


def test_head_request_after_an_answered_request_gets_a_bodiless_response():
    # Keep-alive without pipelining: the HEAD is sent only after the first answer ended.
    conversation = Conversation()
    conversation.client.feed(1, GET)
    conversation.server.feed(2, OK)
    conversation.client.feed(3, b"HEAD /a HTTP/1.1\r\nHost: api\r\n\r\n")
    conversation.server.feed(4, b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")
    conversation.client.feed(5, GET)
    conversation.server.feed(6, OK)
    outcome = [(exchange.request.method, exchange.response_end.body_bytes) for exchange in conversation.exchanges]
    assert outcome == [("GET", 2), ("HEAD", 0), ("GET", 2)]


def test_websocket_upgrade_after_an_answered_request_switches_without_parse_errors():
    conversation = Conversation()
    conversation.client.feed(1, GET)
    conversation.server.feed(2, OK)
    conversation.client.feed(3, WEBSOCKET_UPGRADE)
    conversation.server.feed(4, SWITCHING + b"\x81\x02hi")
    conversation.close()
    outcome = [(exchange.request.target, exchange.response.status) for exchange in conversation.exchanges]
    assert (outcome, conversation.server.parse_errors) == ([("/a", 200), ("/ws", 101)], 0)


def test_100_continue_is_recorded_as_interim_before_the_final_response():
    conversation = Conversation()
    conversation.client.feed(1, b"POST /u HTTP/1.1\r\nHost: api\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    conversation.server.feed(2, b"HTTP/1.1 100 Continue\r\n\r\n")
    conversation.client.feed(3, b"data")
    conversation.server.feed(4, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    outcome = [
        (exchange.interim_statuses, exchange.response.status, exchange.response.ts_ns, exchange.request_end.body)
        for exchange in conversation.exchanges
    ]
    assert outcome == [([100], 200, 4, b"data")]


def test_204_and_304_responses_have_no_body():
    conversation = Conversation()
    conversation.client.feed(1, GET + GET + GET)
    conversation.server.feed(
        2,
        b"HTTP/1.1 204 No Content\r\n\r\n"
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz",
    )
    outcome = [(exchange.response.status, exchange.response_end.body_bytes) for exchange in conversation.exchanges]
    assert outcome == [(204, 0), (304, 0), (200, 1)]


def websocket_conversation() -> Conversation:
    conversation = Conversation()
    conversation.client.feed(1, WEBSOCKET_UPGRADE + b"\x81\x85\x00\x00\x00\x00hello")
    conversation.server.feed(2, SWITCHING + b"\x81\x02hi")
    conversation.client.feed(3, b"\x82\x83\x00\x00\x00\x00" + GET)
    conversation.server.feed(4, b"\x82\x03" + OK)
    conversation.close()
    return conversation


def test_websocket_upgrade_answered_101_is_one_exchange_flagged_upgrade():
    exchanges = websocket_conversation().exchanges
    assert [(exchange.response.status, all_flags(exchange)) for exchange in exchanges] == [(101, ["upgrade"])]


def test_bytes_after_101_are_ignored_without_parse_errors():
    conversation = websocket_conversation()
    assert (conversation.client.parse_errors, conversation.server.parse_errors) == (0, 0)


def test_bytes_after_101_are_counted_as_tunnel_bytes():
    conversation = websocket_conversation()
    client_frames = len(b"\x81\x85\x00\x00\x00\x00hello") + len(b"\x82\x83\x00\x00\x00\x00" + GET)
    server_frames = len(b"\x81\x02hi") + len(b"\x82\x03" + OK)
    assert (conversation.client.tunnel_bytes, conversation.server.tunnel_bytes) == (client_frames, server_frames)


def connect_conversation() -> Conversation:
    conversation = Conversation()
    conversation.client.feed(1, b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n")
    conversation.server.feed(2, b"HTTP/1.1 200 Connection established\r\n\r\n")
    conversation.client.feed(3, TLS_CLIENT_HELLO)
    conversation.server.feed(4, b"\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03")
    conversation.close()
    return conversation


def test_connect_answered_200_is_one_exchange_flagged_upgrade():
    exchanges = connect_conversation().exchanges
    outcome = [
        (exchange.request.method, exchange.response.status, exchange.response_end.body_bytes, all_flags(exchange))
        for exchange in exchanges
    ]
    assert outcome == [("CONNECT", 200, 0, ["upgrade"])]


def test_tls_after_connect_is_ignored_without_parse_errors():
    conversation = connect_conversation()
    assert (conversation.client.parse_errors, conversation.server.parse_errors) == (0, 0)


def test_refused_upgrade_lets_the_next_request_parse():
    conversation = Conversation()
    conversation.client.feed(1, WEBSOCKET_UPGRADE)
    conversation.client.feed(5, GET)
    conversation.server.feed(7, b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n" + OK)
    outcome = [(exchange.request.target, exchange.response.status) for exchange in conversation.exchanges]
    assert outcome == [("/ws", 426), ("/a", 200)]


def test_request_held_during_refused_upgrade_keeps_its_packet_time():
    conversation = Conversation()
    conversation.client.feed(1, WEBSOCKET_UPGRADE)
    conversation.client.feed(5, GET)
    conversation.server.feed(7, b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n" + OK)
    assert [exchange.request.ts_ns for exchange in conversation.exchanges] == [1, 5]


def gap_in_body_conversation() -> Conversation:
    conversation = Conversation()
    conversation.client.feed(1, GET + GET)
    conversation.server.feed(2, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    conversation.server.gap(4)
    conversation.server.feed(3, b"hij" + OK)
    return conversation


def test_gap_inside_content_length_body_is_skipped_and_flagged():
    first = gap_in_body_conversation().exchanges[0]
    assert (first.response_end.body_bytes, all_flags(first)) == (10, ["gap"])


def test_message_after_gap_in_body_parses_normally():
    second = gap_in_body_conversation().exchanges[1]
    assert (second.response.status, second.response_end.body, second.response.flags) == (200, b"hi", [])


def test_gap_filling_the_rest_of_a_body_ends_the_message():
    conversation = Conversation()
    conversation.client.feed(1, GET + GET)
    conversation.server.feed(2, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    conversation.server.gap(7)
    conversation.server.feed(3, OK)
    outcome = [(exchange.response_end.body_bytes, all_flags(exchange)) for exchange in conversation.exchanges]
    assert outcome == [(10, ["gap"]), (2, ["pipelined"])]


def gap_in_headers_conversation() -> Conversation:
    conversation = Conversation()
    conversation.client.feed(1, GET + GET)
    conversation.server.feed(2, b"HTTP/1.1 404 Not Found\r\nContent-Ty")
    conversation.server.gap(30)
    conversation.server.feed(3, b"ength: 4\r\n\r\nnope")
    conversation.server.feed(4, OK)
    return conversation


def test_gap_inside_response_headers_reports_the_status_line_flagged_gap():
    first = gap_in_headers_conversation().exchanges[0]
    assert (first.response.status, first.response.reason, first.response.flags) == (404, "Not Found", ["gap"])


def test_response_after_gap_in_headers_is_found_again():
    second = gap_in_headers_conversation().exchanges[1]
    assert (second.response.status, second.response_end.body, second.response.flags) == (200, b"hi", ["resync"])


@pytest.mark.parametrize(
    ("malformed", "method", "target"),
    [
        (b"GET / HTTP/1.\r\n\r\n", "GET", "/"),
        (b"GET /x HTTP/1.1\r\nHost: api\r\nBad Header Line\r\n\r\n", "GET", "/x"),
        (b"OPTIONS HTTP/1.1\r\nHost: api\r\n\r\n", "OPTIONS", ""),
    ],
)
def test_malformed_request_is_counted_and_reported_flagged_parse_error(malformed, method, target):
    conversation = Conversation()
    conversation.client.feed(1, malformed + GET)
    conversation.server.feed(2, OK + OK)
    first = conversation.exchanges[0]
    outcome = (conversation.client.parse_errors, first.request.method, first.request.target, all_flags(first))
    assert outcome == (1, method, target, ["parse_error"])


@pytest.mark.parametrize(
    "malformed", [b"GET / HTTP/1.\r\n\r\n", b"GET /x HTTP/1.1\r\nHost: api\r\nBad Header Line\r\n\r\n"]
)
def test_parsing_resumes_at_the_request_after_a_malformed_one(malformed):
    conversation = Conversation()
    conversation.client.feed(1, malformed + GET)
    conversation.server.feed(2, OK + OK)
    second = conversation.exchanges[1]
    assert (second.request.target, second.response.status, second.request.flags) == ("/a", 200, ["resync"])


def test_http11_request_without_host_is_accepted_flagged_no_host():
    conversation = Conversation()
    conversation.client.feed(1, b"GET /internal HTTP/1.1\r\nAccept: */*\r\n\r\n")
    conversation.server.feed(2, OK)
    request = conversation.exchanges[0].request
    outcome = (request.target, request.headers, request.flags, conversation.client.parse_errors)
    assert outcome == ("/internal", [(b"accept", b"*/*")], ["no_host"], 0)


def test_request_direction_starting_with_tls_gets_a_negative_verdict():
    conversation = Conversation()
    conversation.client.feed(1, TLS_CLIENT_HELLO)
    assert conversation.client_sink.verdicts == [False]


def test_request_direction_starting_with_a_request_line_gets_a_positive_verdict():
    conversation = Conversation()
    conversation.client.feed(1, GET)
    assert conversation.client_sink.verdicts == [True]


def test_verdict_waits_for_enough_bytes():
    conversation = Conversation()
    conversation.client.feed(1, b"GE")
    conversation.client.feed(2, b"T /a HTTP/1.1\r\nHost: api\r\n\r\n")
    assert conversation.client_sink.verdicts == [True]


def midstream_conversation() -> Conversation:
    conversation = Conversation(at_stream_start=False, client_role=ROLE_UNKNOWN, server_role=ROLE_UNKNOWN)
    conversation.client.feed(1, b"tail of a request body\r\n" + GET)
    conversation.server.feed(2, b"tail of a response body\r\n" + OK)
    return conversation


def test_midstream_start_finds_the_request_role_and_settles_the_other_direction():
    conversation = midstream_conversation()
    assert (conversation.client_sink.roles, conversation.server.role) == ([ROLE_REQUESTS], ROLE_RESPONSES)


def test_midstream_response_direction_seen_first_finds_its_own_role():
    conversation = Conversation(at_stream_start=False, client_role=ROLE_UNKNOWN, server_role=ROLE_UNKNOWN)
    conversation.server.feed(1, b"tail of a response body\r\n" + OK)
    assert conversation.server_sink.roles == [ROLE_RESPONSES]


def test_midstream_start_finds_the_first_request_and_response():
    exchanges = midstream_conversation().exchanges
    outcome = [(exchange.request.target, exchange.response.status, all_flags(exchange)) for exchange in exchanges]
    assert outcome == [("/a", 200, ["midstream"])]


def test_midstream_response_direction_learns_its_role_from_the_request_direction():
    conversation = Conversation(at_stream_start=False, client_role=ROLE_UNKNOWN, server_role=ROLE_UNKNOWN)
    conversation.server.feed(1, b"tail of a response body")
    conversation.client.feed(2, GET)
    assert conversation.server.role == ROLE_RESPONSES


def test_midstream_direction_without_http_gives_up_after_the_scan_bound():
    limits = ParserLimits(max_unconfirmed_scan_bytes=100)
    conversation = Conversation(limits=limits, at_stream_start=False, client_role=ROLE_UNKNOWN)
    conversation.client.feed(1, bytes(60))
    conversation.client.feed(2, bytes(60))
    assert conversation.client_sink.verdicts == [False]


def test_gzip_body_is_kept_compressed_up_to_the_keep_bound():
    compressed = gzip.compress(random.Random(7).randbytes(4000), mtime=0)
    conversation = Conversation(limits=ParserLimits(max_body_keep_bytes=1000))
    conversation.client.feed(1, GET)
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(compressed)
    conversation.server.feed(2, head + compressed)
    end = conversation.exchanges[0].response_end
    assert (end.body_bytes, end.body) == (len(compressed), compressed[:1000])


def test_gzip_body_under_the_keep_bound_is_kept_whole():
    compressed = gzip.compress(b'{"items": []}' * 20, mtime=0)
    conversation = Conversation()
    conversation.client.feed(1, GET)
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(compressed)
    conversation.server.feed(2, head + compressed)
    assert conversation.exchanges[0].response_end.body == compressed


def test_fin_inside_request_body_flags_the_request_truncated():
    conversation = Conversation()
    conversation.client.feed(1, b"POST /u HTTP/1.1\r\nHost: api\r\nContent-Length: 10\r\n\r\nabc")
    conversation.client.fin()
    conversation.server.feed(2, OK)
    end = conversation.exchanges[0].request_end
    assert (end.body_bytes, end.flags) == (3, ["truncated"])


def test_fin_inside_response_body_flags_truncated_not_parse_error():
    conversation = Conversation()
    conversation.client.feed(1, GET)
    conversation.server.feed(2, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    conversation.server.fin()
    assert (conversation.exchanges[0].response_end.flags, conversation.server.parse_errors) == (["truncated"], 0)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("length", [b"1234567890123456789", b"9" * 19, b"9" * 20])
def test_a_content_length_past_any_count_is_read_and_its_body_counted(strict: bool, length: bytes):
    """h11 takes a Content-Length of up to 20 digits, past what 64 bits hold; the parser counts such a body down
    from MAX_CONTENT_LENGTH (a C integer when compiled) and reports what came, as for any unfinished body."""
    conversation = Conversation(ParserLimits(strict=strict))
    conversation.client.feed(1, GET)
    conversation.server.feed(2, b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n\r\nabc")
    conversation.server.feed(3, b"defg")
    conversation.server.gap(1000)
    conversation.server.feed(4, b"hij")
    conversation.server.fin()
    end = conversation.exchanges[0].response_end
    assert (end.body_bytes, end.body, conversation.server.parse_errors) == (1010, b"abcdefg", 0)
    assert end.flags == ["gap", "truncated"]


def test_requests_without_host_read_again_from_remembered_heads_stay_the_same():
    """The fast reader remembers heads; the empty Host put in for h11 is taken out of a copy, never the shared
    list, so the same head read a second (and third) time gives the same request."""
    conversation = Conversation()
    conversation.client.feed(1, b"GET /internal HTTP/1.1\r\nAccept: */*\r\n\r\n" * 3)
    conversation.server.feed(2, OK * 3)
    heads = [exchange.request for exchange in conversation.exchanges]
    assert [(head.target, head.headers, head.flags) for head in heads] == [
        ("/internal", [(b"accept", b"*/*")], ["no_host"])] * 3  # fmt: skip
    assert conversation.client.parse_errors == 0


# A keep-alive conversation with every way a message can sit in a segment: whole, split, several in one segment
# (pipelined), a body of known length after a head-only segment, chunked, an interim answer glued to the final
# one, bodiless answers, and an Upgrade request refused with a body and a request behind it.
CLIENT_STREAM = (
    GET + POST + b"GET /b HTTP/1.1\r\nHost: api\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"
    + b"HEAD /c HTTP/1.1\r\nHost: api\r\n\r\n" + b"POST /d HTTP/1.1\r\nHost: api\r\nContent-Length: 0\r\n\r\n"
    + b"POST /e HTTP/1.1\r\nHost: api\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nxy" + GET
)  # fmt: skip
SERVER_STREAM = (
    OK + CREATED_CHUNKED + b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"
    + b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" + b"HTTP/1.1 204 No Content\r\n\r\n"
    + b"HTTP/1.1 400 Bad Request\r\nContent-Length: 1\r\n\r\nx" + b"HTTP/1.1 304 Not Modified\r\n\r\n"
)  # fmt: skip


def segmented(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({cut % (len(stream) + 1) for cut in cuts}), len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def converse(limits: ParserLimits, client_parts: list[bytes], server_parts: list[bytes]) -> list[tuple]:
    """Feeds the client's segments, then the server's, one ts each; the exchanges as `summary` gives them."""
    conversation = Conversation(limits)
    ts = 0
    for part in client_parts:
        ts += 1
        conversation.client.feed(ts, part)
    for part in server_parts:
        ts += 1
        conversation.server.feed(ts, part)
    return [view(exchange) for exchange in conversation.close()]


def view(exchange: Exchange) -> tuple:
    """Everything of an exchange the transaction records read, None for the parts it lacks."""
    request, request_end, response, response_end = (
        exchange.request, exchange.request_end, exchange.response, exchange.response_end,
    )  # fmt: skip
    return (
        None if request is None else (request.ts_ns, request.method, request.target, list(request.headers)),
        None if request_end is None else (request_end.body_bytes, request_end.body),
        None if response is None else (response.ts_ns, response.status, list(response.headers)),
        None if response_end is None else (response_end.body_bytes, response_end.body),
        all_flags(exchange),
        exchange.interim_statuses,
    )


def message_bounds(*messages: bytes) -> list[int]:
    """Where each message starts and ends in their concatenation, and a few bytes either side of its head's end."""
    bounds, at = [], 0
    for message in messages:
        head_end = at + message.find(b"\r\n\r\n") + 4
        bounds += [at, head_end - 1, head_end, head_end + 1, at + len(message)]
        at += len(message)
    return bounds


CLIENT_BOUNDS = message_bounds(*(m + b"\r\n\r\n" for m in CLIENT_STREAM.split(b"\r\n\r\n")[:-1]))
SERVER_BOUNDS = message_bounds(*(m + b"\r\n\r\n" for m in SERVER_STREAM.split(b"\r\n\r\n")[:-1]))


def cuts(bounds: list[int]):
    """Cut positions: mostly at and around message boundaries, where the fast path starts, some anywhere."""
    return st.lists(st.one_of(st.sampled_from(bounds), st.integers(0, 10_000)), max_size=14)


@settings(max_examples=300, deadline=None)
@given(cuts(CLIENT_BOUNDS), cuts(SERVER_BOUNDS))
def test_segments_read_straight_from_the_wire_give_what_h11_gives(client_cuts, server_cuts):
    """The fast path (a message start read from the segment itself, parsers.http1._feed_start) against h11's
    readers throughout (strict), whatever the segmentation."""
    client_parts, server_parts = segmented(CLIENT_STREAM, client_cuts), segmented(SERVER_STREAM, server_cuts)
    fast = converse(ParserLimits(), client_parts, server_parts)
    assert fast == converse(ParserLimits(strict=True), client_parts, server_parts)
    assert [exchange[0][2] for exchange in fast] == ["/a", "/items?id=7", "/b", "/c", "/d", "/e", "/a"]
