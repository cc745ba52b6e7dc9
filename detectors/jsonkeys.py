"""The top-level keys of JSON object bodies, read by a numba kernel instead of `json.loads` where it can be sure.

The payload baselines learn each JSON body's set of top-level keys. Decoding a whole document to read them costs
`json.loads` several microseconds per body, most of detection's time on an API whose bodies differ. The kernel
reads a strict subset of JSON: an object or an array of printable ASCII with JSON's whitespace, escapes only in
strings below the top level and in values, numbers and the literals true, false and null as JSON spells them, at
most MAX_DEPTH levels, top-level keys of at most `max_key_chars` characters and at most `max_keys` of them. A body
in that subset is a JSON document that `json.loads` reads alike, so its keys are taken from the kernel (an array
has none). Any other body (non-ASCII text, an escape in a top-level key, NaN, a syntax error...) is left to
`json.loads`, which decides: the kernel never rejects a body by itself, so it can only save time, never change a
key set.
"""

from __future__ import annotations

import numpy as np

from sniffer.aot import kernel

UNSURE = 0  # json.loads decides
FOUND = 1  # an object whose keys the kernel wrote
NOT_AN_OBJECT = 2  # an array: a JSON document, but no object, so it has no key set
MAX_DEPTH = 64
# Python refuses to convert integers of more digits than sys.get_int_max_str_digits() (4300 by default, 640 at
# the least where it is set): json.loads then fails. Longer integers are left to it.
MAX_INTEGER_DIGITS = 640

_SPACE, _TAB, _LF, _CR = 32, 9, 10, 13
_QUOTE, _BACKSLASH, _COMMA, _COLON, _MINUS, _PLUS, _DOT = 34, 92, 44, 58, 45, 43, 46
_OPEN_OBJECT, _CLOSE_OBJECT, _OPEN_ARRAY, _CLOSE_ARRAY = 123, 125, 91, 93
_ZERO, _NINE = 48, 57
_SIMPLE_ESCAPES = np.zeros(256, dtype=np.bool_)
for _escape in b'"\\/bfnrt':
    _SIMPLE_ESCAPES[_escape] = True
_HEX = np.zeros(256, dtype=np.bool_)
for _digit in b"0123456789abcdefABCDEF":
    _HEX[_digit] = True
_TRUE = np.frombuffer(b"true", np.uint8)
_FALSE = np.frombuffer(b"false", np.uint8)
_NULL = np.frombuffer(b"null", np.uint8)


# What the kernel expects next. _START: the document's first byte, "{" or "["; _OPENED: a key or value, or the
# bracket that closes the container just opened; _AFTER_KEY: the colon after a key.
_VALUE, _AFTER_VALUE, _KEY, _DONE, _FAIL, _START, _OPENED, _AFTER_KEY = 0, 1, 2, 3, 4, 5, 6, 7


@kernel()
def _escape_length(buffer, position, end):
    """The length of the escape at `position` (a backslash) in a string: 6 for "u" and four hex digits, 2 for
    the other escapes, 0 if it is none."""
    if position + 1 >= end:
        return 0
    escaped = buffer[position + 1]
    if escaped == 117:  # "u": four hex digits follow
        if position + 5 >= end:
            return 0
        for hex_position in range(position + 2, position + 6):
            if not _HEX[buffer[hex_position]]:
                return 0
        return 6
    return 2 if _SIMPLE_ESCAPES[escaped] else 0


@kernel()
def _literal_end(buffer, position, end, literal):
    if position + len(literal) > end:
        return -1
    for index in range(len(literal)):
        if buffer[position + index] != literal[index]:
            return -1
    return position + len(literal)


@kernel()
def _digits_end(buffer, position, end):
    """Where a run of one or more digits from `position` ends, or -1 if there is none (a fraction's or an exponent's
    digits: rare enough per body that a call costs nothing, unlike the per-token scans written out in the kernel)."""
    start = position
    while position < end and _ZERO <= buffer[position] <= _NINE:
        position += 1
    return position if position > start else -1


