"""HTTP/1.x framing of one direction of a TCP stream, with h11 as the parser.

h11 parses: its receive buffer, its request/status-line and header readers (with their validation) and its
body readers (Content-Length, chunked, read-until-close). h11's Connection state machine is not used: it models
one endpoint of a conversation, while a passive observer sees both sides and must go on where an endpoint would
stop. So this module decides what the state machine would (which body framing applies, when a message ends,
Upgrade and CONNECT), and adds what a passive observer needs: pipelined requests parse without a server
answering them, resynchronisation after gaps, mid-stream starts and malformed messages, and skipping a gap
inside a body of known length. h11's readers are private API, so the version of h11 is pinned in pyproject.

The parser sees only `feed(ts_ns, bytes)`, `gap(nbytes)` and `fin()`, and reports through a MessageSink. States:
- MESSAGE: h11's readers are reading a message (or waiting for its first byte);
- SKIP: inside a Content-Length body after a gap; counting bytes without h11 until the body ends;
- SYNC: looking for the next line that starts a message (mid-stream pickup, after a gap or an error);
- WAIT_SWITCH: after a request that proposed Upgrade or CONNECT, until the response says whether it switched;
- TUNNEL: the connection switched protocols; bytes are counted and ignored;
- NOT_HTTP: this direction gave up: it never showed HTTP within the scan bound, or the flow was judged not HTTP.

Whether a flow is HTTP is judged by content: the client's first bytes must read like a request line (see
parsers.detect). A malformed but HTTP-like first request keeps the flow, so the server's answers still count;
TLS or SSH on port 80 is dropped after its first bytes. A mid-stream direction that never shows a message start
within `max_unconfirmed_scan_bytes` gives up too.
- CLOSED: the stream ended.
"""

from __future__ import annotations

from dataclasses import dataclass

import h11
from h11._readers import (
    ChunkedReader,
    ContentLengthReader,
    Http10Reader,
    maybe_read_from_IDLE_client,
    maybe_read_from_SEND_RESPONSE_server,
)
from h11._receivebuffer import ReceiveBuffer

from parsers import detect, lenient
from parsers.headparse import ACCEPTED, DEFER
from parsers.headread import COMMON_TOKENS, read_head
from parsers.messages import ROLE_REQUESTS, ROLE_RESPONSES, ROLE_UNKNOWN, MessageEnd, MessageHead, MessageSink

MESSAGE, SKIP, SYNC, WAIT_SWITCH, TUNNEL, NOT_HTTP, CLOSED = range(7)
FRAMING_NONE, FRAMING_LENGTH, FRAMING_CHUNKED, FRAMING_CLOSE = range(4)
MAX_CONTENT_LENGTH = 1 << 62  # bytes a Content-Length body is counted down from, at most (see _framing_from)


@dataclass(frozen=True, slots=True)
class ParserLimits:
    """Bounds on what one direction may hold: the header block, the kept body, the bytes held while switching."""

    max_header_bytes: int = 65536
    max_body_keep_bytes: int = 65536
    max_switch_buffer_bytes: int = 65536
    max_unconfirmed_scan_bytes: int = 262_144
    strict: bool = False  # h11 reads every head; else parsers.headparse does, handing h11 what it is unsure of


def _text(value: bytes) -> str:
    return value.decode("latin-1")


# The methods, versions and standard reason phrases nearly every message carries, each as one shared str: a str
# decoded per message would be a new object each time, kept by every transaction a batch holds for the detectors,
# and the detectors, which code a batch's methods through a dict, would hash and compare each one (a shared str is
# found by its address). Each entry is its key's latin-1 text, so one table serves all three. A fixed set, so no
# traffic can grow it. Its keys are the fast head reader's own token objects, which it hands out: found by address.
_COMMON_TEXTS = {token: token.decode("latin-1") for token in COMMON_TOKENS}


def _token_text(value: bytes) -> str:
    """A method, version or reason phrase as text: the shared str of a common one."""
    texts = _COMMON_TEXTS  # a typed local when compiled: its get is a C call
    text = texts.get(value)
    return text if text is not None else value.decode("latin-1")


