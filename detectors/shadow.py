"""Shadow endpoints: operations the traffic shows but the API's owners did not document or did not know about.

With an OpenAPI spec, every observed (method, endpoint) the spec lacks is reported:
- rule `undocumented`: no spec template matches the path;
- rule `undocumented_method`: the path is in the spec, the method is not (DELETE on a GET-only path).
HEAD on a path documenting GET, and OPTIONS on any documented path, are not reported (`ApiSpec.allows`).
The endpoint is checked as given (the lead replaces it with the spec template when `ApiSpec.match` matches)
and, when it is not a spec template, the path is matched against the spec here, so apispy's own templating
(`/users/{id}` for a spec's `/users/{userId}`) never makes a documented operation look undocumented.

Without a spec, the first `learning_period_s` seconds of packet time, counted from the first transaction seen,
learn the endpoints in use; any (method, endpoint) first seen after that is reported as rule `new_endpoint`.

Severity follows what the server answered, because that says whether the operation exists:
- 2xx on an undocumented endpoint or method: high (it exists, it works, nobody documented it);
- 404, 405 or 501: nothing by default (the server refused: a probe or a typo, not a live endpoint), or low
  with `report_probes`;
- anything else, or no response: medium. A `new_endpoint` is at most medium: without a spec a new endpoint
  is as likely a deployment as a forgotten one.

Each (method, endpoint) alerts once per detector lifetime, and again only if a later transaction raises its
severity (a probe answered 404 that later answers 200 is reported twice: low, then high). With
`min_count` > 1 an endpoint alerts on its `min_count`-th occurrence.

Memory bound: three tables of at most `max_tracked_endpoints` (method, endpoint) keys each: the learned
endpoints (spec-less mode; never evicted, since forgetting one would report it as new; once full, endpoints
first seen during learning are not learned and alert after it), the alerted keys (oldest low-severity keys are
evicted first, then the oldest of the rest; an evicted key can alert once more), and the occurrence counts of
keys not yet alerted when `min_count` > 1 (oldest evicted first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.alert import Alert, severity_rank
from detectors.batchkeys import operations_of, statuses_of
from detectors.evidence import excerpt, mask_middle
from detectors.openapi import ApiSpec
from parsers.transaction import Transaction

PROBE_STATUSES = frozenset({404, 405, 501})
PROBE_STATUS_CODES = np.array(sorted(PROBE_STATUSES), dtype=np.int64)
SEVERITY_SCORES = {"low": 0.3, "medium": 0.6, "high": 0.9}
# Placeholders whose values may be credentials or opaque identifiers; the evidence path masks them.
_MASKED_PLACEHOLDERS = ("{token}", "{hex}")
# A concrete segment behind any parameter longer than this is masked too (reset links, signed paths).
_MAX_CLEAR_PARAMETER_CHARS = 16
_LOW = severity_rank("low")


@dataclass(slots=True)
class ShadowSettings:
    """`learning_period_s` applies only without a spec; `min_count` is the number of occurrences of a
    (method, endpoint) before it alerts; `max_tracked_endpoints` bounds each table (see module docstring)."""

    learning_period_s: float = 3600.0
    min_count: int = 1
    max_tracked_endpoints: int = 50_000
    # Paths the server answered 404/405/501 do not exist: probes, not endpoints. Off by default; on, they are
    # reported at low severity.
    report_probes: bool = False

    def __post_init__(self) -> None:
        if self.learning_period_s < 0:
            raise ValueError(f"learning_period_s must be >= 0, got {self.learning_period_s}")
        if self.min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {self.min_count}")
        if self.max_tracked_endpoints < 1:
            raise ValueError(f"max_tracked_endpoints must be >= 1, got {self.max_tracked_endpoints}")


class ShadowDetector:
    """Reports undocumented (with a spec) or new (without) endpoints; see the module docstring for the rules."""

    def __init__(self, spec: ApiSpec | None, settings: ShadowSettings | None = None) -> None:
        self._spec = spec
        self._settings = settings or ShadowSettings()
        self._learning_ends_at: float | None = None
        self._learned: set[tuple[str, str]] = set()
        self._alerted_low: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._alerted: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._pending_counts: OrderedDict[tuple[str, str], int] = OrderedDict()

    def inspect(self, transactions: Sequence[Transaction]) -> list[Alert]:
        alerts = []
        learned = self._learned if self._spec is None and self._learning_ends_at is not None else ()
        # The usual case: every operation of the batch learned (or documented) already, or reported at the highest
        # severity this detector gives it (a spec's "high", a learned baseline's "medium"), after which it can raise
        # nothing more. Only the rows of the others are looked at, in order; what is learned meanwhile is never
        # forgotten within a batch.
        operations, codes = operations_of(transactions)
        spec = self._spec
        top = severity_rank("high" if spec is not None else "medium")
        known = []
        for method, endpoint in operations:
            key = (method.upper(), endpoint)
            known.append(key in learned or (spec is not None and spec.allows(method, endpoint))
                         or self._alerted.get(key, -1) >= top)  # fmt: skip
        if all(known):
            return alerts
        unknown = ~np.array(known, dtype=bool)[codes]
        if not self._settings.report_probes:
            # Answers that say the path does not exist are never learned, so a scanner's 404s would come back
            # here batch after batch: they are dropped as columns, not row by row.
            unknown &= ~np.isin(statuses_of(transactions), PROBE_STATUS_CODES)
        for row in np.flatnonzero(unknown).tolist():
            transaction = transactions[row]
            method = transaction.method.upper()
            endpoint = transaction.endpoint or transaction.path
            if (method, endpoint) in learned:
                continue  # learned from an earlier row of this batch
            if not method or not endpoint:
                continue
            if self._spec is None:
                finding = self._check_learned(transaction, method, endpoint)
            else:
                finding = self._check_spec(self._spec, transaction, method, endpoint)
            if finding is None:
                continue
            alert = self._alert_once(transaction, method, endpoint, *finding)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _check_spec(
        self, spec: ApiSpec, transaction: Transaction, method: str, endpoint: str
    ) -> tuple[str, str, str] | None:
        """(rule, severity, message) if the spec lacks this operation, else None."""
        if spec.allows(method, endpoint):
            return None
        template = endpoint if spec.is_template(endpoint) else spec.match(method, transaction.path)
        outcome = _outcome(transaction)
        if template is None:
            severity = _severity(transaction.status)
            probe = "; likely a probe" if severity == "low" else ""
            message = f"Undocumented endpoint {method} {endpoint} {outcome} (not in the OpenAPI spec{probe})"
            return "undocumented", severity, message
        if spec.allows(method, template):
            return None
        documented = ", ".join(spec.methods(template))
        message = f"Undocumented method {method} on {template} {outcome} (the OpenAPI spec documents only {documented})"
        return "undocumented_method", _severity(transaction.status), message

    def _check_learned(self, transaction: Transaction, method: str, endpoint: str) -> tuple[str, str, str] | None:
        if self._learning_ends_at is None:
            self._learning_ends_at = transaction.ts + self._settings.learning_period_s
        key = (method, endpoint)
        if key in self._learned:
            return None
        if transaction.ts < self._learning_ends_at:
            if len(self._learned) < self._settings.max_tracked_endpoints:
                self._learned.add(key)
            return None
        severity = "low" if transaction.status in PROBE_STATUSES else "medium"
        message = f"New endpoint {method} {endpoint} {_outcome(transaction)} (first seen after the learning period)"
        return "new_endpoint", severity, message

    def _alert_once(
        self, transaction: Transaction, method: str, endpoint: str, rule: str, severity: str, message: str
    ) -> Alert | None:
        key = (method, endpoint)
        rank = severity_rank(severity)
        previous = self._alerted.get(key, self._alerted_low.get(key))
        if previous is not None and rank <= previous:
            return None
        count = 1
        if previous is None and self._settings.min_count > 1:
            count = self._pending_counts.pop(key, 0) + 1
            if count < self._settings.min_count:
                self._remember_pending(key, count)
                return None
        self._remember_alerted(key, rank)
        return Alert(
            ts=transaction.ts,
            detector="shadow_endpoint",
            rule=rule,
            severity=severity,
            src_ip=transaction.src_ip,
            client_id=transaction.client_id,
            method=method,
            endpoint=endpoint,
            message=message,
            evidence=_evidence(transaction, endpoint),
            score=SEVERITY_SCORES[severity],
            count=count,
        )

    def _remember_pending(self, key: tuple[str, str], count: int) -> None:
        if len(self._pending_counts) >= self._settings.max_tracked_endpoints:
            self._pending_counts.popitem(last=False)
        self._pending_counts[key] = count

    def _remember_alerted(self, key: tuple[str, str], rank: int) -> None:
        self._alerted_low.pop(key, None)
        self._alerted.pop(key, None)
        if len(self._alerted_low) + len(self._alerted) >= self._settings.max_tracked_endpoints:
            (self._alerted_low or self._alerted).popitem(last=False)
        (self._alerted_low if rank == _LOW else self._alerted)[key] = rank

    @property
    def tracked_endpoints(self) -> int:
        """How many (method, endpoint) keys the detector holds across its tables, for tests and metrics."""
        return len(self._learned) + len(self._alerted_low) + len(self._alerted) + len(self._pending_counts)


def _severity(status: int | None) -> str:
    if status is not None and 200 <= status < 300:
        return "high"
    if status in PROBE_STATUSES:
        return "low"
    return "medium"


def _outcome(transaction: Transaction) -> str:
    if transaction.status is None:
        return f"from {transaction.src_ip} got no response"
    return f"answered {transaction.status} to {transaction.src_ip}"


def _evidence(transaction: Transaction, endpoint: str) -> str:
    """`GET /reset/abcd********wxyz?user=7 -> 200`: the example path with opaque parameter values masked.

    The query is already redacted by the parser; path segments sitting where the endpoint has a token or hex
    placeholder, or any parameter with a long value, are masked here.
    """
    segments = transaction.path.split("/")
    templated = endpoint.split("/")
    if len(templated) == len(segments):
        for index, placeholder in enumerate(templated):
            if "{" not in placeholder:
                continue
            if placeholder in _MASKED_PLACEHOLDERS or len(segments[index]) > _MAX_CLEAR_PARAMETER_CHARS:
                segments[index] = mask_middle(segments[index])
    path = "/".join(segments)
    query = f"?{transaction.query}" if transaction.query else ""
    status = transaction.status if transaction.status is not None else "no response"
    text = f"{transaction.method} {path}{query} -> {status}"
    return excerpt(text, 0, len(text), context=0)
