"""HeaderMemo: values remembered per shared header list, never handed to another list, bounded. FifoMemo: values by
key, the oldest forgotten first."""

from __future__ import annotations

from collections import OrderedDict

from parsers.memo import FifoMemo, HeaderMemo, SharedHeaders


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


def test_fifo_memo_forgets_the_oldest_put_as_an_ordered_dict_would() -> None:
    memo, reference = FifoMemo(3), OrderedDict()
    keys = ["a", "b", "a", "c", "d", "b", "e", "f", "g", "a", "h"]
    for step, key in enumerate(keys):
        assert memo.get(key) == reference.get(key)
        if key in reference:
            reference[key] = step  # a value put again keeps its place
        else:
            if len(reference) >= 3:
                reference.popitem(last=False)
            reference[key] = step
        memo.put(key, step)
        assert memo.store == dict(reference) and len(memo) == len(reference)
    memo.clear()
    assert len(memo) == 0 and memo.get("h") is None
    memo.put("x", 1)
    assert memo.store == {"x": 1}


def test_fifo_memo_of_no_entries_holds_nothing() -> None:
    memo = FifoMemo(0)
    memo.put("a", 1)
    assert memo.get("a") is None and len(memo) == 0
