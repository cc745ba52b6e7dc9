"""Runs every detector over batches of transactions and deduplicates what they raise.

Transactions are buffered and handed to the detectors `batch_size` at a time (columnar work wants batches), or
sooner once a transaction comes `max_batch_delay_s` after the batch's first (and, on an idle live link, once
that much wall time passed: `flush_due`); the buffer is also flushed at the end of the run. A detector never
does I/O: alerts go back to the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from detectors.alert import Alert
from detectors.batchkeys import TransactionBatch
from detectors.dedup import Deduplicator
from detectors.exposure import expected_words, is_jwt_alert, jwt_expected
from detectors.openapi import ApiSpec
from detectors.payload import AnomalyFeatureTagger, AnomalyJudge, PayloadDetector, PayloadSettings
from detectors.rate import RateDetector, RateSettings
from detectors.shadow import ShadowDetector, ShadowSettings
from parsers.transaction import BatchCollector, Transaction

DETECTOR_RANK = {
    name: rank
    for rank, name in enumerate(
        ("rate_abuse", "bruteforce", "enumeration", "shadow_endpoint", "injection", "data_exposure", "payload_anomaly")
    )
}


class Detector(Protocol):
    def inspect(self, transactions: Sequence[Transaction]) -> list[Alert]: ...


@dataclass
class DetectorSettings:
    """The `[detectors]` section of the configuration."""

    enabled: bool = True
    # Large enough that the per-batch numpy and numba calls amortise, and that the detectors' own code, which
    # each batch runs once and which pushes the parser's code out of the CPU's caches, runs seldom. Callgrind on
    # bench_q (compiled, every detector, time series as line protocol; a last level sized as one core's L2, at two
    # heap layouts) counted these instructions and last-level misses:
    #   batch     256: 6,865M instructions, 32.4M misses
    #   batch   1,024: 6,572M and 6,686M instructions, 33.4M and 33.3M misses
    #   batch   2,048: 6,540M and 6,641M instructions, 29.8M and 32.6M misses
    #   batch   4,096: 6,520M and 6,628M instructions, 30.0M and 32.9M misses
    #   batch  16,384: 6,561M instructions, 30.0M misses
    # Replays of the bench capture, ten rounds in turns (user+sys CPU seconds, fastest and median): without
    # detectors 3.08 and 3.31 s; with them, batches of 1,024 4.00 and 4.17 s, of 4,096 3.83 and 3.98 s.
    # A held transaction takes some 650 bytes with its columns, so a batch outgrows a 512 KiB L2 from about 800
    # on, and a larger one costs few more misses: 4,096 transactions held alone, without columns or detectors,
    # cost 36M instructions and 0.8M misses. Batches only change how alerts of one key are folded (a batch's rows
    # over a limit make one alert, its `count` the number of them), not what is found.
    # The counts above were taken while a batch's columns were taken as each transaction came. With them taken
    # when a batch is sealed (BatchCollector.seal), at layout 0: batch 1,024 6,626M instructions and 29.5M misses,
    # 4,096 6,570M and 29.8M, with 3.3M fewer first-level instruction misses.
    batch_size: int = 4096
    # Transactions carry bounded copies of their bodies; a batch is also handed on once they add up to this.
    max_batch_body_bytes: int = 32 << 20
    # A batch is also handed on once its first transaction is this old (packet time; on an idle live link, wall
    # time): a quiet API's alerts are not held back until a batch fills.
    max_batch_delay_s: float = 1.0
    suppression_s: float = 300.0
    max_dedup_keys: int = 100_000
    rate: RateSettings = field(default_factory=RateSettings)
    shadow: ShadowSettings = field(default_factory=ShadowSettings)
    payload: PayloadSettings = field(default_factory=PayloadSettings)


class DetectionEngine:
    def __init__(
        self,
        detectors: list[Detector],
        settings: DetectorSettings,
        emit: Callable[[Alert], None],
    ) -> None:
        self.detectors = detectors
        self.settings = settings
        self.emit = emit
        # Batches are gathered as the transactions come, and each one's columns taken when it is sealed (compiled:
        # see BatchCollector).
        self.collector = BatchCollector(settings.batch_size, settings.max_batch_body_bytes, settings.max_batch_delay_s)
        self.dedup = Deduplicator(settings.suppression_s, settings.max_dedup_keys)
        self.raised = 0
        self.reported = 0
        self.by_detector: dict[str, int] = {}

    def observe(
        self, transaction: Transaction, body_bytes: int | None = None, raised_elsewhere: Sequence[Alert] = ()
    ) -> None:
        """`body_bytes` and `raised_elsewhere`: for a transaction a worker process parsed and inspected (its
        bodies stayed there), what they weighed and what the worker's detectors raised; they join this batch.
        A replay's loop hands its transactions to `collector` itself and calls `inspect_sealed` when it says."""
        if self.collector.add(transaction, -1 if body_bytes is None else body_bytes, raised_elsewhere):
            self.inspect_sealed()

    def flush_due(self, now_s: float) -> None:
        """Hands the open batch on if its first transaction is `max_batch_delay_s` old at `now_s`: the wall
        time of a live link where no transaction came to do it (see `observe`)."""
        if self.collector.seal_due(now_s):
            self.inspect_sealed()

    def flush(self) -> None:
        self.collector.seal()
        self.inspect_sealed()

    def inspect_sealed(self) -> None:
        """Runs the detectors over each batch the collector sealed, and reports what they raise."""
        for transactions, columns, carried in self.collector.take():
            batch = TransactionBatch(transactions)
            batch.columns = columns
            alerts = carried
            for detector in self.detectors:
                alerts.extend(detector.inspect(batch))
            # By time, then by detector: the same order whichever process raised them.
            alerts.sort(key=lambda alert: (alert.ts, DETECTOR_RANK.get(alert.detector, len(DETECTOR_RANK))))
            self.raised += len(alerts)
            self._report(self.dedup.admit(alerts))

    def finish(self) -> None:
        self.flush()
        self._report(self.dedup.finish())

    def _report(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.reported += 1
            self.by_detector[alert.detector] = self.by_detector.get(alert.detector, 0) + alert.count
            self.emit(alert)


def default_detectors(settings: DetectorSettings, spec: ApiSpec | None = None) -> list[Detector]:
    return [RateDetector(settings.rate), ShadowDetector(spec, settings.shadow), PayloadDetector(settings.payload)]


def worker_payload_detectors(settings: DetectorSettings) -> tuple[PayloadDetector, AnomalyFeatureTagger | None]:
    """For a worker process that sees a share of the connections: what judges each transaction by itself
    (injection, data exposure), and the anomaly features, which need the bodies only the worker holds.

    Whether a JWT in a response is expected depends on the endpoint's name, which the parent gives (see
    sniffer.sharded): a worker reports every JWT, and the parent drops those it expects (`ExpectedJwts`)."""
    tagger = AnomalyFeatureTagger(settings.payload) if settings.payload.anomaly else None
    return PayloadDetector(replace(settings.payload, anomaly=False, jwt_expected_words=())), tagger


class ExpectedJwts:
    """The parent's half of the workers' JWT rule (see `worker_payload_detectors`)."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.words = expected_words(settings.payload.jwt_expected_words)

    def unexpected(self, transaction: Transaction, raised: list[Alert]) -> list[Alert]:
        """`raised` without the JWT alerts that the transaction's endpoint, as named here, expects."""
        if not any(map(is_jwt_alert, raised)) or not jwt_expected(transaction, self.words):
            return raised
        return [alert for alert in raised if not is_jwt_alert(alert)]


def parent_detectors(settings: DetectorSettings, spec: ApiSpec | None = None) -> list[Detector]:
    """For the process that sees every connection beside its workers: detectors whose state spans connections
    (per client, first sight of an endpoint, per-endpoint baselines), over the workers' transactions."""
    detectors: list[Detector] = [RateDetector(settings.rate), ShadowDetector(spec, settings.shadow)]
    if settings.payload.anomaly:
        detectors.append(AnomalyJudge(settings.payload))
    return detectors
