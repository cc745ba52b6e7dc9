"""A bounded map from keys to slots of fixed-size arrays, least recently used key evicted first.

The kernels work on slot numbers; this table is the one place that knows which client (or client and endpoint)
a slot belongs to. When it is full, the least recently seen key loses its slot, and the arrays' rows for that
slot are reset by the owner through `on_reuse`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable


class SlotTable:
    def __init__(self, capacity: int, on_reuse: Callable[[int], None]) -> None:
        self.capacity = capacity
        self.on_reuse = on_reuse
        self.slots: OrderedDict[Hashable, int] = OrderedDict()
        self.keys: list[Hashable | None] = [None] * capacity
        self.evictions = 0

    def slot(self, key: Hashable) -> int:
        slot = self.slots.get(key)
        if slot is not None:
            self.slots.move_to_end(key)
            return slot
        if len(self.slots) < self.capacity:
            slot = len(self.slots)
        else:
            old_key, slot = self.slots.popitem(last=False)
            self.evictions += 1
            self.on_reuse(slot)
        self.slots[key] = slot
        self.keys[slot] = key
        return slot

    def __len__(self) -> int:
        return len(self.slots)
