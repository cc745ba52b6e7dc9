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
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter

import numpy as np

from detectors.alert import Alert
from detectors.batchkeys import Groups, codes_of, columns_of, group, group_rows, operations_of, statuses_of
from detectors.ids import batch_id_hashes
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

    def _slots(self, keys: list, groups: Groups) -> np.ndarray:
        """Each row's slot, from the batch's distinct `keys` (one per group): the table is asked once per key, in
        the order of their last rows, so its recency order is the same as if every row had been looked up."""
        key_slots = np.empty(len(keys), np.int64)
        slot = self.table.slot
        for code in groups.recency_order().tolist():
            key_slots[code] = slot(keys[code])
        rows = len(self.tags)
        needed = int(key_slots.max(initial=-1)) + 1
        if needed > rows:
            grown = min(self.table.capacity, max(needed, 2 * rows))
            tags = np.full((grown, *self.tags.shape[1:]), -1, np.int64)
            tags[:rows] = self.tags
            values = np.zeros((grown, *self.values.shape[1:]), self.values.dtype)
            values[:rows] = self.values
            self.tags, self.values = tags, values
        return key_slots[groups.codes]

    def count(self, keys: list, groups: Groups, ts_ns: np.ndarray, increments: np.ndarray) -> np.ndarray:
        slots = self._slots(keys, groups)
        totals = np.zeros(len(slots), np.int64)
        window_counts(slots, ts_ns // self.sub_window_ns, increments, self.values, self.tags, totals)
        return totals

    def distinct(self, keys: list, groups: Groups, ts_ns: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        slots = self._slots(keys, groups)
        estimates = np.zeros(len(slots), np.float64)
        window_distinct(slots, ts_ns // self.sub_window_ns, hashes, self.values, self.tags, estimates)
        return estimates

    def current_totals(self, now_ns: int) -> np.ndarray:
        """Every slot's count over the window ending at `now_ns` (for the population baseline)."""
        now = now_ns // self.sub_window_ns
        used = len(self.table)
        tags = self.tags[:used]
        live = (tags > now - tags.shape[1]) & (tags <= now)
        return (self.values[:used] * live).sum(axis=1)


class _InOrder:
    """A batch's transactions read in another order (`order[i]`: the batch's row read as row i), without a
    sequence of them made in that order: only the rows that raise an alert are read."""

    __slots__ = ("order", "transactions")

    def __init__(self, transactions: Sequence[Transaction], order: np.ndarray) -> None:
        self.transactions = transactions
        self.order = order

    def __getitem__(self, row: int) -> Transaction:
        return self.transactions[self.order[row]]

    def __len__(self) -> int:
        return len(self.order)


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
        columns = columns_of(transactions)
        ts_ns = np.rint(columns.ts * NS_PER_S).astype(np.int64)
        # Columns the other detectors read too, coded once per batch (in arrival order).
        endpoints, endpoint_codes = columns.distinct_endpoints, columns.endpoint_codes
        operations, operation_codes = operations_of(transactions)
        clients, client_codes = columns.distinct_clients, columns.client_codes
        ordered: Sequence[Transaction] | _InOrder = transactions
        order = None  # the batch's rows in time order, where they came otherwise
        if len(ts_ns) > 1 and (np.diff(ts_ns) < 0).any():
            order = np.argsort(ts_ns, kind="stable")
            ordered = _InOrder(transactions, order)
            ts_ns, endpoint_codes, operation_codes = ts_ns[order], endpoint_codes[order], operation_codes[order]
            client_codes = client_codes[order]
        # Coded in time order: the client windows' keys are looked up by group, and groups are numbered by first
        # row, as codes_of numbers the clients (the columns numbered them in arrival order).
        if "" in clients:  # rare: no client id, the address stands in
            client_ids, addresses = columns.client_ids, columns.src_ips
            if order is not None:
                rows = itemgetter(*order.tolist())  # a tuple of rows: two rows at least
                client_ids, addresses = rows(client_ids), rows(addresses)
            clients, client_codes = codes_of([client or address for client, address in
                                              zip(client_ids, addresses, strict=True)])  # fmt: skip
        elif order is not None:
            arrival_codes = client_codes
            client_codes, firsts, _ = group_rows(arrival_codes)
            clients = [clients[code] for code in arrival_codes[firsts].tolist()]
        ones = np.ones(len(ordered), np.int64)
        alerts: list[Alert] = []
        settings = self.settings

        by_client = group((len(clients), client_codes))
        totals = self.clients.count(clients, by_client, ts_ns, ones)
        for i, count in by_client.first_per_group(np.flatnonzero(totals >= settings.client_limit)):
            alerts.append(
                self._rate_alert(ordered[i], "client_rate", int(totals[i]), settings.client_limit, "requests", count)
            )
        by_pair = group((len(clients), client_codes), (len(endpoints), endpoint_codes))
        pairs = [(clients[client_codes[row]], endpoints[endpoint_codes[row]]) for row in by_pair.firsts.tolist()]
        pair_totals = self.client_endpoints.count(pairs, by_pair, ts_ns, ones)
        for i, count in by_pair.first_per_group(np.flatnonzero(pair_totals >= settings.client_endpoint_limit)):
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
        alerts.extend(self._population(ordered, by_client, totals, ts_ns))

        statuses = statuses_of(transactions)
        if order is not None:
            statuses = statuses[order]
        failures = ((statuses == 401) | (statuses == 403)).astype(np.int64)
        if failures.any():
            failure_totals = self.auth.count(clients, by_client, ts_ns, failures)
            over = np.flatnonzero((failures > 0) & (failure_totals >= settings.auth_failure_limit))
            for i, count in by_client.first_per_group(over):
                alerts.append(
                    self._bruteforce_alert(
                        ordered[i], "auth_failures", int(failure_totals[i]), settings.auth_failure_limit, count
                    )
                )
        logins = np.array([method == "POST" and LOGIN_ENDPOINT.search(endpoint) is not None
                           for method, endpoint in operations], dtype=bool)  # fmt: skip
        failed_logins = (logins[operation_codes] & (statuses >= 400) & (statuses < 500)).astype(np.int64)
        if failed_logins.any():
            login_totals = self.logins.count(clients, by_client, ts_ns, failed_logins)
            over = np.flatnonzero((failed_logins > 0) & (login_totals >= settings.failed_login_limit))
            for i, count in by_pair.first_per_group(over):
                alerts.append(
                    self._bruteforce_alert(
                        ordered[i], "failed_logins", int(login_totals[i]), settings.failed_login_limit, count
                    )
                )
        alerts.extend(
            self._enumeration(ordered, order, columns, clients, client_codes, endpoints, endpoint_codes, operations,
                              operation_codes, ts_ns)
        )  # fmt: skip
        return alerts

    def _population(self, ordered, by_client: Groups, totals, ts_ns) -> list[Alert]:
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
            for i, count in by_client.first_per_group(np.flatnonzero(totals > threshold))
        ]

    def _enumeration(
        self, ordered, order, columns, clients, client_codes, endpoints, endpoint_codes, operations, operation_codes,
        ts_ns,
    ) -> list[Alert]:  # fmt: skip
        """Distinct ids per (client, method, endpoint): only the rows whose endpoint has a placeholder. Rows are
        in time order (`order`: where each came in the batch, None if as they came)."""
        templated = np.array(["{" in endpoint for endpoint in endpoints], bool)[endpoint_codes]
        candidates = np.flatnonzero(templated)
        if not len(candidates):
            return []
        arrival_rows = candidates if order is None else order[candidates]
        paths = list(map(columns.paths.__getitem__, arrival_rows.tolist()))
        path_lengths = columns.path_lengths[arrival_rows]
        named, hashes = batch_id_hashes(paths, endpoints, endpoint_codes[candidates], path_lengths)
        rows = candidates[named]
        if not len(rows):
            return []
        hashes = hashes[named]
        client_codes, operation_codes = client_codes[rows], operation_codes[rows]
        by_key = group((len(clients), client_codes), (len(operations), operation_codes))
        keys = [(clients[client_codes[row]], *operations[operation_codes[row]]) for row in by_key.firsts.tolist()]
        estimates = self.enumeration.distinct(keys, by_key, ts_ns[rows], hashes)
        limit = self.settings.enumeration_distinct_limit
        alerts = []
        for position, count in by_key.first_per_group(np.flatnonzero(estimates >= limit)):
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
