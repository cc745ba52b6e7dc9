"""The alert record: what the detectors report, in a form a person can act on and that leaks no secret."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from parsers.transaction import Transaction

DETECTORS = (
    "rate_abuse",
    "bruteforce",
    "enumeration",
    "shadow_endpoint",
    "injection",
    "data_exposure",
    "payload_anomaly",
)
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(slots=True)
class Alert:
    """One finding. `ts` is packet time (epoch seconds) of the transaction that raised it.

    `evidence` is always redacted by the detector that builds it: never a full card number, token, key or
    password (see detectors.evidence). `count` is how many occurrences the deduplication folded into it.
    """

    ts: float
    detector: str
    rule: str
    severity: str
    src_ip: str
    client_id: str
    method: str
    endpoint: str
    message: str
    evidence: str
    score: float
    count: int = 1

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"unknown detector {self.detector!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    @classmethod
    def about(
        cls,
        transaction: Transaction,
        detector: str,
        rule: str,
        severity: str,
        message: str,
        evidence: str,
        score: float,
        count: int = 1,
        method: str | None = None,
        endpoint: str | None = None,
    ) -> Alert:
        """An alert raised by one transaction: its time, client, method and endpoint (the path when it has no
        endpoint), unless the finding is about something wider (`method`/`endpoint` given, e.g. "*")."""
        return cls(
            ts=transaction.ts,
            detector=detector,
            rule=rule,
            severity=severity,
            src_ip=transaction.src_ip,
            client_id=transaction.client_id or transaction.src_ip,
            method=transaction.method if method is None else method,
            endpoint=(transaction.endpoint or transaction.path) if endpoint is None else endpoint,
            message=message,
            evidence=evidence,
            score=score,
            count=count,
        )

    def about_endpoint(self, endpoint: str) -> Alert:
        """The same finding, about the same request, under another name of its endpoint (a worker's template,
        named again by the parent that sees every connection): the message names it too."""
        message = self.message.replace(f"{self.method} {self.endpoint}", f"{self.method} {endpoint}", 1)
        return replace(self, endpoint=endpoint, message=message)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What deduplication groups by: the same finding from the same client on the same endpoint."""
        return (self.detector, self.rule, self.client_id, self.endpoint)

    def to_record(self) -> dict:
        return asdict(self)


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


class RowAlerts(dict[int, list[Alert]]):
    """The alerts of a batch's rows, by row number. A row's list is made when it is first asked for
    (`alerts[row].append(...)`): most rows of a batch raise nothing, and an empty list for each row of every
    batch took some 4% of the detection engine's time on the bench capture."""

    __slots__ = ()

    def __missing__(self, row: int) -> list[Alert]:
        found: list[Alert] = []
        self[row] = found
        return found

    def in_row_order(self) -> list[Alert]:
        """Every alert, the rows' in turn."""
        return [alert for row in sorted(self) for alert in self[row]]

    def as_lists(self, count: int) -> list[list[Alert]]:
        """The alerts of each of rows 0..count-1, a list each."""
        return [self.get(row) or [] for row in range(count)]
