"""Alerts as JSON lines and as `api_alerts` points: the two ways alerts leave apispy besides webhooks."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from detectors.alert import Alert
from sniffer.metrics import ALERTS_MEASUREMENT
from sniffer.sinks.lineprotocol import Point

NS_PER_S = 1_000_000_000


class AlertLines:
    """One JSON object per alert, to a file or stdout (`-`); lines are flushed so a tail -f sees them."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._handle: TextIO = sys.stdout if path == "-" else open(path, "w", encoding="utf-8")  # noqa: SIM115

    def write(self, alert: Alert) -> None:
        self._handle.write(json.dumps(alert.to_record(), ensure_ascii=False, separators=(",", ":")) + "\n")
        self._handle.flush()

    def reopen(self) -> None:
        if self._handle is not sys.stdout:
            self._handle.close()
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        if self._handle is not sys.stdout:
            self._handle.close()


def alert_point(alert: Alert) -> Point:
    """The alert as an `api_alerts` point. `rule` is a tag too (a small fixed set): two rules raised by one
    transaction share a timestamp and would otherwise overwrite each other. The timestamp keeps the alert's
    packet time to the nanosecond. Clients are never tags."""
    return Point(
        ALERTS_MEASUREMENT,
        {"detector": alert.detector, "severity": alert.severity, "endpoint": alert.endpoint or "-",
         "rule": alert.rule},
        {"count": alert.count, "score": float(alert.score)},
        int(round(alert.ts * NS_PER_S)),
    )
