"""Header lists that recur, and what later stages derive from them, remembered by identity.

The fast head reader (parsers.headparse) remembers the heads it read; every message with a remembered head holds
the very same header list, a `SharedHeaders`. So the work later stages do on headers (indexing them, reading a
request's facts, joining or decoding them for the detectors' scans) can be done once per distinct head: a
`HeaderMemo` keeps it by the list's identity, and keeps the list alive beside it so that an id is never taken for
a later list's. Any other list (a head h11 read, or one too long to be remembered) is seen once and passes by
the memo untouched, at the cost of one type check. Bounded: at most `entries` lists (each of a head of at most
2 KB), all forgotten at once when full.
"""

from __future__ import annotations

from typing import Any


class SharedHeaders(list):
    """A header list held by every message with one remembered head. Never changed."""

    __slots__ = ()


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
