"""Rate abuse, brute force and enumeration: sliding windows per client over packet time.

- `rate_abuse`: a client's requests in the window against a fixed limit (`client_rate`), a client's requests to
  one endpoint against a limit (`client_endpoint_rate`), and against the population (`population_outlier`: more
  than median + k·MAD of the active clients' counts, with at least `min_population` clients and above a floor),
  so a busy API's normal clients, all busy alike, do not trip it.
- `bruteforce`: 401/403 answers to one client in the window (`auth_failures`), and failed logins — a 4xx to a
  POST on a login-like endpoint (`failed_logins`).
- `enumeration`: distinct values of the templated ids (`{id}`, `{uuid}`, ...) one client walks on one endpoint
  in the window (`distinct_ids`): BOLA-style scraping.

Windows and counts live in numba kernels (detectors.windows) over slot arrays of bounded size (detectors.slots).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.alert import Alert
from detectors.slots import SlotTable
from detectors.windows import BITMAP_WORDS, robust_threshold, window_counts, window_distinct
from parsers.transaction import Transaction

NS_PER_S = 1_000_000_000
ALL_ENDPOINTS = "*"
LOGIN_ENDPOINT = re.compile(r"(?i)(log-?in|sign-?in|auth|token|session|password)")


@dataclass
class RateSettings:
    window_s: float = 10.0
    sub_windows: int = 10
    client_limit: int = 200  # requests per window from one client
    client_endpoint_limit: int = 120  # requests per window from one client to one endpoint
    population_k: float = 10.0
    population_floor: int = 60  # a population outlier needs at least this many requests in the window
    min_population: int = 4
    auth_window_s: float = 60.0
    auth_failure_limit: int = 20
    failed_login_limit: int = 10
    enumeration_window_s: float = 60.0
    enumeration_distinct_limit: int = 50
    max_clients: int = 100_000
    max_client_endpoints: int = 200_000


INITIAL_ROWS = 1024


class _Windows:
    """Counters of one kind: a slot table and the ring arrays its slots index."""

    def __init__(self, capacity: int, window_s: float, sub_windows: int, distinct: bool = False) -> None:
        self.sub_window_ns = max(1, int(window_s * NS_PER_S / sub_windows))
        # The arrays grow with the slots in use, up to `capacity`: allocated whole, the default capacities
        # would hold some 60 MB before the first client is seen.
        rows = min(capacity, INITIAL_ROWS)
        self.tags = np.full((rows, sub_windows), -1, np.int64)
        if distinct:
            self.values = np.zeros((rows, sub_windows, BITMAP_WORDS), np.uint64)
        else:
            self.values = np.zeros((rows, sub_windows), np.int64)
        self.table = SlotTable(capacity, self._reset)

    def _reset(self, slot: int) -> None:
        if slot < len(self.tags):
            self.tags[slot] = -1
            self.values[slot] = 0

    def _slots(self, keys: list) -> np.ndarray:
        slots = np.array(self.table.slots_of(keys), np.int64)
        rows = len(self.tags)
        needed = int(slots.max(initial=-1)) + 1
        if needed > rows:
            grown = min(self.table.capacity, max(needed, 2 * rows))
            tags = np.full((grown, *self.tags.shape[1:]), -1, np.int64)
            tags[:rows] = self.tags
            values = np.zeros((grown, *self.values.shape[1:]), self.values.dtype)
            values[:rows] = self.values
            self.tags, self.values = tags, values
        return slots

    def count(self, keys: list, ts_ns: np.ndarray, increments: np.ndarray) -> np.ndarray:
        slots = self._slots(keys)
        totals = np.zeros(len(keys), np.int64)
        window_counts(slots, ts_ns // self.sub_window_ns, increments, self.values, self.tags, totals)
        return totals

    def distinct(self, keys: list, ts_ns: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        slots = self._slots(keys)
        estimates = np.zeros(len(keys), np.float64)
        window_distinct(slots, ts_ns // self.sub_window_ns, hashes, self.values, self.tags, estimates)
        return estimates

    def current_totals(self, now_ns: int) -> np.ndarray:
        """Every slot's count over the window ending at `now_ns` (for the population baseline)."""
        now = now_ns // self.sub_window_ns
        used = len(self.table)
        tags = self.tags[:used]
        live = (tags > now - tags.shape[1]) & (tags <= now)
        return (self.values[:used] * live).sum(axis=1)


