"""The ids a request names: the values under an endpoint's placeholders, and their hashes for distinct counting.

Enumeration counts the distinct ids one client walks on one endpoint (`/users/42`, `/users/43`, ...). The ids
are the path segments at the template's placeholder positions, joined by "/". A batch's ids are hashed by one
numba kernel over the batch's paths as code points, instead of a split, a join, an encode and a crc per row;
`id_values` and `id_hash` are the plain reference the kernel is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sniffer.aot import kernel

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
SLASH = ord("/")
_MASK64 = (1 << 64) - 1

# Where an endpoint's templated segments are, per endpoint (a few thousand at most; forgotten all at once).
_POSITIONS_ENTRIES = 4096
_positions: dict[str, tuple[int, ...]] = {}


def placeholder_positions(endpoint: str) -> tuple[int, ...]:
    """The indices of the "/"-separated segments of `endpoint` that hold a placeholder ("{id}", "{uuid}"...)."""
    positions = _positions.get(endpoint)
    if positions is None:
        if len(_positions) >= _POSITIONS_ENTRIES:
            _positions.clear()
        segments = endpoint.split("/")
        positions = _positions[endpoint] = tuple(i for i, segment in enumerate(segments) if "{" in segment)
    return positions


def id_values(path: str, endpoint: str) -> str | None:
    """The concrete values at the templated positions of `endpoint` in `path` ("42" for /users/{id}), joined by
    "/"; None when the endpoint has no placeholder or the path is too short to reach one."""
    positions = placeholder_positions(endpoint)
    segments = path.split("/")
    values = [segments[position] for position in positions if position < len(segments)]
    return "/".join(values) if values else None


def id_hash(values: str) -> int:
    """64-bit FNV-1a over the code points of `values`: what `id_hashes` computes for a row."""
    digest = FNV_OFFSET
    for character in values:
        digest = ((digest ^ ord(character)) * FNV_PRIME) & _MASK64
    return digest


def batch_id_hashes(
    paths: Sequence[str], endpoints: Sequence[str], endpoint_codes: np.ndarray, path_lengths: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(whether each row names an id, each row's id hash) for rows of templated endpoints: row i's path is
    `paths[i]`, its endpoint `endpoints[endpoint_codes[i]]` (the batch's endpoints, coded once by the caller; any
    text works, surrogates included). `path_lengths`: the paths' lengths where the caller has them (the batch's
    columns do), which taking them here costs more than the hashing."""
    if not paths:
        return np.zeros(0, np.bool_), np.zeros(0, np.uint64)
    shapes = [placeholder_positions(endpoint) for endpoint in endpoints]
    position_ends = np.cumsum(np.fromiter(map(len, shapes), np.int64, len(shapes)))
    positions = np.fromiter((p for shape in shapes for p in shape), np.int64, int(position_ends[-1]))
    if path_lengths is None:
        path_lengths = np.fromiter(map(len, paths), np.int64, len(paths))
    path_ends = np.cumsum(path_lengths)
    chars = np.frombuffer("".join(paths).encode("utf-32-le", "surrogatepass"), np.uint32)
    present = np.zeros(len(paths), np.bool_)
    hashes = np.zeros(len(paths), np.uint64)
    id_hashes(chars, path_ends, endpoint_codes, positions, position_ends, present, hashes)
    return present, hashes


@kernel(
    "readonly u4[::1]", "i8[::1]", "i8[::1]", "i8[::1]", "i8[::1]", "b1[::1]", "u8[::1]",
)  # fmt: skip
def id_hashes(chars, path_ends, endpoint_codes, positions, position_ends, present, hashes):
    """For each path (the code points `chars` up to `path_ends[i]`, from the previous end): FNV-1a of the
    segments at its endpoint's placeholder positions (ascending, `positions` up to `position_ends[code]`), joined
    by "/"; `present[i]` says whether any such segment exists."""
    start = 0
    for i in range(len(path_ends)):
        end = path_ends[i]
        code = endpoint_codes[i]
        wanted = position_ends[code - 1] if code > 0 else 0
        last_wanted = position_ends[code]
        digest = np.uint64(FNV_OFFSET)
        segment = 0
        picked = False
        at = start
        while wanted < last_wanted:
            if positions[wanted] == segment:
                if picked:
                    digest = (digest ^ np.uint64(SLASH)) * np.uint64(FNV_PRIME)
                picked = True
                while at < end and chars[at] != SLASH:
                    digest = (digest ^ np.uint64(chars[at])) * np.uint64(FNV_PRIME)
                    at += 1
                wanted += 1
            else:
                while at < end and chars[at] != SLASH:
                    at += 1
            if at >= end:
                break
            at += 1  # the "/" that starts the next segment
            segment += 1
        present[i] = picked
        hashes[i] = digest
        start = end
