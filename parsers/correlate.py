"""Pairs the requests of one connection with its responses, in order, as HTTP/1.x requires.

Responses answer requests first-in first-out, pipelined or not. The correlator is the MessageSink of both
direction parsers of a flow; it hands out completed Exchanges in request order. When the response stream lost
its place (a gap swallowed one or more responses), the first response found again answers the newest request sent
before it, and the older unanswered requests are closed as `no_response` with `gap`: in keep-alive traffic a
client only sends the next request after the previous answer, so that is the pairing that keeps the rest right.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from parsers.messages import ROLE_REQUESTS, MessageEnd, MessageHead

# Each common method as bytes, for the response parser's framing (a HEAD's answer has no body, a CONNECT's opens a
# tunnel): encoding the request's method for every response was a method call by name, some 590 instructions a
# response when compiled.
_METHOD_BYTES = {
    method: method.encode()
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE")
}


@dataclass(init=False)
class Exchange:
    """A request and its answer as they are assembled; either side may be missing at the end.

    Compiled, an extension type (parsers/correlate.pxd) whose heads and ends are typed; not `slots=True`, which
    Cython's dataclasses do not take. Its `__init__` is written out, lists None for new empty ones: a Cython
    dataclass's own imports `dataclasses` again on every call for each `default_factory` field."""

    request: MessageHead | None
    request_end: MessageEnd | None
    response: MessageHead | None
    response_end: MessageEnd | None
    interim_statuses: list[int]
    flags: list[str]
    # Whether the request asks to leave HTTP (Upgrade, CONNECT), read once from its head, which an exchange keeps from
    # its start and nothing changes: both the response's parser and its head asked it of the head, some 370
    # instructions each time when compiled.
    switch_proposed: bool

    def __init__(
        self,
        request: MessageHead | None = None,
        request_end: MessageEnd | None = None,
        response: MessageHead | None = None,
        response_end: MessageEnd | None = None,
        interim_statuses: list[int] | None = None,
        flags: list[str] | None = None,
    ) -> None:
        self.request = request
        self.request_end = request_end
        self.response = response
        self.response_end = response_end
        self.interim_statuses = [] if interim_statuses is None else interim_statuses
        self.flags = [] if flags is None else flags
        self.switch_proposed = _proposes_switch(request)


def _proposes_switch(request: MessageHead | None) -> bool:
    """Whether a request asks to leave HTTP: Upgrade, or CONNECT. Compiled, a C call that reads the head as a C struct
    (parsers/correlate.pxd)."""
    return request is not None and (request.method == "CONNECT" or bool(request.header(b"upgrade")))


def _request_exchange(request: MessageHead) -> Exchange:
    """`Exchange(request)`, field by field: compiled, a C call that sets C struct fields, where calling the class
    matched its six parameters for every request (some 590 instructions, besides reading the switch proposal)."""
    exchange = Exchange.__new__(Exchange)
    exchange.request = request
    exchange.request_end = None
    exchange.response = None
    exchange.response_end = None
    exchange.interim_statuses = []
    exchange.flags = []
    exchange.switch_proposed = _proposes_switch(request)
    return exchange


