"""Header lists that recur, and what later stages derive from them, remembered by identity.

The fast head reader (parsers.headparse) remembers the heads it read; every message with a remembered head holds
the very same header list, a `SharedHeaders`. So the work later stages do on headers (indexing them, reading a
request's facts, joining or decoding them for the detectors' scans) can be done once per distinct head: the
list carries its own index by name (`SharedHeaders.field_index`) and a request's facts (`request_facts`, under the
reading builder's token), and a `HeaderMemo` keeps the rest by the list's
identity, and keeps the list alive beside it so that an id is never taken for a later list's. Any other list (a
head h11 read, or one too long to be remembered) is seen once and passes by the memo untouched, at the cost of one
type check. Bounded: at most `entries` lists (each of a head of at most 2 KB), all forgotten at once when full.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class SharedHeaders(list):
    """A header list held by every message with one remembered head. Never changed. It carries its fields indexed
    by name (`field_index`, built by parsers.messages at first use): every message with this head reads that
    index from the list itself, where a `HeaderMemo` lookup cost some 600 instructions a message when compiled (an
    extension type then, parsers/memo.pxd, whose field is a C struct field)."""

    __slots__ = ("field_index", "request_facts")

    def __init__(self, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        super().__init__(headers)
        self.field_index: dict[bytes, bytes] | None = None
        # (owner token, facts): what a request's header fields say, as the transaction builder that owns the token
        # read them (sniffer.records); kept here for the same reason as the index, under a token so that another
        # builder (another configuration) never takes them, and without holding the builder itself alive.
        self.request_facts: tuple[object, Any] | None = None

    def __reduce__(self) -> tuple[type, tuple[list[tuple[bytes, bytes]]]]:
        """Pickled as its fields (the index is built again at first use): compiled, Cython's own pickling of a
        list's extension type would keep the index and drop the fields."""
        return SharedHeaders, (list(self),)


class HeaderMemo:
    """Values of one kind by header list (annotated `HeaderMemo[kind]` where it is held). Not a `typing.Generic`:
    compiled, an extension type (parsers/memo.pxd) whose `get` and `put` are C calls from the modules that cimport
    it, and an extension type cannot derive from a Python class."""

    __slots__ = ("entries", "store")

    def __init__(self, entries: int = 4096) -> None:
        self.entries = entries
        self.store: dict[int, tuple[SharedHeaders, Any]] = {}

    def get(self, headers: list) -> Any:
        if type(headers) is not SharedHeaders:
            return None
        entry = self.store.get(id(headers))
        return entry[1] if entry is not None and entry[0] is headers else None

    def put(self, headers: list, value: Any) -> None:
        if type(headers) is not SharedHeaders:
            return
        if len(self.store) >= self.entries:
            self.store.clear()
        self.store[id(headers)] = (headers, value)


class FifoMemo:
    """At most `entries` values by key, the oldest put forgotten first (first in, first out: a lookup does not
    renew an entry), for tables whose entries never go stale on their own. Not an OrderedDict: compiled, an
    extension type (parsers/memo.pxd) whose `get` and `put` are C calls from the modules that cimport it, and its
    dictionary's lookups C calls too, where each of OrderedDict's methods was a call by name (some 700 instructions
    compiled). The keys in the order they were put make a ring, `next_out` the oldest once it is full."""

    __slots__ = ("entries", "store", "order", "next_out")

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self.store: dict[Any, Any] = {}
        self.order: list[Any] = []
        self.next_out = 0

    def __len__(self) -> int:
        return len(self.store)

    def get(self, key: Any) -> Any:
        """The value put under `key`, or None (None itself is never put)."""
        return self.store.get(key)

    def put(self, key: Any, value: Any) -> None:
        store = self.store
        if key in store:
            store[key] = value  # keeps its place, as an OrderedDict's entry does
            return
        if self.entries <= 0:
            return
        order = self.order
        if len(order) < self.entries:
            order.append(key)
        else:
            oldest = self.next_out
            del store[order[oldest]]
            order[oldest] = key
            self.next_out = oldest + 1 if oldest + 1 < self.entries else 0
        store[key] = value

    def clear(self) -> None:
        self.store.clear()
        self.order.clear()
        self.next_out = 0
