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
from operator import attrgetter, eq, itemgetter
from typing import NamedTuple

import numpy as np

from detectors.batchkeys import TransactionBatch, endpoints_of


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


_req_body, _resp_body = attrgetter("req_body"), attrgetter("resp_body")
_req_type, _resp_type = attrgetter("req_content_type"), attrgetter("resp_content_type")


def bodies_of(transactions: Sequence, limit: int) -> BatchBodies:
    """The batch's BatchBodies, cut at `limit` bytes; remembered by a TransactionBatch (shared: do not change)."""
    remembered = getattr(transactions, "bodies", None)
    if remembered is not None and remembered[0] == limit:
        return remembered[1]
    count = len(transactions)
    bodies = list(map(_req_body, transactions))
    bodies += map(_resp_body, transactions)
    kept = np.fromiter(map(len, bodies), dtype=np.int64, count=2 * count)
    lengths = kept
    if count and kept.max() > limit:
        bodies = [body[:limit] for body in bodies]
        lengths = np.minimum(kept, limit)
    endpoints, endpoint_codes = endpoints_of(transactions)
    groups = np.concatenate((endpoint_codes, endpoint_codes + len(endpoints)))
    # Content types by identity: the parser shares one str per header list, and equal ones that are apart
    # only make shorter runs.
    types = np.fromiter(map(id, map(_req_type, transactions)), dtype=np.int64, count=count)
    types = np.concatenate((types, np.fromiter(map(id, map(_resp_type, transactions)), dtype=np.int64, count=count)))
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
    """For each body, the index of the first body of its run: the bodies of one group (`groups`, int64), in
    order, with equal `tags` (int64) and equal bytes, one after the other."""
    count = len(bodies)
    sources = np.arange(count, dtype=np.int64)
    if count < 2:
        return sources
    order = np.argsort(groups, kind="stable")  # each group's bodies together, in the batch's order
    ordered = itemgetter(*order.tolist())(bodies)  # a tuple: count >= 2
    same = np.fromiter(map(eq, ordered[1:], ordered[:-1]), dtype=bool, count=count - 1)
    ordered_groups, ordered_tags = groups[order], tags[order]
    same &= (ordered_groups[1:] == ordered_groups[:-1]) & (ordered_tags[1:] == ordered_tags[:-1])
    # Each position's run starts at the last position before it (or it) that is not the same as its predecessor.
    starts = np.zeros(count, dtype=np.int64)
    starts[1:] = np.where(same, 0, np.arange(1, count))
    np.maximum.accumulate(starts, out=starts)
    sources[order] = order[starts]
    return sources
