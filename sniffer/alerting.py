"""The detection side of a run: the engine and where its alerts go (JSON lines, InfluxDB, webhooks, summary).

Built once from the configuration and the command line; the replay (and live) loop hands it every transaction
and finishes it at the end, before the time-series outputs close, so the last alerts reach InfluxDB too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from detectors.alert import Alert
from detectors.engine import DetectionEngine, default_detectors, parent_detectors
from detectors.inventory import Inventory
from detectors.openapi import ApiSpec
from parsers.transaction import Transaction
from sniffer.config import Config
from sniffer.sinks.alerts import NS_PER_S, AlertLines, alert_point
from sniffer.sinks.documents import write_document
from sniffer.sinks.lineprotocol import Point
from sniffer.sinks.webhooks import WebhookDispatcher, webhook_targets_from_config


class InventoryRecorder:
    """Feeds the engine's batches to the inventory; a detector that raises nothing."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory

    def inspect(self, transactions: Sequence[Transaction]) -> list[Alert]:
        self.inventory.observe(transactions)
        return []


class AlertOutputs:
    def __init__(
        self,
        config: Config,
        alerts_path: str | None,
        emit_points: Callable[[list[Point]], None] | None,
        spec: ApiSpec | None = None,
        inventory_path: str | None = None,
        cross_flow_only: bool = False,
    ) -> None:
        """`cross_flow_only`: worker processes run the detectors that need bodies; their alerts come in `admit`."""
        self.lines = AlertLines(alerts_path) if alerts_path else None
        self.emit_points = emit_points
        self.webhooks = None
        if config.webhooks:
            self.webhooks = WebhookDispatcher(webhook_targets_from_config(config.webhooks), config.webhook_delivery)
        self.inventory_path = inventory_path
        self.inventory = Inventory(spec) if inventory_path else None
        if cross_flow_only:
            detectors = parent_detectors(config.detectors, spec)
        else:
            detectors = default_detectors(config.detectors, spec)
        if self.inventory is not None:
            detectors.append(InventoryRecorder(self.inventory))
        self.engine = DetectionEngine(detectors, config.detectors, self._emit)

    def observe(
        self, transaction: Transaction, body_bytes: int | None = None, raised_elsewhere: Sequence[Alert] = ()
    ) -> None:
        """See DetectionEngine.observe: the last two are for a transaction a worker process parsed."""
        self.engine.observe(transaction, body_bytes, raised_elsewhere)

    def flush_due(self, now_ns: int) -> None:
        """Time passed (packet time, or wall time on an idle live link): a batch waiting too long is inspected."""
        self.engine.flush_due(now_ns / NS_PER_S)

    def _emit(self, alert: Alert) -> None:
        if self.lines is not None:
            self.lines.write(alert)
        if self.emit_points is not None:
            self.emit_points([alert_point(alert)])
        if self.webhooks is not None:
            self.webhooks.submit(alert)

    def reopen(self) -> None:
        if self.lines is not None:
            self.lines.reopen()

    def close(self) -> None:
        self.engine.finish()
        if self.lines is not None:
            self.lines.close()
        if self.inventory is not None:
            write_document(self.inventory.to_openapi(), self.inventory_path)
        if self.webhooks is not None:
            self.webhooks.close()

    def counters(self) -> dict[str, int]:
        counters = {"alerts": self.engine.reported, "alerts_folded": self.engine.dedup.folded_total}
        for detector, count in sorted(self.engine.by_detector.items()):
            counters[f"alerts_{detector}"] = count
        if self.webhooks is not None:
            counters.update({f"webhooks_{name}": value for name, value in self.webhooks.counters().items()})
        return counters
