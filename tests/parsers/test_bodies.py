import gzip
import random
import zlib

import pytest

from parsers.bodies import decode_body

PAYLOAD = b'{"users": [{"id": 1, "name": "alice"}, {"id": 2, "name": "bob"}]}' * 20
LIMIT = 1 << 20


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize("encoding", [b"gzip", b"x-gzip", b"GZIP", b" gzip "])
def test_gzip_body_is_decoded(encoding):
    assert decode_body(gzip.compress(PAYLOAD, mtime=0), encoding, LIMIT) == (PAYLOAD, True)


def test_zlib_wrapped_deflate_body_is_decoded():
    assert decode_body(zlib.compress(PAYLOAD), b"deflate", LIMIT) == (PAYLOAD, True)


def test_raw_deflate_body_is_decoded():
    assert decode_body(raw_deflate(PAYLOAD), b"deflate", LIMIT) == (PAYLOAD, True)


@pytest.mark.parametrize("encoding", [b"", b"identity", b"Identity"])
def test_identity_body_comes_back_unchanged(encoding):
    assert decode_body(PAYLOAD, encoding, LIMIT) == (PAYLOAD, True)


def test_identity_body_is_cut_at_the_cap():
    assert decode_body(PAYLOAD, b"", 10) == (PAYLOAD[:10], True)


@pytest.mark.parametrize("encoding", [b"br", b"zstd", b"gzip, br"])
def test_unknown_encoding_leaves_body_alone_and_not_ok(encoding):
    body = gzip.compress(PAYLOAD, mtime=0)
    assert decode_body(body, encoding, LIMIT) == (body, False)


def test_empty_body_with_an_encoding_is_ok_and_empty():
    assert decode_body(b"", b"gzip", LIMIT) == (b"", True)


@pytest.mark.parametrize("encoding", [b"gzip", b"deflate"])
def test_corrupt_compressed_body_is_not_ok(encoding):
    garbage = random.Random(3).randbytes(200)
    assert decode_body(garbage, encoding, LIMIT) == (b"", False)


def test_gzip_with_corrupt_stream_after_a_valid_header_is_not_ok():
    body = bytearray(gzip.compress(random.Random(5).randbytes(2000), mtime=0))
    body[20:60] = bytes(40)
    assert decode_body(bytes(body), b"gzip", LIMIT) == (b"", False)


def test_plain_text_labelled_gzip_is_not_ok():
    assert decode_body(PAYLOAD, b"gzip", LIMIT) == (b"", False)


def test_gzip_decompression_bomb_is_capped_at_max_decoded_bytes():
    bomb = gzip.compress(bytes(10 * 1024 * 1024), mtime=0)
    decoded, ok = decode_body(bomb, b"gzip", 4096)
    assert (len(decoded), ok) == (4096, True)


def test_deflate_decompression_bomb_is_capped_at_max_decoded_bytes():
    bomb = zlib.compress(bytes(10 * 1024 * 1024))
    assert decode_body(bomb, b"deflate", 4096) == (bytes(4096), True)


def test_kept_prefix_of_a_gzip_body_decodes_to_a_prefix_of_the_payload():
    body = gzip.compress(PAYLOAD, mtime=0)
    decoded, ok = decode_body(body[: len(body) // 2], b"gzip", LIMIT)
    assert (ok, PAYLOAD.startswith(decoded)) == (True, True)
