"""IdentityMemo: values remembered per object identity, never handed to a different object, bounded."""

from __future__ import annotations

from parsers.memo import IdentityMemo


def test_a_value_comes_back_for_the_same_object_only() -> None:
    memo: IdentityMemo[str] = IdentityMemo(entries=4)
    first, equal = [(b"host", b"a")], [(b"host", b"a")]
    memo.put(first, "text", 10)
    assert memo.get(first) == "text"
    assert memo.get(equal) is None  # equal content, another object: not this memo's business


def test_a_freed_object_id_is_never_mistaken_for_a_new_one() -> None:
    memo: IdentityMemo[int] = IdentityMemo(entries=1000)
    for number in range(500):
        memo.put([number], number, 1)  # each list is kept alive by the memo, so no id is reused meanwhile
    assert all(memo.get(owner) == value for owner, value in memo.store.values())


def test_bounded_by_entries_and_by_value_size() -> None:
    memo: IdentityMemo[int] = IdentityMemo(entries=3, max_bytes=100)
    big = []
    memo.put(big, 1, 101)
    assert memo.get(big) is None
    owners = [[n] for n in range(10)]
    for value, owner in enumerate(owners):
        memo.put(owner, value, 1)
        assert len(memo.store) <= 3
    assert memo.get(owners[-1]) == 9


def test_message_heads_with_one_shared_header_list_share_its_index() -> None:
    from parsers.messages import MessageHead

    shared = [(b"content-length", b"2"), (b"vary", b"a"), (b"vary", b"b")]
    first, second = MessageHead(1, "1.1", shared, status=200), MessageHead(2, "1.1", shared, status=200)
    alone = MessageHead(3, "1.1", [(b"content-length", b"3")], status=200)
    assert (first.header(b"vary"), second.header(b"content-length"), alone.header(b"content-length")) == (
        b"a, b", b"2", b"3")  # fmt: skip
    assert first._index is second._index and alone._index is not first._index
