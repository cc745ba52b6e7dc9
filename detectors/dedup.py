"""Deduplication: the same (detector, rule, client, endpoint) raises once per suppression window.

The first occurrence is reported at once, so an alert is never late. Repeats within `suppression_s` of packet
time are folded; when the window closes (a later occurrence after it, or the end of the run), one follow-up alert
carries the number folded in its `count`, so nothing is lost and nothing floods. At most `max_keys` keys are
remembered (least recently raised first out, its pending repeats reported when it leaves).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

from detectors.alert import Alert


@dataclass(slots=True)
class _Window:
    opened_ts: float
    folded: int
    last: Alert


class Deduplicator:
    def __init__(self, suppression_s: float = 300.0, max_keys: int = 100_000) -> None:
        self.suppression_s = suppression_s
        self.max_keys = max_keys
        self.windows: OrderedDict[tuple, _Window] = OrderedDict()
        self.folded_total = 0

    def admit(self, alerts: list[Alert]) -> list[Alert]:
        """The alerts to report now, in order: first occurrences and closed windows' follow-ups."""
        out: list[Alert] = []
        for alert in alerts:
            key = alert.key
            window = self.windows.get(key)
            if window is not None and alert.ts - window.opened_ts < self.suppression_s:
                window.folded += alert.count
                window.last = alert
                self.folded_total += alert.count
                self.windows.move_to_end(key)
                continue
            if window is not None:
                out.extend(self._follow_up(window))
                del self.windows[key]
            self.windows[key] = _Window(alert.ts, 0, alert)
            out.append(alert)
            while len(self.windows) > self.max_keys:
                _, oldest = self.windows.popitem(last=False)
                out.extend(self._follow_up(oldest))
        return out

    def finish(self) -> list[Alert]:
        out = [alert for window in self.windows.values() for alert in self._follow_up(window)]
        self.windows.clear()
        return out

    def _follow_up(self, window: _Window) -> list[Alert]:
        if not window.folded:
            return []
        last = window.last
        return [replace(last, count=window.folded,
                        message=f"{last.message} (repeated {window.folded} more times since the first alert)")]
