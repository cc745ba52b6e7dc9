"""What the HTTP/1.x direction parsers hand to the transaction correlator: message heads and message ends.

Header names are lower-case bytes, values raw bytes, exactly as h11 gives them; `header()` joins repeated fields
with ", " as RFC 9110 allows for list-valued fields.

Compiled (setup.py), MessageHead, MessageEnd and MessageSink are extension types (parsers/messages.pxd): the parser
builds a head and an end per message, and it, the correlator and the transaction builder read their fields as C
struct fields and call `header()` and the sink's methods as C functions. The two dataclasses are not
`slots=True`, which Cython's dataclasses do not take: in plain Python they have a `__dict__`. None of their fields
has a `default_factory`: a Cython dataclass's `__init__` imports `dataclasses` again, on every call, for each such
field (about 100 ns each), so MessageHead's `__init__` is written out and MessageEnd's flags are always given.
"""

from __future__ import annotations

from dataclasses import dataclass

from parsers.memo import SharedHeaders

ROLE_UNKNOWN = 0
ROLE_REQUESTS = 1  # this direction carries requests (client to server)
ROLE_RESPONSES = 2


@dataclass(init=False)
class MessageHead:
    """The start line and headers of one request or response, stamped with the packet time of its first byte."""

    ts_ns: int
    http_version: str
    headers: list[tuple[bytes, bytes]]
    method: str  # requests
    target: str  # requests, latin-1 so that every byte survives
    status: int  # responses
    reason: str
    flags: list[str]
    # Set when a gap or a mid-stream start came before this head: messages may have been lost in between.
    after_loss: bool
    _index: dict[bytes, bytes] | None

    def __init__(
        self,
        ts_ns: int,
        http_version: str,
        headers: list[tuple[bytes, bytes]],
        method: str = "",
        target: str = "",
        status: int = 0,
        reason: str = "",
        flags: list[str] | None = None,
        after_loss: bool = False,
        _index: dict[bytes, bytes] | None = None,
    ) -> None:
        """Written out (`init=False`), flags None for a new empty list: see the module's docstring."""
        self.ts_ns = ts_ns
        self.http_version = http_version
        self.headers = headers
        self.method = method
        self.target = target
        self.status = status
        self.reason = reason
        self.flags = [] if flags is None else flags
        self.after_loss = after_loss
        self._index = _index

    def header(self, name: bytes) -> bytes:
        """The field's value (repeated fields joined with ", "), b"" when absent; indexed on first use."""
        index = self._index
        if index is None:
            headers = self.headers
            # The fast head reader hands out one header list for every message with the same head: its index is
            # built once, and kept on the list (a typed local when compiled: a C struct field).
            shared = headers if type(headers) is SharedHeaders else None
            index = shared.field_index if shared is not None else None
            if index is None:
                index = dict(headers)  # in C; only a repeated name needs the loop that joins its values
                if len(index) != len(headers):
                    index = {}
                    for key, value in headers:
                        index[key] = index[key] + b", " + value if key in index else value
                if shared is not None:
                    shared.field_index = index
            self._index = index
        return index.get(name, b"")


@dataclass
class MessageEnd:
    """How a message ended: body size as on the wire (after de-chunking), a bounded copy of it, and flags (the
    head's list: the parser gives it)."""

    body_bytes: int
    body: bytes
    flags: list[str]


class MessageSink:
    """What a direction parser reports to: the transaction correlator's side of the parser interface (a flow's
    sniffer.flows._DirectionSink). A base class rather than a Protocol: compiled, the parser calls these methods
    as C functions, and a sink of another class (a test's) overrides them as a subclass."""

    __slots__ = ()

    def on_head(self, role: int, head: MessageHead) -> None:
        raise NotImplementedError

    def on_interim(self, head: MessageHead) -> None:
        raise NotImplementedError

    def on_end(self, role: int, end: MessageEnd) -> None:
        raise NotImplementedError

    def on_role(self, role: int) -> None:
        raise NotImplementedError

    def on_verdict(self, looks_like_http: bool) -> None:
        """The client's first bytes do (not) read like HTTP; called at most once per direction."""
        raise NotImplementedError

    def response_context(self) -> tuple[bytes, bool]:
        """(method of the request the next response answers, whether that request proposed Upgrade)."""
        raise NotImplementedError
