"""Connections shared out among the processes of a replay in the order they are first seen, not by fixed ranges.

A connection's flow key (the same for both directions) falls into one of SHARD_BUCKETS buckets, and a bucket
belongs to one shard for the whole run: every segment of a connection, and of a later one on the same 4-tuple,
lands on the same process. With fixed ranges of buckets, a shard's share of the connections is its share of the
buckets only on average: a capture of a few busy connections splits by luck. The bench capture's 16 connections
gave the parent 2 where its share was 27.5% (14% of the segments), and its worker, with the rest, kept the parent
waiting.

So a bucket is given to a shard when it is first seen: to the shard furthest below its share of the buckets
given so far (sequential apportionment), the lowest index among equals. Every process of a replay reads every
packet, in the same order, and runs this alike over all of them, so every process gives every bucket to the same
shard without a word between them. A live capture's workers each see only their own packets, so they keep
fixed ranges (`Shard.owns`).
"""

from __future__ import annotations

import numpy as np

from sniffer.aot import kernel

SHARD_BUCKETS = 4096  # flow keys fall into this many buckets
UNGIVEN = -1


@kernel("i8[::1]", "i8[::1]", "i8[::1]", "f8[::1]")
def give_buckets(buckets, owners, given, shares):
    """Gives each bucket of `buckets` (in order) that `owners` does not yet give a shard to the shard whose count
    of buckets (`given`) lies furthest below its share (`shares`, summing to 1) of the buckets given with it;
    writes the bucket's shard to `owners` and counts it in `given`."""
    total = 0
    for shard in range(len(given)):
        total += given[shard]
    for index in range(len(buckets)):
        bucket = buckets[index]
        if owners[bucket] != UNGIVEN:
            continue
        total += 1
        chosen = 0
        widest = -np.inf
        for shard in range(len(given)):
            if shares[shard] <= 0.0:
                continue
            deficit = shares[shard] * total - given[shard]
            if deficit > widest:
                widest = deficit
                chosen = shard
        owners[bucket] = chosen
        given[chosen] += 1


class FirstSightSplit:
    """One process's view of the split: which buckets are its own, given as the replay goes (see module doc)."""

    def __init__(self, index: int, shares: list[float]) -> None:
        """`shares`: each shard's share of the connections, in shard order (at least one above zero)."""
        self.index = index
        self.owners = np.full(SHARD_BUCKETS, UNGIVEN, np.int64)
        self.given = np.zeros(len(shares), np.int64)
        total = float(sum(shares))
        self.shares = np.array([share / total for share in shares], np.float64)

    def owns(self, flow_keys: np.ndarray) -> np.ndarray:
        """Whether each segment (by its flow key, in input order) is this shard's; gives first-seen buckets."""
        buckets = (flow_keys % np.uint64(SHARD_BUCKETS)).astype(np.int64)
        give_buckets(buckets, self.owners, self.given, self.shares)
        return self.owners[buckets] == self.index
