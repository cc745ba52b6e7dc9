"""A batch's bodies as the payload detectors read them, taken once, with the repeats among them marked.

The payload baselines and the data-exposure scan both read every body of a batch, cut at `max_scan_bytes`. An
API sends the same body again and again (a list page, a fixed answer, a health check, an error): what both find
in a body depends on its bytes alone (and, for JSON key sets, on its content type), so each body is marked with
the first of its run of identical bodies (`sources`), only those are copied into the batch's buffer, and the
detectors read each distinct body once.

A run is the consecutive bodies, in the batch's order, of one endpoint and direction that have the same content
type and the very same bytes. Finding them costs a comparison of each body with the one before it in its
endpoint (C's memcmp, which stops at the first difference), so bodies that differ cost next to nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress
from operator import eq, itemgetter
from typing import NamedTuple

import numpy as np
from numba import njit

from detectors.batchkeys import TransactionBatch, columns_of, endpoints_of


class BatchBodies(NamedTuple):
    """A batch of `count` transactions' bodies: index j < count is request j's body, count + j response j's."""

    bodies: list[bytes]  # cut at the limit
    kept: np.ndarray  # each body's length as the transaction keeps it (decoded), before the cut
    lengths: np.ndarray  # each body's length after the cut
    sources: np.ndarray  # each body's first body of its run of identical ones (itself if none came before)
    buffer: np.ndarray  # the first bodies of the runs (the distinct ones), cut, back to back (uint8)
    offsets: np.ndarray  # where each body's bytes start in `buffer` (its source's)

    def distinct(self) -> np.ndarray:
        """The indices of the first bodies of the runs, ascending."""
        return np.flatnonzero(self.sources == np.arange(len(self.sources)))


def bodies_of(transactions: Sequence, limit: int) -> BatchBodies:
    """The batch's BatchBodies, cut at `limit` bytes; remembered by a TransactionBatch (shared: do not change)."""
    remembered = getattr(transactions, "bodies", None)
    if remembered is not None and remembered[0] == limit:
        return remembered[1]
    count = len(transactions)
    columns = columns_of(transactions)
    bodies = columns.bodies
    kept = columns.body_lengths
    lengths = kept
    if count and kept.max() > limit:
        bodies = [body[:limit] for body in bodies]
        lengths = np.minimum(kept, limit)
    endpoints, endpoint_codes = endpoints_of(transactions)
    groups = np.concatenate((endpoint_codes, endpoint_codes + len(endpoints)))
    # Content types by identity: the transaction builder shares one str per content type, and equal ones that
    # are apart only make shorter runs.
    types = columns.content_type_ids
    sources = repeat_sources(bodies, groups, types)
    firsts = sources == np.arange(2 * count)
    # Only the distinct bodies are copied, each run's first: a repeat is read where its first one lies.
    first_lengths = np.where(firsts, lengths, 0)
    offsets = np.cumsum(first_lengths) - first_lengths
    buffer = np.frombuffer(b"".join(compress(bodies, firsts.tolist())), dtype=np.uint8)
    found = BatchBodies(bodies, kept, lengths, sources, buffer, offsets[sources])
    if isinstance(transactions, TransactionBatch):
        transactions.bodies = (limit, found)
    return found


def repeat_sources(bodies: Sequence[bytes], groups: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """For each body, the index of the first body of its run: the bodies of one group (`groups`, small
    non-negative int64), in order, with equal `tags` (int64) and equal bytes, one after the other.

    Each body is compared with the previous one of its group, which a kernel finds in one pass: inside a replay
    of the bench capture this took 17 ms, where sorting the rows by group and comparing neighbours took 25."""
    count = len(bodies)
    if count < 2:
        return np.arange(count, dtype=np.int64)
    previous = previous_in_group(groups)
    earlier = itemgetter(*previous.tolist())(bodies)  # a tuple: count >= 2; -1 (a group's first) takes the last
    same = np.fromiter(map(eq, bodies, earlier), dtype=bool, count=count)
    same &= (previous >= 0) & (tags[previous] == tags)
    return run_sources(previous, same)


@njit(cache=True)
def previous_in_group(groups):
    """Each row's previous row of the same group (small non-negative ints), -1 for a group's first row."""
    count = len(groups)
    previous = np.empty(count, np.int64)
    if count == 0:
        return previous
    last = np.full(groups.max() + 1, -1, np.int64)
    for row in range(count):
        group = groups[row]
        previous[row] = last[group]
        last[group] = row
    return previous


@njit(cache=True)
def run_sources(previous, same):
    """Each row's run's first row: its previous row's where `same` says it repeats that row, else itself."""
    sources = np.empty(len(previous), np.int64)
    for row in range(len(previous)):
        sources[row] = sources[previous[row]] if same[row] else row
    return sources