# Where an endpoint's templated segments are, per endpoint (a few thousand at most; forgotten all at once):
# (positions, number of segments, whether the only templated segment is the last).
_ID_POSITIONS_ENTRIES = 4096
_id_positions: dict[str, tuple[tuple[int, ...], int, bool]] = {}


def id_values(path: str, endpoint: str) -> str | None:
    """The concrete values at the templated positions of `endpoint` in `path` ("42" for /users/{id})."""
    if "{" not in endpoint:
        return None
    shape = _id_positions.get(endpoint)
    if shape is None:
        if len(_id_positions) >= _ID_POSITIONS_ENTRIES:
            _id_positions.clear()
        templates = endpoint.split("/")
        positions = tuple(position for position, template in enumerate(templates) if "{" in template)
        shape = _id_positions[endpoint] = (positions, len(templates), positions == (len(templates) - 1,))
    positions, count, last_only = shape
    if last_only and path.count("/") == count - 1:
        return path[path.rfind("/") + 1 :]  # the usual /users/{id}: the last segment
    segments = path.split("/")
    present = len(segments)
    values = [segments[position] for position in positions if position < present]
    return "/".join(values) if values else None


def first_per_key(rows: np.ndarray, keys: list) -> list[tuple[int, int]]:
    """(first row, number of rows) per key among `rows`: one alert per key and batch carries the rest as its
    count, instead of one alert object per transaction over a limit."""
    firsts: dict = {}
    for row in rows.tolist():
        key = keys[row]
        if key in firsts:
            firsts[key][1] += 1
        else:
            firsts[key] = [row, 1]
    return [(row, count) for row, count in firsts.values()]


