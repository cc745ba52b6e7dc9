"""Content-based recognition of HTTP/1.x: is this the start of a request or a response?

apispy never decides by port. A direction is HTTP when its first bytes are a request line; a parser that lost its
place (mid-stream pickup, a gap, a malformed message) resynchronises at the next line that starts a message.
"""

from __future__ import annotations

import re

TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
# A request line with a version, at the start of the buffer or of a line.
REQUEST_START = re.compile(rb"(?:^|(?<=\n))[A-Za-z]" + TOKEN + rb"{0,31} [^ \r\n]+ HTTP/\d\.\d\r?\n")
RESPONSE_START = re.compile(rb"(?:^|(?<=\n))(?:HTTP|http)/\d\.\d \d{3}(?: |\r?\n)")
METHOD_LETTERS = re.compile(rb"[A-Za-z][A-Za-z_-]{0,31}")
HTTP09_REQUEST = re.compile(rb"([A-Za-z]+) ([^ \r\n]+)\r?\n")

# Bytes kept while searching for a message start: enough for a long request line split across segments.
SYNC_TAIL_BYTES = 8192


def looks_like_request_stream(first_bytes: bytes) -> bool | None:
    """True if these bytes read like the start of a request, False if not, None if too few bytes to tell.

    A request line that names an HTTP version reads as HTTP whatever its method bytes (malformed requests such
    as `OPTIONSHTTP/1.1` or a method in stray UTF-8 still get answers that count). Without a version, a method of
    letters, '_' and '-' (GET, M-SEARCH, CCM_POST) followed by a space or the end of the line is HTTP too
    (HTTP/0.9). TLS, SSH banners and other protocols fail.
    """
    line = first_bytes.split(b"\n", 1)[0]
    if b"HTTP/" in line:
        return True
    method = METHOD_LETTERS.match(first_bytes)
    if method is not None and first_bytes[method.end() : method.end() + 1] in (b" ", b"\r", b"\n"):
        return True
    if b"\n" in first_bytes or len(first_bytes) >= 40:
        return False
    if method is None and first_bytes:
        return False
    return None


def find_message_start(buffer: bytes, pattern: re.Pattern[bytes], start: int = 0) -> int:
    """Offset of the first message start in `buffer` at or after `start`, or -1."""
    match = pattern.search(buffer, start)
    return match.start() if match else -1


def message_starts_at_zero(buffer: bytes, pattern: re.Pattern[bytes]) -> int:
    """0 when `buffer` begins with a message start, else -1."""
    return 0 if pattern.match(buffer) else -1
