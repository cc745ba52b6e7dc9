"""The JSON key kernel: where it finds an object's keys, json.loads reads the very same, and where it finds an array,
json.loads reads one; plain documents are found."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from support.kernels import examples, python_body

from detectors.jsonkeys import FOUND, MAX_DEPTH, NOT_AN_OBJECT, UNSURE, object_keys

MAX_KEYS = 64
MAX_KEY_CHARS = 64


ARRAY = "an array"


def keys_both_ways(bodies: list[bytes], max_keys: int = MAX_KEYS) -> list[list[bytes] | str | None]:
    """Each body's keys as the kernel found them (ARRAY: NOT_AN_OBJECT, None: UNSURE), compiled and as plain
    Python, which must agree."""
    answers = []
    for kernel in (object_keys, python_body(object_keys)):
        lengths = np.array([len(body) for body in bodies], dtype=np.int64)
        starts = np.cumsum(lengths) - lengths
        buffer = np.frombuffer(b"".join(bodies) or b"\0", dtype=np.uint8)
        keys = np.zeros(max(1, int(lengths.sum())), dtype=np.uint8)
        key_ends = np.zeros(len(bodies), dtype=np.int64)
        results = np.zeros(len(bodies), dtype=np.int64)
        kernel(buffer, starts, lengths, max_keys, MAX_KEY_CHARS, keys, key_ends, results)
        found: list[list[bytes] | str | None] = []
        for index, result in enumerate(results.tolist()):
            assert result in (FOUND, NOT_AN_OBJECT, UNSURE)
            first = int(key_ends[index - 1]) if index else 0
            if result == FOUND:
                found.append(keys[first : key_ends[index]].tobytes().split(b"\0")[:-1])
            else:
                assert key_ends[index] == first  # nothing written
                found.append(ARRAY if result == NOT_AN_OBJECT else None)
        answers.append(found)
    assert answers[0] == answers[1]
    return answers[0]


def loads_keys(body: bytes) -> list[str] | None:
    """json.loads's top-level keys of an object body, or None where it fails or is no object."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return list(document) if isinstance(document, dict) else None


def agrees(body: bytes, found: list[bytes] | str | None) -> None:
    if found is None:
        return
    if found == ARRAY:
        assert isinstance(json.loads(body), list), body
        return
    expected = loads_keys(body)
    assert expected is not None, body
    assert set(expected) == {key.decode("ascii") for key in found}, body


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)  # fmt: skip
plain_keys = st.text(alphabet="abcxyz_-0123 $.", max_size=10)


@settings(max_examples=examples(400), deadline=None)
@given(st.dictionaries(plain_keys, json_values, max_size=8), st.booleans(), st.sampled_from([None, 0, 2]))
def test_plain_objects_are_found_with_the_keys_json_loads_reads(document, ascii_only, indent) -> None:
    body = json.dumps(document, ensure_ascii=ascii_only, indent=indent).encode()
    (found,) = keys_both_ways([body])
    agrees(body, found)
    if ascii_only:  # printable ASCII with escapes below the top level: always in the subset
        assert found is not None and sorted(found) == sorted(key.encode() for key in document)
        assert keys_both_ways([json.dumps(list(document.values()), indent=indent).encode()]) == [ARRAY]


@settings(max_examples=examples(600), deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6) | st.lists(json_values, max_size=6), st.data())
def test_whatever_the_kernel_finds_json_loads_reads_alike(document, data) -> None:
    """Mutated documents: bytes changed, cut, inserted. The kernel may leave any to json.loads, never disagree."""
    body = bytearray(json.dumps(document, ensure_ascii=data.draw(st.booleans())).encode())
    for _ in range(data.draw(st.integers(0, 3))):
        if not body:
            break
        where = data.draw(st.integers(0, len(body) - 1))
        change = data.draw(st.sampled_from(["set", "cut", "insert"]))
        byte = data.draw(st.sampled_from(list(b'{}[]",:\\ \t\n0-.eE+truefalsnNI\x00\x7f\xc3')))
        if change == "set":
            body[where] = byte
        elif change == "cut":
            del body[where:]
        else:
            body.insert(where, byte)
    (found,) = keys_both_ways([bytes(body)])
    agrees(bytes(body), found)


@settings(max_examples=examples(500), deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=6))
def test_random_bytes_in_a_batch_never_disagree_with_json_loads(bodies) -> None:
    for body, found in zip(bodies, keys_both_ways(bodies), strict=True):
        agrees(body, found)


def test_known_bodies() -> None:
    bodies = [b'{"a": 1, "b": [1, {"c": "\\u00e9"}], "d": -0.5e+3}', b"  {}  ", b'{"": null, "": true}',
              b'{"a\\u0062": 1}', b'{"a": NaN}', b'{"a": 1,}', b'[{"a": 1}]', b'{"a": 01}', b'{"a": 1} x',
              b'{"\xc3\xa9": 1}', b"{" * (MAX_DEPTH + 1), b'{"k": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}",
              b'{"a": "x\ty"}', b'{"a": 1.}']  # fmt: skip
    found = keys_both_ways(bodies)
    assert found[:3] == [[b"a", b"b", b"d"], [], [b"", b""]]
    assert found[3:11] == [None, None, None, ARRAY, None, None, None, None]  # escaped key, NaN, trailing comma,
    # an array (no key set), 01, extra data, UTF-8, too deep
    assert found[11] is None  # MAX_DEPTH arrays inside the object: one level too many
    assert found[12:] == [None, None]  # a raw tab in a string, "1."
    for body, keys in zip(bodies, found, strict=True):
        agrees(body, keys)


def test_integers_python_may_refuse_to_convert_are_left_to_json_loads() -> None:
    """json.loads fails on an integer of more digits than sys.get_int_max_str_digits() (4300 by default, at least
    640 where set); a float of as many digits converts."""
    long_integer = b'{"a": 1' + b"0" * 5000 + b"}"
    found = keys_both_ways([long_integer, b'{"a": 1' + b"0" * 5000 + b".5}", b'{"a": 1' + b"0" * 639 + b"}"])
    assert found == [None, [b"a"], [b"a"]]
    agrees(long_integer, found[0])


def test_too_many_or_too_long_keys_are_left_to_json_loads() -> None:
    many = json.dumps({f"k{n}": n for n in range(5)}).encode()
    long_key = json.dumps({"x" * (MAX_KEY_CHARS + 1): 1}).encode()
    assert keys_both_ways([many, long_key], max_keys=4) == [None, None]
    assert keys_both_ways([many], max_keys=5) == [[b"k0", b"k1", b"k2", b"k3", b"k4"]]