class TransactionCorrelator:
    """Receives both directions' messages of one flow; calls `emit` with each Exchange once it is finished.

    `on_switch(switched)` tells the flow how the server answered a request that proposed Upgrade or CONNECT.
    """

    __slots__ = ("_emit", "_on_switch", "max_pending", "queue", "answering", "reading_request")

    def __init__(
        self,
        emit: Callable[[Exchange], None],
        on_switch: Callable[[bool], None],
        max_pending: int = 256,
    ) -> None:
        self._emit = emit
        self._on_switch = on_switch
        self.max_pending = max_pending
        self.queue: list[Exchange] = []  # short (pipelining depth); a deque's first block alone weighs 600 bytes
        self.answering: Exchange | None = None  # the exchange whose response is being read
        self.reading_request: Exchange | None = None

    # ---- MessageSink ----------------------------------------------------------------------------------------

    def on_head(self, role: int, head: MessageHead) -> None:
        queue = self.queue
        if role == ROLE_REQUESTS:
            exchange = _request_exchange(head)
            queue.append(exchange)
            self.reading_request = exchange
            if len(queue) > self.max_pending:
                self._close_oldest("no_response")
            return
        exchange = queue[0] if len(queue) == 1 else None  # compiled, a typed local: its fields are C reads
        if exchange is not None and exchange.response is None and exchange.request is not None:
            # Keep-alive's usual case: the one request waiting is answered, and none is queued behind it.
            exchange.response = head
            self.answering = exchange
        else:
            exchange = self._unanswered(head)
            exchange.response = head
            self.answering = exchange
            self._mark_pipelined_after(exchange)
        if exchange.switch_proposed:
            switched = head.status == 101 or (exchange.request.method == "CONNECT" and 200 <= head.status < 300)
            self._on_switch(switched)

    def _mark_pipelined_after(self, answered: Exchange) -> None:
        """Requests already queued behind the one now answered were sent before its answer began: pipelined."""
        behind = False
        for exchange in self.queue:
            if behind and exchange.request is not None and "pipelined" not in exchange.flags:
                exchange.flags.append("pipelined")
            behind = behind or exchange is answered

    def on_interim(self, head: MessageHead) -> None:
        """A 1xx before the final answer: noted on the request it answers; an interim answer alone is no exchange."""
        for exchange in self.queue:
            if exchange.response is None and exchange.request is not None:
                exchange.interim_statuses.append(head.status)
                return

    def on_end(self, role: int, end: MessageEnd) -> None:
        if role == ROLE_REQUESTS:
            if self.reading_request is not None:
                self.reading_request.request_end = end
                self.reading_request = None
        elif self.answering is not None:
            self.answering.response_end = end
            self.answering = None
        self._emit_ready()

    def response_context(self) -> tuple[bytes, bool]:
        methods = _METHOD_BYTES  # a typed local when compiled: its get is a C call
        for exchange in self.queue:
            if exchange.response is None and exchange.request is not None:
                method = exchange.request.method
                encoded = methods.get(method)
                return (method.encode("latin-1") if encoded is None else encoded), exchange.switch_proposed
        return b"GET", False

    # ---- pairing --------------------------------------------------------------------------------------------

    def _unanswered(self, response: MessageHead) -> Exchange:
        """The exchange a response answers: the oldest unanswered one, or a new orphan exchange."""
        waiting = [exchange for exchange in self.queue if exchange.response is None and exchange.request is not None]
        if response.after_loss and len(waiting) > 1:
            # Responses were lost: answer the newest request sent before this response; older ones got none.
            sent_before = [exchange for exchange in waiting if exchange.request.ts_ns <= response.ts_ns]
            answered = sent_before[-1] if sent_before else waiting[0]
            for exchange in waiting:
                if exchange is answered:
                    break
                exchange.flags.extend(("no_response", "gap"))
            return answered
        if waiting:
            return waiting[0]
        orphan = Exchange(flags=["no_request"])
        self.queue.append(orphan)
        return orphan

    def _emit_ready(self) -> None:
        queue = self.queue
        while queue:
            first = queue[0]
            if "no_response" in first.flags:
                if first.request_end is None:
                    return
            elif (
                first.response_end is None
                or first.response is None
                or (first.request is not None and first.request_end is None)
            ):  # not complete
                return
            # Not queue.pop(0): compiled, a list's pop(0) is a method call by name (some 480 instructions an
            # exchange) unless the list fills more than half of what it allocated, which a queue of one does not.
            del queue[0]
            self._emit(first)

    def _close_oldest(self, flag: str) -> None:
        exchange = self.queue.pop(0)
        if exchange is self.reading_request:
            self.reading_request = None
        if exchange is self.answering:
            self.answering = None
        if exchange.response is None:
            exchange.flags.append(flag)
        self._emit(exchange)

    def close(self) -> None:
        """The flow ended: every exchange still open is emitted with flags saying what it lacks."""
        while self.queue:
            exchange = self.queue[0]
            if exchange.request is not None and exchange.request_end is None:
                exchange.flags.append("truncated")
            elif exchange.response is not None and exchange.response_end is None:
                exchange.flags.append("truncated")
            self._close_oldest("no_response")
