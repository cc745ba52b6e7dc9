"""HeaderMemo: values remembered per shared header list, never handed to another list, bounded."""

from __future__ import annotations

from parsers.memo import HeaderMemo, SharedHeaders


def test_a_value_comes_back_for_the_same_shared_list_only() -> None:
    memo: HeaderMemo[str] = HeaderMemo(entries=4)
    first, equal = SharedHeaders([(b"host", b"a")]), SharedHeaders([(b"host", b"a")])
    memo.put(first, "text")
    assert memo.get(first) == "text"
    assert memo.get(equal) is None  # equal content, another list: not this memo's business


def test_lists_that_are_not_shared_pass_by() -> None:
    memo: HeaderMemo[str] = HeaderMemo()
    plain = [(b"host", b"a")]
    memo.put(plain, "text")
    assert memo.get(plain) is None and not memo.store


def test_a_freed_list_id_is_never_mistaken_for_a_new_one() -> None:
    memo: HeaderMemo[int] = HeaderMemo(entries=1000)
    for number in range(500):
        memo.put(SharedHeaders([(b"n", b"%d" % number)]), number)  # kept alive by the memo: no id is reused
    assert all(memo.get(owner) == value for owner, value in memo.store.values())


def test_bounded_by_entries() -> None:
    memo: HeaderMemo[int] = HeaderMemo(entries=3)
    owners = [SharedHeaders([(b"n", b"%d" % n)]) for n in range(10)]
    for value, owner in enumerate(owners):
        memo.put(owner, value)
        assert len(memo.store) <= 3
    assert memo.get(owners[-1]) == 9


def test_message_heads_with_one_shared_header_list_share_its_index() -> None:
    from parsers.messages import MessageHead

    shared = SharedHeaders([(b"content-length", b"2"), (b"vary", b"a"), (b"vary", b"b")])
    first, second = MessageHead(1, "1.1", shared, status=200), MessageHead(2, "1.1", shared, status=200)
    alone = MessageHead(3, "1.1", [(b"content-length", b"3")], status=200)
    assert (first.header(b"vary"), second.header(b"content-length"), alone.header(b"content-length")) == (
        b"a, b", b"2", b"3")  # fmt: skip
    assert first._index is second._index and alone._index is not first._index
    assert shared.field_index is first._index  # kept on the shared list, for every later head that holds it


def test_the_head_reader_hands_out_shared_lists_only_for_heads_it_remembers() -> None:
    from parsers.headread import HEAD_MEMO_MAX_BYTES, read_head

    short = read_head(bytearray(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), False)[1]
    long = read_head(bytearray(b"HTTP/1.1 200 OK\r\nX-Pad: " + b"p" * HEAD_MEMO_MAX_BYTES + b"\r\n\r\n"), False)[1]
    assert type(short.headers) is SharedHeaders and type(long.headers) is list


def test_a_shared_header_list_pickles_as_its_fields() -> None:
    import pickle

    shared = SharedHeaders([(b"host", b"a"), (b"vary", b"b")])
    shared.field_index = {b"host": b"a", b"vary": b"b"}
    copy = pickle.loads(pickle.dumps(shared))
    assert type(copy) is SharedHeaders and copy == shared and copy.field_index is None
