"""Bounded decoding of gzip and deflate bodies, so later analysis sees the payload and not its compression.

Only the kept prefix of a body is decoded, and the output is capped at `max_decoded_bytes`: a decompression bomb
costs at most that much memory. A body whose capture has a gap is not decoded.
"""

from __future__ import annotations

import zlib

GZIP_WBITS = 16 + zlib.MAX_WBITS
ZLIB_WBITS = zlib.MAX_WBITS
RAW_DEFLATE_WBITS = -zlib.MAX_WBITS


def decode_body(body: bytes, content_encoding: bytes, max_decoded_bytes: int) -> tuple[bytes, bool]:
    """Returns (decoded body, ok). Identity bodies come back as they are; unknown encodings are left alone."""
    encoding = content_encoding.strip().lower()
    if not encoding or encoding == b"identity" or not body:
        return body[:max_decoded_bytes], True
    if encoding in (b"gzip", b"x-gzip"):
        return _inflate(body, (GZIP_WBITS,), max_decoded_bytes)
    if encoding == b"deflate":
        # RFC 9110 says zlib-wrapped; some servers send raw deflate. Try both.
        return _inflate(body, (ZLIB_WBITS, RAW_DEFLATE_WBITS), max_decoded_bytes)
    return body[:max_decoded_bytes], False


def _inflate(body: bytes, wbits_options: tuple[int, ...], max_decoded_bytes: int) -> tuple[bytes, bool]:
    for wbits in wbits_options:
        try:
            decompressor = zlib.decompressobj(wbits)
            return decompressor.decompress(body, max_decoded_bytes), True
        except zlib.error:
            continue
    return b"", False