@kernel(
    "readonly u1[::1]", "i8[::1]", "i8[::1]", "i8", "i8", "u1[::1]", "i8[::1]", "i8[::1]"
)  # fmt: skip
def object_keys(buffer, starts, lengths, max_keys, max_key_chars, keys, key_ends, results):
    """For each body (buffer[starts[i]:starts[i] + lengths[i]], uint8): results[i] = FOUND where it is a JSON object
    in the subset (module docstring), its top-level keys then written to `keys` (uint8, at least as long as all the
    bodies together), each followed by a NUL byte, from key_ends[i - 1] (0 for the first) to key_ends[i];
    NOT_AN_OBJECT where it is an array in the subset; else UNSURE. Nothing is written but a FOUND body's keys.

    One loop over the bytes, a state machine with a stack of open containers; whitespace is skipped at the top of
    the loop, before every token. The scans of whitespace, strings and numbers are written out in the loop: a call
    per token to a helper costs several nanoseconds in numba, more than the token's bytes."""
    stack = np.empty(MAX_DEPTH, dtype=np.uint8)
    written = 0
    for body in range(len(starts)):
        results[body] = UNSURE
        first_key = written
        position = starts[body]
        end = position + lengths[body]
        state = _START
        opens_object = False
        depth = 0
        found = 0
        while state != _FAIL:
            while position < end:  # the only whitespace skip: every token starts here
                byte = buffer[position]
                if byte != _SPACE and byte != _LF and byte != _CR and byte != _TAB:
                    break
                position += 1
            if position >= end:
                state = _DONE if state == _AFTER_VALUE and depth == 0 else _FAIL
                break
            byte = buffer[position]
            if state == _START:
                if byte != _OPEN_OBJECT and byte != _OPEN_ARRAY:
                    state = _FAIL
                    break
                opens_object = byte == _OPEN_OBJECT
                state = _VALUE
            elif state == _AFTER_KEY:
                if byte != _COLON:
                    state = _FAIL
                    break
                position += 1
                state = _VALUE
                continue
            elif state == _OPENED:
                top = stack[depth - 1]
                if (byte == _CLOSE_OBJECT and top == _OPEN_OBJECT) or (byte == _CLOSE_ARRAY and top == _OPEN_ARRAY):
                    depth -= 1
                    position += 1
                    state = _AFTER_VALUE
                    continue
                state = _KEY if top == _OPEN_OBJECT else _VALUE
            if state == _AFTER_VALUE:
                if depth == 0:
                    state = _FAIL  # more than one document
                    break
                top = stack[depth - 1]
                if byte == _COMMA:
                    position += 1
                    state = _KEY if top == _OPEN_OBJECT else _VALUE
                elif (byte == _CLOSE_OBJECT and top == _OPEN_OBJECT) or (byte == _CLOSE_ARRAY and top == _OPEN_ARRAY):
                    depth -= 1
                    position += 1
                else:
                    state = _FAIL
                continue
            if byte == _QUOTE:  # a key, or a string value
                is_key = state == _KEY
                escapes = not is_key or depth > 1
                position += 1
                text_start = position
                closed = False
                while position < end:
                    byte = buffer[position]
                    if byte == _QUOTE:
                        closed = True
                        break
                    if byte < _SPACE or byte > 126:
                        break
                    if byte == _BACKSLASH:
                        step = _escape_length(buffer, position, end) if escapes else 0
                        if step == 0:
                            break
                        position += step
                    else:
                        position += 1
                if not closed:
                    state = _FAIL
                    break
                text_end = position
                position += 1
                if not is_key:
                    state = _AFTER_VALUE
                    continue
                if depth == 1:
                    found += 1
                    if found > max_keys or text_end - text_start > max_key_chars:
                        state = _FAIL
                        break
                    for index in range(text_start, text_end):
                        keys[written] = buffer[index]
                        written += 1
                    keys[written] = 0
                    written += 1
                state = _AFTER_KEY
                continue
            if state == _KEY:
                state = _FAIL
                break
            # A value that is not a string.
            if byte == _OPEN_OBJECT or byte == _OPEN_ARRAY:
                if depth == MAX_DEPTH:
                    state = _FAIL
                    break
                stack[depth] = byte
                depth += 1
                position += 1
                state = _OPENED
            elif byte == _MINUS or _ZERO <= byte <= _NINE:
                # -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
                if byte == _MINUS:
                    position += 1
                if position >= end or not _ZERO <= buffer[position] <= _NINE:
                    state = _FAIL
                    break
                integer_start = position
                if buffer[position] == _ZERO:
                    position += 1
                else:
                    while position < end and _ZERO <= buffer[position] <= _NINE:
                        position += 1
                if position - integer_start > MAX_INTEGER_DIGITS and (
                    position >= end or (buffer[position] != _DOT and buffer[position] != 101 and buffer[position] != 69)
                ):
                    state = _FAIL  # an integer Python may refuse to convert (sys.get_int_max_str_digits)
                    break
                if position < end and buffer[position] == _DOT:
                    position = _digits_end(buffer, position + 1, end)
                    if position < 0:
                        state = _FAIL
                        break
                if position < end and (buffer[position] == 101 or buffer[position] == 69):  # e, E
                    position += 1
                    if position < end and (buffer[position] == _PLUS or buffer[position] == _MINUS):
                        position += 1
                    position = _digits_end(buffer, position, end)
                    if position < 0:
                        state = _FAIL
                        break
                state = _AFTER_VALUE
            else:
                if byte == 116:
                    position = _literal_end(buffer, position, end, _TRUE)
                elif byte == 102:
                    position = _literal_end(buffer, position, end, _FALSE)
                elif byte == 110:
                    position = _literal_end(buffer, position, end, _NULL)
                else:
                    position = -1
                if position < 0:
                    state = _FAIL
                    break
                state = _AFTER_VALUE
        if state == _DONE:
            results[body] = FOUND if opens_object else NOT_AN_OBJECT
        else:
            written = first_key
        key_ends[body] = written
