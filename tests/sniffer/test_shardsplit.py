"""Connections given to shards at first sight: the kernel against its Python body and a plain reference, and the
split's promises (one owner per connection, for good; shares kept to within one bucket)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.kernels import python_body

from sniffer.pipeline import Shard
from sniffer.shardsplit import SHARD_BUCKETS, UNGIVEN, FirstSightSplit, give_buckets


def reference_owners(buckets: list[int], shares: list[float]) -> dict[int, int]:
    """Each bucket's shard, given in order of first sight to the shard furthest below its share: plain Python."""
    owners: dict[int, int] = {}
    given = [0] * len(shares)
    for bucket in buckets:
        if bucket in owners:
            continue
        total = len(owners) + 1
        deficits = [share * total - count if share > 0 else -np.inf for share, count in zip(shares, given, strict=True)]
        chosen = deficits.index(max(deficits))
        owners[bucket] = chosen
        given[chosen] += 1
    return owners


share_lists = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6).filter(lambda shares: sum(shares) > 0.01)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 63), max_size=300), share_lists, st.integers(1, 40))
def test_give_buckets_matches_its_python_body_and_a_plain_reference(buckets, raw_shares, batch) -> None:
    shares = np.array(raw_shares) / sum(raw_shares)
    expected = reference_owners(buckets, shares.tolist())
    for kernel in (give_buckets, python_body(give_buckets)):
        owners = np.full(64, UNGIVEN, np.int64)
        given = np.zeros(len(shares), np.int64)
        for start in range(0, len(buckets), batch):  # batches: what a bucket got earlier stays
            kernel(np.array(buckets[start : start + batch], np.int64), owners, given, shares)
        assert {bucket: int(owners[bucket]) for bucket in expected} == expected
        assert (owners[[b for b in range(64) if b not in expected]] == UNGIVEN).all()
        assert given.tolist() == np.bincount(list(expected.values()), minlength=len(shares)).tolist()


def test_every_connection_has_one_owner_for_good_and_shares_are_kept() -> None:
    """Each process runs its own split over the same segments; together they own each segment exactly once, a key
    keeps its shard from batch to batch, and each shard's count of connections stays within one of its share."""
    rng = np.random.default_rng(11)
    keys = rng.integers(0, 2**63, size=5_000, dtype=np.uint64)
    stream = keys[rng.integers(0, len(keys), size=60_000)]  # segments of connections, interleaved
    shard_of_key: dict[int, int] = {}
    for count, first_share in ((2, 0.275), (3, 0.1), (4, None)):
        shards = [Shard(index, count, first_share, first_sight=True) for index in range(count)]
        splits = [shard.split() for shard in shards]
        assert all(isinstance(split, FirstSightSplit) for split in splits)
        shard_of_key.clear()
        for start in range(0, len(stream), 512):
            batch = stream[start : start + 512]
            owned = np.array([split.owns(batch) for split in splits])
            assert (owned.sum(axis=0) == 1).all()
            for key, shard in zip(batch.tolist(), owned.argmax(axis=0).tolist(), strict=True):
                assert shard_of_key.setdefault(key, shard) == shard
        buckets = len(np.unique(stream % np.uint64(SHARD_BUCKETS)))
        for split in splits:
            assert (split.owners == splits[0].owners).all(), "every process gave every bucket alike"
        for index, share in enumerate(shards[0].shares()):
            assert abs(int(splits[0].given[index]) - share * buckets) < 1.0


def test_a_few_connections_split_as_the_shares_say() -> None:
    """The case fixed ranges of buckets got wrong: 16 connections and a parent's share of 27.5% gave the parent
    2 of them (by luck of the hash); given at first sight, it gets 4."""
    keys = np.arange(1, 17, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    parent, worker = (Shard(index, 2, 0.275, first_sight=True).split() for index in (0, 1))
    assert int(parent.owns(keys).sum()) == 4
    assert int(worker.owns(keys).sum()) == 12


def test_a_shard_with_no_share_gets_nothing_and_fixed_ranges_stay_the_default() -> None:
    keys = np.random.default_rng(3).integers(0, 2**63, size=10_000, dtype=np.uint64)
    assert not Shard(0, 8, 0.0, first_sight=True).split().owns(keys).any()
    assert Shard(0, 1, 1.0, first_sight=True).split().owns(keys).all()
    shard = Shard(1, 2)
    assert shard.split() is shard
    assert Shard(0, 2, 0.4).shares() == pytest.approx([0.4, 0.6])
    assert Shard(2, 4).shares() == pytest.approx([0.25] * 4)
