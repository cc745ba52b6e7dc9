"""Values derived from an object, remembered for as long as that very object comes back.

The HTTP parser hands out one shared header list for every message with the same head (parsers.headparse
remembers heads), so the work later stages do on headers (indexing them, reading a request's facts, joining or
decoding them for the detectors' scans) can be done once per distinct head. The memo is keyed by identity and
keeps the object alive beside its value, so an id is never mistaken for a later object's. Bounded: at most
`entries` objects, each with a value of at most `max_bytes`, all forgotten at once when full.
"""

from __future__ import annotations

from typing import Generic, TypeVar

Value = TypeVar("Value")


class IdentityMemo(Generic[Value]):
    __slots__ = ("entries", "max_bytes", "store")

    def __init__(self, entries: int = 1024, max_bytes: int = 4096) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self.store: dict[int, tuple[object, Value]] = {}

    def get(self, owner: object) -> Value | None:
        entry = self.store.get(id(owner))
        return entry[1] if entry is not None and entry[0] is owner else None

    def put(self, owner: object, value: Value, size: int) -> None:
        """Remembers `value` for `owner` unless `size` (what the value weighs, in bytes) is over the bound."""
        if size > self.max_bytes:
            return
        if len(self.store) >= self.entries:
            self.store.clear()
        self.store[id(owner)] = (owner, value)
