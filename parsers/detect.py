"""Content-based recognition of HTTP/1.x: is this the start of a request or a response?

apispy never decides by port. A direction is HTTP when its first bytes are a request line; a parser that lost its
place (mid-stream pickup, a gap, a malformed message) resynchronises at the next line that starts a message.
"""

from __future__ import annotations

import re

TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
# A request line with a version, at the start of the buffer or of a line.
REQUEST_START = re.compile(rb"(?:^|(?<=\n))[A-Za-z]" + TOKEN + rb"{0,31} [^ \r\n]+ HTTP/\d\.\d\r?\n")
RESPONSE_START = re.compile(rb"(?:^|(?<=\n))HTTP/\d\.\d \d{3}(?: |\r?\n)")
# What the first bytes of a client's stream must look like: a method token followed by a space.
METHOD_PREFIX = re.compile(TOKEN + rb"{1,32} ")
METHOD_PREFIX_INCOMPLETE = re.compile(TOKEN + rb"{0,31}$")
HTTP09_REQUEST = re.compile(rb"([A-Za-z]+) ([^ \r\n]+)\r?\n")

# Bytes kept while searching for a message start: enough for a long request line split across segments.
SYNC_TAIL_BYTES = 8192


def looks_like_request_stream(first_bytes: bytes) -> bool | None:
    """True if these bytes can start a request, False if they cannot, None if too few bytes to tell."""
    if METHOD_PREFIX.match(first_bytes) and first_bytes[:1].isalpha():
        return True
    if len(first_bytes) < 33 and METHOD_PREFIX_INCOMPLETE.match(first_bytes):
        return None
    return False


def find_message_start(buffer: bytes, pattern: re.Pattern[bytes], start: int = 0) -> int:
    """Offset of the first message start in `buffer` at or after `start`, or -1."""
    match = pattern.search(buffer, start)
    return match.start() if match else -1
