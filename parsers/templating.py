"""Endpoint templating: map a concrete request path to the endpoint it belongs to.

Detectors aggregate per endpoint (rates, latencies, error ratios), so `/users/123` and `/users/456` must
land on one key, `/users/{id}`; otherwise every user becomes an endpoint and per-endpoint state grows with
traffic. Two mechanisms do this, one path segment at a time:

1. Shape rules on the percent-decoded segment; the placeholder replaces the whole segment.
   - `{id}`: an integer, optionally signed (`123`, `-7`, `007`). Compact dates such as `20240131` are ids
     too: 8-digit numeric ids are common, both are parameters, and calling an id a date misleads more.
   - `{uuid}`: a dashed UUID in any case.
   - `{hex}`: 16 or more hex digits, optionally after `0x` (all-digit strings are `{id}` first).
   - `{date}`: an ISO 8601 date `2024-01-31` with a plausible month and day, optionally with a `T` time and
     a zone (`2024-01-31T10:00:00Z`, colons possibly percent-encoded).
   - `{email}`: `local@domain.tld`; `%40` for the `@` works because the rules see the decoded segment.
   - `{token}`: a JWT, or a base64/base64url-like string of 20 or more characters that mixes letters and
     digits and has no word structure (see `_looks_like_token`). Tokens are often credentials (reset links,
     signed URLs), so recognising them keeps secrets out of endpoint names.
   An id, uuid, hex string or date followed by a short file extension keeps the extension (`123.json` ->
   `{id}.json`): the representation is part of the endpoint (`.json` and `.csv` are different code paths),
   the value is not.

2. Learning, for the literal segments the rules leave alone (names, slugs): for every prefix of
   already-templated segments, the distinct literals seen at the next position are counted. Once a prefix has
   seen `learn_min_distinct` distinct values, every literal at that position becomes `{param}` from then on,
   including in the path that crossed the threshold. A value counts once however often it recurs, so a static
   route word (`/api`, `/v1`) gains no weight by being popular. Two kinds of segment never learn: the first
   segment, because route roots are few while scanners probe hundreds of distinct roots (`/wp-admin`,
   `/.env`) that must not turn `/api` into `{param}`; and version words such as `v1` or `v2.1`. Learning
   cannot tell a flat API with `learn_min_distinct` resource collections under one prefix from a parameter;
   raise the threshold for such services.

Literal segments are returned exactly as on the wire, never decoded, so a `%2F` inside a segment cannot forge
an extra path level. The output depends only on the input order: no clock, no randomness, no hash order.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from parsers.memo import FifoMemo

PARAM = "{param}"

_PLACEHOLDERS = {
    "id": "{id}",
    "uuid": "{uuid}",
    "hex": "{hex}",
    "date": "{date}",
    "email": "{email}",
}

_TYPED_SEGMENT = re.compile(
    r"""
    (?P<id>[+-]?\d+)
    |(?P<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
    |(?P<hex>(?:0[xX])?[0-9a-fA-F]{16,})
    |(?P<date>\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])
        (?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)
    |(?P<email>[A-Za-z0-9.!#$%&'*+=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})
    """,
    re.VERBOSE,
)
_EXTENSION = re.compile(r"[A-Za-z][A-Za-z0-9]{0,4}")
_VERSION = re.compile(r"[vV]\d+(?:\.\d+)*")

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-+=.~/]{20,}")
_HAS_LETTER = re.compile(r"[A-Za-z]")
_HAS_DIGIT = re.compile(r"\d")
# A "piece" is what a human would read as one unit: a word (lower, Capitalised or UPPER) or a number.
_WORD_PIECE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_LETTER_DIGIT_BOUNDARY = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
# Tuned on random base64/base64url/alnum strings against generated kebab/snake/camel identifiers with numbers:
# 20-character random tokens are missed 1-4% of the time (learning still catches them), 32-character ones
# almost never, and no word-built identifier was taken for a token.
_TOKEN_MAX_MEAN_PIECE_LEN = 2.8
_TOKEN_MIN_LETTER_DIGIT_BOUNDARIES = 4

_MISSING = object()
# A whole segment of decimal digits (what str.isdecimal and \d accept): always `{id}`, whatever its position.
_ID_MASK = "\x00"


def _id_shape(path: str) -> str:
    """The path with every segment of decimal digits after a "/" replaced by _ID_MASK, as
    `re.sub(r"(?<=/)\\d+(?=/|\\Z)", _ID_MASK, path)` would give it: a split, a test per segment and a join cost
    a third of what the expression's search does, once per path not seen before."""
    segments = path.split("/")
    for position in range(1, len(segments)):
        if segments[position].isdecimal():
            segments[position] = _ID_MASK
    return "/".join(segments)


def _decimal_from(path: str, start: int) -> bool:
    """`path[start:].isdecimal()`, without making the slice (compiled, a C loop over the code points)."""
    if start >= len(path):
        return False
    for position in range(start, len(path)):
        character = path[position]
        if not character.isdecimal():
            return False
    return True


def _classify(segment: str) -> str | None:
    """The placeholder for a segment whose shape alone marks it as a value, or None for a literal."""
    if segment.isalpha() and len(segment) < 16:
        return None  # fast path for route words: no rule can match
    if segment.isdecimal():
        return "{id}"  # fast path for ids: what the rules give, \d being the decimal digits isdecimal accepts
    decoded = unquote(segment) if "%" in segment else segment
    placeholder = _typed_placeholder(decoded) or _placeholder_with_extension(segment)
    if placeholder is not None:
        return placeholder
    return "{token}" if _looks_like_token(decoded) else None


def _typed_placeholder(decoded: str) -> str | None:
    match = _TYPED_SEGMENT.fullmatch(decoded)
    return _PLACEHOLDERS[match.lastgroup] if match else None


def _placeholder_with_extension(segment: str) -> str | None:
    """`{id}.json` for `123.json`; None unless the stem is an id, uuid, hex string or date."""
    stem, dot, extension = segment.rpartition(".")
    if not dot or not _EXTENSION.fullmatch(extension):
        return None
    match = _TYPED_SEGMENT.fullmatch(unquote(stem) if "%" in stem else stem)
    if match is None or match.lastgroup == "email":
        return None
    return f"{_PLACEHOLDERS[match.lastgroup]}.{extension}"


def _looks_like_token(decoded: str) -> bool:
    """True for JWTs and for long random-looking strings that mix letters and digits.

    Randomness shows in two ways that words do not produce: the string splits into many short pieces
    (`aZ3kQ9` is six pieces, `getUser2` three), or letters and digits alternate often without separators.
    """
    if _JWT.fullmatch(decoded):
        return True
    if not _TOKEN_CHARS.fullmatch(decoded):
        return False
    if not _HAS_LETTER.search(decoded) or not _HAS_DIGIT.search(decoded):
        return False
    pieces = _WORD_PIECE.findall(decoded)
    mean_piece_len = sum(map(len, pieces)) / len(pieces)
    if mean_piece_len < _TOKEN_MAX_MEAN_PIECE_LEN:
        return True
    return len(_LETTER_DIGIT_BOUNDARY.findall(decoded)) >= _TOKEN_MIN_LETTER_DIGIT_BOUNDARIES


class EndpointTemplater:
    """Templates paths by shape rules, then learns which remaining literal positions are parameters.

    Memory bound: at most `max_tracked_prefixes` prefixes are tracked; each holds fewer than
    `learn_min_distinct` (<= `max_values_per_position`) literals until it learns, and only a marker after.
    Once the table is full, new prefixes are not learned: their literals pass through unchanged. Nothing is
    evicted, because forgetting a learned position would silently rename the endpoints of live traffic.
    The path -> template cache holds at most `cache_size` entries (oldest evicted first) and is emptied
    whenever a position learns: that is the only event that changes the template of a path already seen.
    """

    __slots__ = (
        "_cache", "_cache_size", "_endpoints", "_id_endpoints", "_learn_min_distinct", "_max_tracked_prefixes",
        "_parents", "_positions", "_shapes",
    )  # fmt: skip

    def __init__(
        self,
        learn_min_distinct: int = 20,
        max_tracked_prefixes: int = 10_000,
        max_values_per_position: int = 64,
        *,
        cache_size: int = 4096,
    ) -> None:
        if learn_min_distinct < 2:
            raise ValueError(f"learn_min_distinct must be >= 2, got {learn_min_distinct}")
        if max_values_per_position < learn_min_distinct:
            raise ValueError(
                f"max_values_per_position ({max_values_per_position}) must be >= learn_min_distinct "
                f"({learn_min_distinct}), or no position could ever learn"
            )
        if max_tracked_prefixes < 0 or cache_size < 0:
            raise ValueError("max_tracked_prefixes and cache_size must be >= 0")
        self._learn_min_distinct = learn_min_distinct
        self._max_tracked_prefixes = max_tracked_prefixes
        self._cache_size = cache_size
        # prefix of templated segments -> distinct literals seen at the next position; None once learned.
        self._positions: dict[tuple[str, ...], set[str] | None] = {}
        # First in, first out, by a ring of the keys (a plain dict's oldest entry is found by walking past every entry
        # deleted before it).
        self._cache = FifoMemo(cache_size)  # path -> endpoint
        # parent path ("/api/v1/users" of "/api/v1/users/42") -> its templated segments: paths that differ only in
        # their last segment (ids) template that segment alone. Exact: observing a literal again changes nothing,
        # and the table is emptied with the cache when a position learns.
        self._parents = FifoMemo(cache_size)  # str -> tuple[str, ...]
        # path with its decimal segments masked ("/orders/\x00/items") -> its endpoint: ids anywhere in the path,
        # not only last. Exact for the same reason, and emptied at the same time.
        self._shapes = FifoMemo(cache_size)  # str -> str
        # parent path -> the endpoint of its paths with an all-digit last segment ("/api/v1/users" ->
        # "/api/v1/users/{id}"): such a segment is `{id}` whatever came before, and the parent's literals, once
        # observed, change nothing when observed again. The usual API path (an id last) is then one lookup, where
        # the path cache missed for every new id and then held it, pushing out paths that recur. Emptied with the
        # other tables when a position learns.
        self._id_endpoints = FifoMemo(cache_size)  # str -> str
        # Each endpoint as one shared str, where the paths of one endpoint would each build their own: the
        # detectors code a batch's endpoints by dict lookups, which find a shared str by its address. Bounded by
        # cache_size (emptied when full).
        self._endpoints: dict[str, str] = {}

    def template(self, path: str) -> str:
        """The endpoint for `path` (no query string; any `?...` is dropped so query values never leak in).

        The leading "/" and a trailing "/" are kept; "" becomes "/"; a path without a leading "/" gets one,
        except the asterisk-form "*" of `OPTIONS *`, which is returned as is.
        """
        slash = path.rfind("/")
        id_last = slash > 0 and _decimal_from(path, slash + 1)  # the parent is not empty, the last segment digits
        parent = path[:slash] if id_last else ""
        cached = self._id_endpoints.get(parent) if id_last else self._cache.get(path)
        if cached is not None:
            return cached
        endpoint = self._template_uncached(path)
        if self._cache_size:
            shared = self._endpoints.get(endpoint)
            if shared is None:
                if len(self._endpoints) >= self._cache_size:
                    self._endpoints.clear()
                shared = self._endpoints[endpoint] = endpoint
            endpoint = shared
            if id_last:
                self._id_endpoints.put(parent, endpoint)
            else:
                self._cache.put(path, endpoint)
        return endpoint

    def _template_uncached(self, path: str) -> str:
        path = path.partition("?")[0]
        if path == "*":
            return path
        parent, _, last = path.rpartition("/")
        known = self._parents.get(parent) if parent else None
        if known is not None:
            templated = list(known)
            templated.append(self._template_segment(templated, len(known) - 1, last))
            return "/".join(templated) or "/"
        shape = None
        if self._cache_size and _ID_MASK not in path:
            shape = _id_shape(path)
            if shape == path:
                shape = None  # no id to mask: nothing to share with other paths
            else:
                endpoint = self._shapes.get(shape)
                if endpoint is not None:
                    return endpoint
        segments = path.split("/")
        if segments[0]:
            segments.insert(0, "")
        templated = [""]
        for position, segment in enumerate(segments[1:]):
            templated.append(self._template_segment(templated, position, segment))
        if parent and self._cache_size:
            self._parents.put(parent, tuple(templated[:-1]))
        endpoint = "/".join(templated) or "/"
        if shape is not None:
            self._shapes.put(shape, endpoint)
        return endpoint

    def _template_segment(self, templated: list[str], position: int, segment: str) -> str:
        placeholder = _classify(segment)
        if placeholder is not None:
            return placeholder
        if position == 0 or not segment or _VERSION.fullmatch(segment):
            return segment
        return PARAM if self._observe_literal(tuple(templated[1:]), segment) else segment

    def _observe_literal(self, prefix: tuple[str, ...], literal: str) -> bool:
        """Count `literal` under `prefix`; True if that position is (or just became) a parameter."""
        seen = self._positions.get(prefix, _MISSING)
        if seen is None:
            return True
        if seen is _MISSING:
            if len(self._positions) >= self._max_tracked_prefixes:
                return False
            seen = self._positions[prefix] = set()
        seen.add(literal)
        if len(seen) < self._learn_min_distinct:
            return False
        self._positions[prefix] = None
        self._cache.clear()
        self._parents.clear()
        self._shapes.clear()
        self._id_endpoints.clear()
        return True