class RateDetector:
    def __init__(self, settings: RateSettings | None = None) -> None:
        self.settings = settings = settings or RateSettings()
        self.clients = _Windows(settings.max_clients, settings.window_s, settings.sub_windows)
        self.client_endpoints = _Windows(settings.max_client_endpoints, settings.window_s, settings.sub_windows)
        self.auth = _Windows(settings.max_clients, settings.auth_window_s, settings.sub_windows)
        self.logins = _Windows(settings.max_clients, settings.auth_window_s, settings.sub_windows)
        self.enumeration = _Windows(
            settings.max_client_endpoints, settings.enumeration_window_s, settings.sub_windows, distinct=True
        )

    def inspect(self, transactions: Sequence[Transaction]) -> list[Alert]:
        if not transactions:
            return []
        ts_ns = np.rint(np.array([t.ts for t in transactions], np.float64) * NS_PER_S).astype(np.int64)
        if len(ts_ns) > 1 and (np.diff(ts_ns) < 0).any():
            order = np.argsort(ts_ns, kind="stable")
            ordered = [transactions[i] for i in order.tolist()]
            ts_ns = ts_ns[order]
        else:
            ordered = list(transactions)
        ones = np.ones(len(ordered), np.int64)
        clients = [t.client_id or t.src_ip for t in ordered]
        alerts: list[Alert] = []
        settings = self.settings

        totals = self.clients.count(clients, ts_ns, ones)
        for i, count in first_per_key(np.flatnonzero(totals >= settings.client_limit), clients):
            alerts.append(
                self._rate_alert(ordered[i], "client_rate", int(totals[i]), settings.client_limit, "requests", count)
            )
        pairs = [(client, t.endpoint) for client, t in zip(clients, ordered, strict=True)]
        pair_totals = self.client_endpoints.count(pairs, ts_ns, ones)
        for i, count in first_per_key(np.flatnonzero(pair_totals >= settings.client_endpoint_limit), pairs):
            alerts.append(
                self._rate_alert(
                    ordered[i],
                    "client_endpoint_rate",
                    int(pair_totals[i]),
                    settings.client_endpoint_limit,
                    f"requests to {ordered[i].endpoint}",
                    count,
                )
            )
        alerts.extend(self._population(ordered, clients, totals, ts_ns))

        statuses = np.array([t.status or 0 for t in ordered], np.int64)
        failures = ((statuses == 401) | (statuses == 403)).astype(np.int64)
        if failures.any():
            failure_totals = self.auth.count(clients, ts_ns, failures)
            over = np.flatnonzero((failures > 0) & (failure_totals >= settings.auth_failure_limit))
            for i, count in first_per_key(over, clients):
                alerts.append(
                    self._bruteforce_alert(
                        ordered[i], "auth_failures", int(failure_totals[i]), settings.auth_failure_limit, count
                    )
                )
        failed_logins = np.zeros(len(ordered), np.int64)
        for i in np.flatnonzero((statuses >= 400) & (statuses < 500)).tolist():
            if ordered[i].method == "POST" and LOGIN_ENDPOINT.search(ordered[i].endpoint):
                failed_logins[i] = 1
        if failed_logins.any():
            login_totals = self.logins.count(clients, ts_ns, failed_logins)
            over = np.flatnonzero((failed_logins > 0) & (login_totals >= settings.failed_login_limit))
            for i, count in first_per_key(over, pairs):
                alerts.append(
                    self._bruteforce_alert(
                        ordered[i], "failed_logins", int(login_totals[i]), settings.failed_login_limit, count
                    )
                )
        alerts.extend(self._enumeration(ordered, clients, ts_ns))
        return alerts

    def _population(self, ordered, clients, totals, ts_ns) -> list[Alert]:
        settings = self.settings
        population = self.clients.current_totals(int(ts_ns[-1]))
        active = population[population > 0]
        if len(active) < settings.min_population:
            return []
        threshold = robust_threshold(active.astype(np.float64), settings.population_k, float(settings.population_floor))
        return [
            self._rate_alert(
                ordered[i],
                "population_outlier",
                int(totals[i]),
                threshold,
                "requests, far above the other clients'",
                count,
            )
            for i, count in first_per_key(np.flatnonzero(totals > threshold), clients)
        ]

    def _enumeration(self, ordered, clients, ts_ns) -> list[Alert]:
        rows, keys, hashes = [], [], []
        for i, transaction in enumerate(ordered):
            if "{" not in transaction.endpoint:
                continue
            values = id_values(transaction.path, transaction.endpoint)
            if values is not None:
                rows.append(i)
                keys.append((clients[i], transaction.method, transaction.endpoint))
                hashes.append(zlib.crc32(values.encode("utf-8", "surrogateescape")))
        if not rows:
            return []
        estimates = self.enumeration.distinct(keys, ts_ns[rows], np.array(hashes, np.uint64))
        limit = self.settings.enumeration_distinct_limit
        alerts = []
        for position, count in first_per_key(np.flatnonzero(estimates >= limit), keys):
            transaction = ordered[rows[position]]
            distinct = int(round(estimates[position]))
            window = self.settings.enumeration_window_s
            message = (
                f"{transaction.client_id} requested about {distinct} different ids of {transaction.method} "
                f"{transaction.endpoint} within {window:g} s (limit {limit}): object enumeration "
                "(BOLA-style scraping)"
            )
            alerts.append(
                Alert.about(
                    transaction,
                    "enumeration",
                    "distinct_ids",
                    "high",
                    message,
                    f"{distinct} distinct ids in {window:g} s",
                    float(distinct) / limit,
                    count,
                )
            )
        return alerts

    def _rate_alert(
        self, transaction: Transaction, rule: str, total: int, limit: float, what: str, count: int
    ) -> Alert:
        window = self.settings.window_s
        severity = "high" if total >= 3 * limit else "medium"
        # A client-wide rule is about every endpoint: "*" keeps one alert per client, not one per endpoint.
        endpoint = transaction.endpoint if rule == "client_endpoint_rate" else ALL_ENDPOINTS
        method = transaction.method if rule == "client_endpoint_rate" else ""
        message = f"{transaction.client_id} sent {total} {what} within {window:g} s (limit {limit:g})"
        return Alert.about(
            transaction,
            "rate_abuse",
            rule,
            severity,
            message,
            f"{total} requests in {window:g} s",
            float(total) / max(limit, 1.0),
            count,
            method=method,
            endpoint=endpoint,
        )

    def _bruteforce_alert(self, transaction: Transaction, rule: str, total: int, limit: int, count: int) -> Alert:
        window = self.settings.auth_window_s
        what = "failed logins" if rule == "failed_logins" else "401/403 answers"
        per_endpoint = rule == "failed_logins"
        message = f"{transaction.client_id} got {total} {what} within {window:g} s (limit {limit}): credential guessing"
        evidence = (
            f"{total} {what} in {window:g} s, last {transaction.method} {transaction.endpoint} -> {transaction.status}"
        )
        return Alert.about(
            transaction,
            "bruteforce",
            rule,
            "high",
            message,
            evidence,
            float(total) / limit,
            count,
            method=None if per_endpoint else "",
            endpoint=None if per_endpoint else ALL_ENDPOINTS,
        )
