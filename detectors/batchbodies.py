"""A batch's bodies as the payload detectors read them, taken once, with the repeats among them marked.

The payload baselines and the data-exposure scan both read every body of a batch, cut at `max_scan_bytes`. An
API sends the same body again and again (a list page, a fixed answer, a health check, an error): what both find
in a body depends on its bytes alone (and, for JSON key sets, on its content type), so each body is marked with
the first of its run of identical bodies (`sources`), only those are copied into the batch's buffer, and the
detectors read each distinct body once.

A run is the consecutive bodies, in the batch's order, of one endpoint and direction that have the same content
type and the very same bytes (before the cut: bodies that differ only past it are read apart, and give the same).
The batch's columns find them as the rows come (parsers.transaction.ColumnsBuilder): a comparison of each body
with the one before it in its endpoint, mostly the very same object, else C's memcmp, which stops at the first
difference, so bodies that differ cost next to nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress
from typing import NamedTuple

import numpy as np

from detectors.batchkeys import TransactionBatch, columns_of


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
    sources = columns.body_sources
    firsts = sources == np.arange(2 * count)
    # Only the distinct bodies are copied, each run's first: a repeat is read where its first one lies.
    first_lengths = np.where(firsts, lengths, 0)
    offsets = np.cumsum(first_lengths) - first_lengths
    buffer = np.frombuffer(b"".join(compress(bodies, firsts.tolist())), dtype=np.uint8)
    found = BatchBodies(bodies, kept, lengths, sources, buffer, offsets[sources])
    if isinstance(transactions, TransactionBatch):
        transactions.bodies = (limit, found)
    return found
