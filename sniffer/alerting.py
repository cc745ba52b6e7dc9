"""The detection side of a run: the engine and where its alerts go (JSON lines, InfluxDB, webhooks, summary).

Built once from the configuration and the command line; the replay (and live) loop hands it every transaction
and finishes it at the end, before the time-series outputs close, so the last alerts reach InfluxDB too.
"""

from __future__ import annotations

from collections.abc import Callable

from detectors.alert import Alert
from detectors.engine import DetectionEngine, Detector, default_detectors
from parsers.transaction import Transaction
from sniffer.config import Config
from sniffer.sinks.alerts import AlertLines, alert_point
from sniffer.sinks.lineprotocol import Point


class AlertOutputs:
    def __init__(
        self,
        config: Config,
        alerts_path: str | None,
        emit_points: Callable[[list[Point]], None] | None,
        detectors: list[Detector] | None = None,
    ) -> None:
        self.lines = AlertLines(alerts_path) if alerts_path else None
        self.emit_points = emit_points
        self.engine = DetectionEngine(
            detectors if detectors is not None else default_detectors(config.detectors), config.detectors, self._emit
        )

    def observe(self, transaction: Transaction) -> None:
        self.engine.observe(transaction)

    def _emit(self, alert: Alert) -> None:
        if self.lines is not None:
            self.lines.write(alert)
        if self.emit_points is not None:
            self.emit_points([alert_point(alert)])

    def close(self) -> None:
        self.engine.finish()
        if self.lines is not None:
            self.lines.close()

    def counters(self) -> dict[str, int]:
        counters = {"alerts": self.engine.reported, "alerts_folded": self.engine.dedup.folded_total}
        for detector, count in sorted(self.engine.by_detector.items()):
            counters[f"alerts_{detector}"] = count
        return counters