def _head(
    ts_ns: int, http_version: str, headers: list[tuple[bytes, bytes]], method: str, target: str, status: int,
    reason: str, flags: list[str],
) -> MessageHead:  # fmt: skip
    """A head with the message's flags list, not after a loss, as `MessageHead(..., flags=flags)` makes it, field
    by field: compiled, a C call that sets C struct fields, where calling the class matched its ten parameters for
    every message (some 520 instructions)."""
    head = MessageHead.__new__(MessageHead)
    head.ts_ns = ts_ns
    head.http_version = http_version
    head.headers = headers
    head.method = method
    head.target = target
    head.status = status
    head.reason = reason
    head.flags = flags
    head.after_loss = False
    head._index = None
    return head


def _end(body_bytes: int, body: bytes, flags: list[str]) -> MessageEnd:
    """`MessageEnd(body_bytes, body, flags)`, field by field: compiled, a C call, as `_head` is (calling the class
    cost some 290 instructions a message)."""
    end = MessageEnd.__new__(MessageEnd)
    end.body_bytes = body_bytes
    end.body = body
    end.flags = flags
    return end


class Http1DirectionParser:
    """Parses one direction. `at_stream_start` says the first byte fed is the first byte of the stream."""

    # Slots: a capture may hold a few hundred thousand open connections, two parsers each.
    __slots__ = (
        "role", "sink", "limits", "state", "http_confirmed", "verdict_pending", "unconfirmed_scan_bytes",
        "sync_buffer", "switch_buffer", "pending_flags", "loss_possible", "parse_errors", "tunnel_bytes", "buffer",
        "head", "reader", "message_ts", "body_bytes", "body_keep", "body_kept", "body_incomplete", "body_remaining",
        "framing", "flags", "_switch_ts", "host_injected", "head_bytes", "proposed_switch", "response_method",
        "response_context_known", "strict", "max_body_keep_bytes",
    )  # fmt: skip

    def __init__(self, role: int, sink: MessageSink, limits: ParserLimits, at_stream_start: bool) -> None:
        self.role = role
        self.sink = sink
        self.limits = limits
        # The limits' `strict`, read for every segment: compiled, a C field of the parser (parsers/http1.pxd), where
        # the frozen dataclass's attribute is looked up by name.
        self.strict = limits.strict
        self.max_body_keep_bytes = limits.max_body_keep_bytes  # read for every piece of a body: a field too
        self.state = MESSAGE if at_stream_start and role != ROLE_UNKNOWN else SYNC
        self.http_confirmed = False
        self.verdict_pending = self.state == MESSAGE and role == ROLE_REQUESTS
        self.unconfirmed_scan_bytes = 0
        self.sync_buffer = b""
        self.switch_buffer = b""
        self.pending_flags: list[str] = [] if at_stream_start else ["midstream"]
        self.loss_possible = not at_stream_start
        self.parse_errors = 0
        self.tunnel_bytes = 0  # bytes after an Upgrade or CONNECT: counted, not parsed
        self._reset_message()
        self.buffer: ReceiveBuffer | None = None
        if self.state == MESSAGE:
            self._next_message(b"", 0)

    # ---- the parser interface -------------------------------------------------------------------------------

    def feed(self, ts_ns: int, data: bytes) -> None:
        if self.state == MESSAGE:
            self._feed_message(ts_ns, data)
        elif self.state == SKIP:
            self._feed_skip(ts_ns, data)
        elif self.state == SYNC:
            self._feed_sync(ts_ns, data)
        elif self.state == WAIT_SWITCH:
            if len(self.switch_buffer) + len(data) <= self.limits.max_switch_buffer_bytes:
                self.switch_buffer += data
            self._switch_ts = self._switch_ts or ts_ns
        elif self.state == TUNNEL:
            self.tunnel_bytes += len(data)

    def gap(self, nbytes: int) -> None:
        if self.state == MESSAGE and self.head is not None:
            if self.framing == FRAMING_LENGTH and nbytes < self.body_remaining:
                self.flags.append("gap")
                self.body_incomplete = True
                self.body_bytes += nbytes
                self.body_remaining -= nbytes
                self.state = SKIP
                return
            if self.framing == FRAMING_LENGTH and nbytes == self.body_remaining:
                self.flags.append("gap")
                self.body_incomplete = True
                self.body_bytes += nbytes
                self._finish_message(0)
                return
            if self.framing == FRAMING_CLOSE:
                self.flags.append("gap")
                self.body_incomplete = True
                self.body_bytes += nbytes
                return
            self.flags.append("gap")
            self._end_message()
        elif self.state == SKIP:
            if nbytes < self.body_remaining:
                self.body_bytes += nbytes
                self.body_remaining -= nbytes
                return
            self.body_bytes += self.body_remaining
            self._end_message()
        elif self.state in (TUNNEL, NOT_HTTP, CLOSED):
            return
        elif self.state == WAIT_SWITCH:
            self.switch_buffer = b""
            self.pending_flags.append("gap")
            return
        if not (self.state == MESSAGE and self.head_bytes and self._report_partial_head()):
            # Whole messages may have been inside the gap: the correlator must not pair blindly by order.
            self.loss_possible = True
        self._enter_sync()

    def fin(self) -> None:
        if self.state == MESSAGE:
            if self.head is None:
                # The stream ended between messages, or inside a head that will never complete; an HTTP/0.9
                # request is one line without headers, which h11 waits on forever: read it now.
                if self.role == ROLE_REQUESTS and self.head_bytes:
                    self._report_lenient_request(self.head_bytes)
            elif type(self.reader) is Http10Reader:
                self._end_message()
            else:
                self.flags.append("truncated")
                self._end_message()
        elif self.state == SKIP:
            self.flags.append("truncated")
            self._end_message()
        elif self.state == WAIT_SWITCH:
            self.tunnel_bytes += len(self.switch_buffer)
            self.switch_buffer = b""
        self.state = CLOSED
        self.buffer = None

    def resolve_switch(self, switched: bool) -> None:
        """Called when the response to an Upgrade/CONNECT request is known."""
        if self.state != WAIT_SWITCH:
            return
        if switched:
            self.state = TUNNEL
            self.tunnel_bytes += len(self.switch_buffer)
            self.switch_buffer = b""
            return
        buffered, self.switch_buffer = self.switch_buffer, b""
        buffered_ts = self._switch_ts
        self.state = MESSAGE
        self._next_message(buffered, buffered_ts)

    def give_up(self) -> None:
        """The flow is not HTTP: ignore everything from now on."""
        self.state = NOT_HTTP
        self.buffer = None
        self.sync_buffer = b""

    def set_role(self, role: int) -> None:
        """The other direction found its role mid-stream, which settles this one's."""
        if self.role == ROLE_UNKNOWN:
            self.role = role

    # ---- message state ---------------------------------------------------------------------------------------

    def _reset_message(self) -> None:
        self.head: MessageHead | None = None
        self.reader: ContentLengthReader | ChunkedReader | Http10Reader | None = None
        self.message_ts: int | None = None
        self.body_bytes = 0
        self.body_keep: list[bytes] | tuple = ()  # a list from the first kept piece: most messages keep none
        self.body_kept = 0
        self.body_incomplete = False
        self.body_remaining = 0
        self.framing = FRAMING_NONE
        self.flags: list[str] = []
        self._switch_ts = 0
        self.host_injected = False
        self.head_bytes = b""
        self.proposed_switch = False
        self.response_method = b"GET"
        self.response_context_known = False

    def _next_message(self, data: bytes, ts_ns: int) -> None:
        """Readies the next message in a fresh buffer, fed with bytes already received for it."""
        self._reset_message()
        if self.pending_flags:  # seldom (a gap, a resync): else neither the call nor a new list
            self.flags.extend(self.pending_flags)
            self.pending_flags = []
        self.buffer = None  # made at the first byte: an open connection may wait long for its next message
        if data:
            self._feed_message(ts_ns, data)

    def _feed_message(self, ts_ns: int, data: bytes) -> None:
        if (
            self.message_ts is None
            and self.head is None
            and not self.strict
            and (self.buffer is None or not self.buffer._data)
            and self._feed_start(ts_ns, data)
        ):
            return
        if (
            self.head is not None
            and self.framing == FRAMING_LENGTH
            and not self.verdict_pending
            and not self.strict
            and (self.buffer is None or not self.buffer._data)
        ):
            self._feed_body(ts_ns, data)
            return
        if self.message_ts is None:
            self.message_ts = ts_ns
        if self.verdict_pending:
            verdict = detect.looks_like_request_stream((self.head_bytes + data)[:40])
            if verdict is not None:
                self.verdict_pending = False
                self.sink.on_verdict(verdict)
                if self.state != MESSAGE:
                    return
        if self.role == ROLE_RESPONSES and not self.head_bytes and self.head is None:
            lowercase_version = data[:5] != b"HTTP/" and data[:5].upper() == b"HTTP/"
            if lowercase_version:
                # Some servers write `http/1.1 200 OK`; h11 insists on upper case. Read it, and say so.
                data = b"HTTP/" + data[5:]
                self.flags.append("lowercase_version")
        if self.head is None and len(self.head_bytes) <= self.limits.max_header_bytes:
            # h11 does not give back a head it rejected; this copy lets a lenient reading report it.
            self.head_bytes += data
        self._buffer_bytes(data)
        self._drain(ts_ns)

    def _drain(self, ts_ns: int) -> None:
        """Reads every event h11's readers can produce from the buffer."""
        buffer = self.buffer
        while self.state == MESSAGE:
            try:
                if self.head is None:
                    if not buffer._data:  # h11's buffer: its bytearray asked directly (no __bool__/__len__ calls)
                        return
                    is_request = self.role == ROLE_REQUESTS
                    if not is_request and not self.response_context_known:
                        # Ask which request this answers only at its first byte: that request is seen by now.
                        self.response_method, self.proposed_switch = self.sink.response_context()
                        self.response_context_known = True
                    outcome = DEFER if self.strict else None
                    if outcome is None:
                        outcome, fast = read_head(buffer._data, is_request)
                        if outcome == ACCEPTED:
                            buffer._extract(fast.head_length)
                            self._on_head(fast.headers, fast.http_version, fast.method, fast.target, fast.status,
                                          fast.reason, ts_ns)
                            continue
                    event = None
                    if outcome == DEFER:
                        if is_request:
                            event = maybe_read_from_IDLE_client(buffer)
                        else:
                            event = maybe_read_from_SEND_RESPONSE_server(buffer)
                    if event is None:
                        if len(buffer._data) > self.limits.max_header_bytes:
                            raise h11.RemoteProtocolError("message head larger than max_header_bytes")
                        return
                    if is_request:
                        self._on_head(list(event.headers), event.http_version, event.method, event.target, 0, b"",
                                      ts_ns)
                    else:
                        self._on_head(list(event.headers), event.http_version, b"", b"", event.status_code,
                                      event.reason, ts_ns)
                elif self.framing == FRAMING_LENGTH and not self.strict:
                    # A body of known length needs no reader: take what is there, without h11's event objects.
                    count = min(self.body_remaining, len(buffer._data))
                    if count:
                        self._on_body(buffer._extract(count))
                    if self.body_remaining:
                        return
                    self._finish_message(ts_ns)
                else:
                    event = self.reader(buffer)
                    if event is None:
                        return
                    if type(event) is h11.Data:
                        self._on_body(event.data)
                    else:
                        self._finish_message(ts_ns)
            except h11.ProtocolError as error:
                self._on_error(error, ts_ns)
                return

    def _feed_start(self, ts_ns: int, data: bytes) -> bool:
        """The first bytes of a message, with nothing buffered before them: the usual segment, which starts a
        message and often holds all of it. The head is read from `data` itself and a Content-Length body taken
        from it, without h11's receive buffer (its copies, and the head copy kept for a lenient reading, which an
        accepted head never needs); from there on, everything goes as `_drain` would have it. False, with nothing
        changed that the slow path would not change the same way, when the head is not one `read_head` accepts
        whole from these bytes (or a response's version is not upper case)."""
        is_request = self.role == ROLE_REQUESTS
        if self.verdict_pending:
            # The client's first bytes are judged first, as _feed_message judges them.
            verdict = detect.looks_like_request_stream(data[:40])
            if verdict is None:
                return False
            self.message_ts = ts_ns
            self.verdict_pending = False
            self.sink.on_verdict(verdict)
            if self.state != MESSAGE:
                return True
        # Compiled, the segment's bytes by a C pointer (http1.pxd): what follows the head, and a response's first five
        # bytes, copied out with one call each, where slicing made a slice object and its ints first.
        text, size = data, len(data)
        if not is_request:
            if size < 5 or text[:5] != b"HTTP/":
                return False
            if not self.response_context_known:
                self.response_method, self.proposed_switch = self.sink.response_context()
                self.response_context_known = True
        outcome, fast = read_head(data, is_request)
        if outcome != ACCEPTED:
            return False
        self.message_ts = ts_ns
        head_length = fast.head_length  # within the segment: read_head accepted a whole head from it
        rest = text[head_length:size]
        head = self._new_head(fast.headers, fast.http_version, fast.method, fast.target, fast.status, fast.reason)
        status = head.status
        # Interim and switching responses read what follows the head from the buffer (see _take_head).
        framing = None
        if is_request or (status >= 200 and not (self.response_method == b"CONNECT" and status < 300)):
            framing = self._framing_from(status, fast.chunked, fast.content_length)  # no header lookups
            if framing == FRAMING_LENGTH and self.body_remaining > 0:
                # The usual message needs no receive buffer (h11's, some 390 ns to make): none is made until
                # bytes are left over past the body (_feed_body).
                self._take_head(head, ts_ns, framing)
                if rest:
                    self._feed_body(ts_ns, rest)
                return True
        self._buffer_bytes(rest)
        self._take_head(head, ts_ns, framing)
        self._drain(ts_ns)
        return True

    def _feed_body(self, ts_ns: int, data: bytes) -> None:
        """More of a Content-Length body, with nothing buffered before it (a server often writes the head and the
        body apart): taken straight from the segment, as `_drain` would take it from the buffer."""
        remaining, size = self.body_remaining, len(data)  # compiled, C integers (http1.pxd)
        if size < remaining:
            self._on_body(data)
            return
        if size == remaining:  # the usual end of a body: the segment is all of it (no slices made)
            self._on_body(data)
            rest = b""
        else:
            self._on_body(data[:remaining])
            rest = data[remaining:]
        if rest:
            self._buffer_bytes(rest)
        self._finish_message(ts_ns)
        if rest:
            self._drain(ts_ns)

    def _buffer_bytes(self, data: bytes) -> None:
        """Appends `data` to h11's receive buffer, made at first use: a Content-Length message read from its
        segments never needs one."""
        if self.buffer is None:
            self.buffer = ReceiveBuffer()
        if data:
            self.buffer += data

    def _on_head(
        self,
        headers: list[tuple[bytes, bytes]],
        http_version: bytes,
        method: bytes,
        target: bytes,
        status: int,
        reason: bytes,
        ts_ns: int,
    ) -> None:
        """A head as h11 reads it (from h11's event or the fast reader): lower-case names, raw values."""
        self._take_head(self._new_head(headers, http_version, method, target, status, reason), ts_ns)

    def _new_head(
        self, headers: list[tuple[bytes, bytes]], http_version: bytes, method: bytes, target: bytes, status: int,
        reason: bytes,
    ) -> MessageHead:  # fmt: skip
        version = _token_text(http_version)
        if self.role == ROLE_REQUESTS:
            if self.host_injected:
                # The empty Host put in for h11 goes again (a new list: a remembered head's list is shared).
                headers = [header for header in headers if header != (b"host", b"")]
            return _head(self.message_ts, version, headers, _token_text(method), _text(target), 0, "", self.flags)
        return _head(self.message_ts, version, headers, "", "", status, _token_text(reason), self.flags)

    def _take_head(self, head: MessageHead, ts_ns: int, framing: int | None = None) -> None:
        """The message's head is read; `framing`, when given, is what `_framing(head)` gave (and set)."""
        self.http_confirmed = True
        if self.role == ROLE_RESPONSES and head.status < 200 and head.status != 101:
            head.flags = []  # the message's list is the final response's
            self.sink.on_interim(head)
            # The final response starts after the interim one: in the bytes still buffered, or the next fed.
            self.message_ts = ts_ns if self.buffer else None
            self.head_bytes = bytes(self.buffer)
            return
        # The head and the end share one flags list: what the head came with (midstream, resync) and what
        # happens to the message later (gap, truncated) are both the message's.
        head.flags = self.flags
        self.head = head
        self._announce(head)
        if self.role == ROLE_RESPONSES and (
            head.status == 101 or (self.response_method == b"CONNECT" and 200 <= head.status < 300)
        ):
            # Switching Protocols, or a tunnel: the rest of the stream is not HTTP.
            self.flags.append("upgrade")
            rest = bytes(self.buffer)
            self._end_message()
            self._enter_tunnel(rest)
            return
        if self.role == ROLE_REQUESTS:
            self.proposed_switch = head.method == "CONNECT" or bool(head.header(b"upgrade"))
        self.framing = self._framing(head) if framing is None else framing
        if self.framing == FRAMING_LENGTH and self.body_remaining > 0:
            if self.strict:  # else _drain counts the body down itself
                self.reader = ContentLengthReader(self.body_remaining)
        elif self.framing == FRAMING_CHUNKED:
            self.reader = ChunkedReader()
        elif self.framing == FRAMING_CLOSE:
            self.reader = Http10Reader()
        else:
            self._finish_message(ts_ns)

    def _framing(self, head: MessageHead) -> int:
        """`_framing_from` the head's Transfer-Encoding and Content-Length (h11 has validated both)."""
        length = head.header(b"content-length")
        chunked = b"chunked" in head.header(b"transfer-encoding").lower()
        return self._framing_from(head.status, chunked, int(length.split(b",")[0]) if length else -1)

    def _framing_from(self, status: int, chunked: bool, content_length: int) -> int:
        """The body framing of RFC 9112 section 6.3, as h11's state machine would choose it, from the facts the
        head gives (`content_length` -1 when absent); sets `body_remaining` for a Content-Length body."""
        if self.role == ROLE_RESPONSES and (self.response_method == b"HEAD" or status in (204, 304) or status < 200):
            return FRAMING_NONE
        if chunked:
            return FRAMING_CHUNKED
        if content_length >= 0:
            # At most MAX_CONTENT_LENGTH: h11 takes any number of digits, and the count is a C integer when compiled.
            # No capture holds a body that long, so the bound changes nothing a message reports.
            self.body_remaining = min(content_length, MAX_CONTENT_LENGTH)
            return FRAMING_LENGTH
        return FRAMING_CLOSE if self.role == ROLE_RESPONSES else FRAMING_NONE

    def _on_body(self, data: bytes) -> None:
        size = len(data)  # compiled, a C integer, as the sums it goes into (http1.pxd)
        self.body_bytes += size
        if self.framing == FRAMING_LENGTH:
            self.body_remaining -= size
        room = self.max_body_keep_bytes - self.body_kept
        if room > 0:
            piece = data if size <= room else data[:room]  # the slice would be `data` itself: not made
            if self.body_keep:
                self.body_keep.append(piece)
            else:
                self.body_keep = [piece]
            self.body_kept += len(piece)

    def _feed_skip(self, ts_ns: int, data: bytes) -> None:
        if len(data) < self.body_remaining:
            self.body_remaining -= len(data)
            self.body_bytes += len(data)
            return
        rest = data[self.body_remaining :]
        self.body_bytes += self.body_remaining
        self.body_remaining = 0
        self.state = MESSAGE
        self.buffer = ReceiveBuffer()
        self.buffer += rest
        self._finish_message(ts_ns)
        if self.state == MESSAGE:
            self._drain(ts_ns)

    def _finish_message(self, ts_ns: int) -> None:
        """The message ended; the next one starts with whatever the buffer still holds."""
        proposed_switch = self.proposed_switch and self.role == ROLE_REQUESTS
        rest = bytes(self.buffer._data) if self.buffer is not None and self.buffer._data else b""
        self._end_message()
        if proposed_switch:
            self.state = WAIT_SWITCH
            self.switch_buffer = rest
            self._switch_ts = ts_ns if rest else 0
            self.buffer = None
            return
        if self.pending_flags:  # seldom (a gap, a resync): else neither the call nor a new list
            self.flags.extend(self.pending_flags)
            self.pending_flags = []
        if rest:
            self.message_ts = ts_ns
            self.head_bytes = rest[: self.limits.max_header_bytes + 1]

    def _end_message(self) -> None:
        """Reports the end of the current message, if its head was seen, and forgets it."""
        if self.head is not None:
            body = b"".join(self.body_keep)
            flags = self.flags
            if self.body_incomplete and "gap" not in flags:
                flags.append("gap")
            self.sink.on_end(self.role, _end(self.body_bytes, body, flags))
        self._reset_message()

    def _on_error(self, error: h11.ProtocolError, ts_ns: int) -> None:
        """A malformed message: counted; what was parsed of it is reported; parsing resumes at the next start."""
        trailing = self.head_bytes if self.head is None else bytes(self.buffer)
        if self.head is None and self.role == ROLE_REQUESTS:
            if str(error) == "Missing mandatory Host: header" and not self.host_injected:
                # HTTP/1.1 without Host is common on internal APIs: parse it with an empty Host and say so.
                message_ts, flags = self.message_ts, self.flags
                self._reset_message()
                self.buffer = ReceiveBuffer()
                self.message_ts, self.host_injected, self.flags = message_ts, True, flags
                self.flags.append("no_host")
                self._feed_message(ts_ns, lenient.with_empty_host(trailing))
                return
            self.parse_errors += 1
            head_length = self._report_lenient_request(trailing)
            if head_length:
                self._enter_sync()
                self._feed_sync(ts_ns, trailing[head_length:])
                return
        else:
            self.parse_errors += 1
        if self.head is not None:
            self.flags.append("parse_error")
            self._end_message()
        self._enter_sync()
        # Skip the first byte so that the same broken start is not found again.
        self._feed_sync(ts_ns, trailing[1:])

    def _report_lenient_request(self, buffer: bytes) -> int:
        """Reports a request h11 refused, read leniently; returns the bytes its head spans (0 if unreadable)."""
        lenient_head = lenient.lenient_request_head(buffer, self.message_ts or 0)
        if lenient_head is None:
            return 0
        head, head_length = lenient_head
        head.flags = self.flags + head.flags
        self.http_confirmed = True
        self._announce(head)
        self.sink.on_end(self.role, MessageEnd(0, b"", head.flags))
        self._reset_message()
        return head_length

    def _report_partial_head(self) -> bool:
        """A gap cut a head: its start line, when captured, still makes a message worth reporting."""
        head = lenient.partial_head(self.role == ROLE_REQUESTS, self.head_bytes, self.message_ts)
        if head is None:
            return False
        head.flags = self.flags + head.flags
        self._announce(head)
        self.sink.on_end(self.role, MessageEnd(0, b"", head.flags))
        return True

    def _announce(self, head: MessageHead) -> None:
        """Hands a head to the sink, saying whether messages may have been lost since the previous one."""
        head.after_loss, self.loss_possible = self.loss_possible, False
        self.sink.on_head(self.role, head)

    def _enter_sync(self) -> None:
        self.state = SYNC
        self.buffer = None
        self.sync_buffer = b""
        self._reset_message()
        if "resync" not in self.pending_flags:
            self.pending_flags.append("resync")

    def _enter_tunnel(self, trailing: bytes) -> None:
        self.state = TUNNEL
        self.buffer = None
        self.tunnel_bytes += len(trailing)

    def _feed_sync(self, ts_ns: int, data: bytes) -> None:
        # A segment that begins with a message start is the strongest hint: senders start messages on segment
        # boundaries, while the bytes before it (a body tail) need not end with a line break.
        position, role = self._find_start(data, anchored=True)
        if position == 0:
            self.sync_buffer = b""
            buffer = data
        else:
            buffer = self.sync_buffer + data if self.sync_buffer else data
            position, role = self._find_start(buffer)
        if position < 0:
            self.sync_buffer = buffer[-detect.SYNC_TAIL_BYTES :]
            if not self.http_confirmed:
                self.unconfirmed_scan_bytes += len(data)
                if self.unconfirmed_scan_bytes > self.limits.max_unconfirmed_scan_bytes:
                    # Mid-stream on something that never looked like HTTP: stop spending time on it.
                    self.give_up()
                    self.sink.on_verdict(False)
            return
        self.sync_buffer = b""
        if self.role == ROLE_UNKNOWN:
            self.role = role
            self.sink.on_role(role)
        self.http_confirmed = True
        self.state = MESSAGE
        self._next_message(buffer[position:], ts_ns)

    def _find_start(self, buffer: bytes, anchored: bool = False) -> tuple[int, int]:
        """(offset, role) of the first message start in `buffer`, or (-1, role); `anchored` looks at 0 only."""
        find = detect.message_starts_at_zero if anchored else detect.find_message_start
        if self.role == ROLE_REQUESTS:
            return find(buffer, detect.REQUEST_START), ROLE_REQUESTS
        if self.role == ROLE_RESPONSES:
            return find(buffer, detect.RESPONSE_START), ROLE_RESPONSES
        request_at = find(buffer, detect.REQUEST_START)
        response_at = find(buffer, detect.RESPONSE_START)
        if response_at >= 0 and (request_at < 0 or response_at < request_at):
            return response_at, ROLE_RESPONSES
        return request_at, ROLE_REQUESTS
