"""A forgiving reading of request heads that h11 rejects, so that a malformed request is still reported.

Real traffic carries request lines h11 refuses: a missing target (`OPTIONS HTTP/1.1`), a cut version
(`GET / HTTP/1.`), HTTP/0.9 (`GET /path`), a missing Host header. Zeek and tshark still log such requests; so does
apispy, flagged `parse_error`. Only the head is read this way; the parser then resynchronises at the next message
start, so a body of unknown framing is never guessed at.
"""

from __future__ import annotations

import re

from parsers.messages import MessageHead

REQUEST_LINE = re.compile(rb"([A-Za-z][A-Za-z_-]*)(?: +([^ \r\n]*))?(?: +([^\r\n]*))?\r?\n")
VERSION = re.compile(rb"HTTP/(\d(?:\.\d?)?)")
HEADER_LINE = re.compile(rb"([^:\r\n]+):[ \t]*([^\r\n]*)\r?\n")
HTTP09_METHOD = re.compile(rb"[A-Z][A-Z_-]{2,15}")
HEAD_END = re.compile(rb"\r?\n\r?\n")


def lenient_request_head(buffer: bytes, ts_ns: int) -> tuple[MessageHead, int] | None:
    """(head, bytes it spans) for a buffer starting with a request-like line, or None if it is not one."""
    line = REQUEST_LINE.match(buffer)
    if line is None:
        return None
    method, target, version_text = line.group(1), line.group(2) or b"", line.group(3) or b""
    if not version_text and VERSION.fullmatch(target):
        target, version_text = b"", target
    version_match = VERSION.match(version_text)
    if version_text and version_match is None:
        return None
    version = version_match.group(1).decode() if version_match else "0.9"
    if version == "0.9" and not (HTTP09_METHOD.fullmatch(method) and target.startswith(b"/")):
        # Without a version only a plausible simple request counts: an upper-case method and an origin path.
        return None
    end = line.end()
    headers: list[tuple[bytes, bytes]] = []
    if version != "0.9":
        head_end = HEAD_END.search(buffer, line.end() - 2)
        if head_end is None:
            return None
        for header in HEADER_LINE.finditer(buffer, line.end(), head_end.start() + 2):
            headers.append((header.group(1).strip().lower(), header.group(2).strip()))
        end = head_end.end()
    head = MessageHead(
        ts_ns,
        version,
        headers,
        method=method.decode("latin-1"),
        target=target.decode("latin-1"),
        flags=["parse_error"],
    )
    return head, end


def with_empty_host(head_bytes: bytes) -> bytes:
    """The same head with an empty Host field after the request line, for h11's HTTP/1.1 Host requirement."""
    line_end = head_bytes.find(b"\n") + 1
    return head_bytes[:line_end] + b"Host: \r\n" + head_bytes[line_end:]


STATUS_LINE = re.compile(rb"HTTP/(\d\.\d) (\d{3})(?: ([^\r\n]*))?\r?\n")


def partial_head(is_request: bool, buffer: bytes, ts_ns: int) -> MessageHead | None:
    """The start line of a head whose rest was lost in a gap: enough to report the message, flagged `gap`."""
    if is_request:
        line = REQUEST_LINE.match(buffer)
        if line is None or line.group(2) is None:
            return None
        version = VERSION.match(line.group(3) or b"")
        return MessageHead(
            ts_ns,
            version.group(1).decode() if version else "",
            [],
            method=line.group(1).decode("latin-1"),
            target=line.group(2).decode("latin-1"),
            flags=["gap"],
        )
    line = STATUS_LINE.match(buffer)
    if line is None:
        return None
    return MessageHead(
        ts_ns,
        line.group(1).decode(),
        [],
        status=int(line.group(2)),
        reason=(line.group(3) or b"").decode("latin-1"),
        flags=["gap"],
    )
