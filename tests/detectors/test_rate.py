"""Rate abuse, brute force and enumeration on synthetic traffic with known answers."""

from __future__ import annotations

from detectors.dedup import Deduplicator
from detectors.rate import RateDetector, RateSettings
from parsers.transaction import Transaction


def tx(
    ts: float,
    client: str,
    path: str = "/api/v1/products",
    endpoint: str | None = None,
    method: str = "GET",
    status: int = 200,
) -> Transaction:
    return Transaction(
        ts=ts,
        src_ip=client,
        src_port=40000,
        dst_ip="10.0.0.1",
        dst_port=80,
        method=method,
        uri=path,
        host="api",
        path=path,
        query="",
        http_version="1.1",
        endpoint=endpoint or path,
        status=status,
        client_id=client,
    )


def rules(alerts) -> set[tuple[str, str, str]]:
    return {(alert.detector, alert.rule, alert.client_id) for alert in alerts}


def normal_traffic(seconds: int, clients: int = 6, per_second: int = 3) -> list[Transaction]:
    return [
        tx(second + k / per_second, f"10.1.0.{c}")
        for second in range(seconds)
        for c in range(clients)
        for k in range(per_second)
    ]


def test_normal_clients_of_a_busy_api_raise_nothing() -> None:
    detector = RateDetector()
    traffic = normal_traffic(120, clients=20, per_second=5)
    alerts = [
        alert for start in range(0, len(traffic), 1000) for alert in detector.inspect(traffic[start : start + 1000])
    ]
    assert alerts == []


def test_a_burst_from_one_client_is_rate_abuse() -> None:
    detector = RateDetector()
    traffic = normal_traffic(30) + [tx(10 + i / 100, "10.6.6.6") for i in range(300)]
    alerts = detector.inspect(traffic)
    assert ("rate_abuse", "client_rate", "10.6.6.6") in rules(alerts)
    assert ("rate_abuse", "client_endpoint_rate", "10.6.6.6") in rules(alerts)
    assert ("rate_abuse", "population_outlier", "10.6.6.6") in rules(alerts)
    assert {alert.client_id for alert in alerts} == {"10.6.6.6"}
    first = min(alerts, key=lambda alert: alert.ts)
    assert first.message.startswith("10.6.6.6 sent ")


def test_a_client_without_an_id_is_counted_by_its_address() -> None:
    """Clients are keyed by client_id, and by the source address where there is none."""
    from dataclasses import replace

    detector = RateDetector()
    burst = [tx(10 + i / 100, "10.6.6.6") for i in range(250)] + [tx(11.5 + i / 100, "10.6.6.7") for i in range(60)]
    traffic = [replace(transaction, client_id="") if i % 2 else transaction for i, transaction in enumerate(burst)]
    alerts = detector.inspect(sorted(traffic, key=lambda transaction: transaction.ts))
    assert ("rate_abuse", "client_rate", "10.6.6.6") in rules(alerts)  # 250 from one address, half without an id
    assert all(alert.src_ip == "10.6.6.6" for alert in alerts if alert.rule == "client_rate")


def test_the_window_slides_with_packet_time() -> None:
    detector = RateDetector(RateSettings(window_s=10, client_limit=50))
    slow = [tx(i * 0.5, "10.0.0.9") for i in range(200)]  # 2 per second for 100 s: 20 per window
    assert detector.inspect(slow) == []


def test_failed_logins_and_auth_failures_are_bruteforce() -> None:
    detector = RateDetector()
    attempts = [tx(100 + i, "10.7.7.7", "/api/v1/login", method="POST", status=401) for i in range(25)]
    honest = [tx(100 + i, "10.1.1.1", "/api/v1/login", method="POST", status=401) for i in range(2)]
    alerts = detector.inspect(attempts + honest)
    assert rules(alerts) == {("bruteforce", "failed_logins", "10.7.7.7"), ("bruteforce", "auth_failures", "10.7.7.7")}


def test_walking_ids_is_enumeration_and_rereading_is_not() -> None:
    detector = RateDetector()
    walk = [tx(200 + i * 0.1, "10.8.8.8", f"/api/v1/users/{i}", "/api/v1/users/{id}") for i in range(1, 120)]
    reread = [tx(200 + i * 0.1, "10.1.2.3", f"/api/v1/users/{i % 5}", "/api/v1/users/{id}") for i in range(120)]
    alerts = detector.inspect(walk + reread)
    assert rules(alerts) == {("enumeration", "distinct_ids", "10.8.8.8")}


def test_client_tables_are_bounded() -> None:
    detector = RateDetector(RateSettings(max_clients=10, max_client_endpoints=10))
    detector.inspect([tx(i * 0.01, f"10.9.{i // 250}.{i % 250}") for i in range(1000)])
    assert len(detector.clients.table) == 10
    assert detector.clients.table.evictions == 990


def test_dedup_reports_once_per_window_and_counts_the_rest() -> None:
    detector = RateDetector()
    dedup = Deduplicator(suppression_s=300)
    first_batch = [tx(10 + i / 100, "10.6.6.6") for i in range(400)]
    second_batch = [tx(14 + i / 100, "10.6.6.6") for i in range(100)]
    reported = dedup.admit(sorted(detector.inspect(first_batch), key=lambda alert: alert.ts))
    assert sorted(alert.rule for alert in reported) == ["client_endpoint_rate", "client_rate"]
    client_rate = next(alert for alert in reported if alert.rule == "client_rate")
    assert client_rate.count == 400 - 200 + 1  # every request from the 200th on is over the limit
    assert dedup.admit(sorted(detector.inspect(second_batch), key=lambda alert: alert.ts)) == []
    follow_ups = dedup.finish()
    assert sorted(alert.rule for alert in follow_ups) == ["client_endpoint_rate", "client_rate"]
    assert next(alert for alert in follow_ups if alert.rule == "client_rate").count == 100
    assert all("repeated" in alert.message for alert in follow_ups)


def test_engine_hands_on_a_batch_once_its_bodies_add_up_to_the_bound() -> None:
    from dataclasses import replace

    from detectors.engine import DetectionEngine, DetectorSettings

    seen: list[int] = []

    class Counting:
        def inspect(self, transactions):
            seen.append(len(transactions))
            return []

    engine = DetectionEngine(
        [Counting()], DetectorSettings(batch_size=1000, max_batch_body_bytes=10_000), lambda alert: None
    )
    for index in range(10):
        engine.observe(replace(tx(index / 100, "10.0.0.1"), resp_body=b"x" * 3000))
    engine.finish()
    assert seen == [4, 4, 2]


def test_engine_hands_on_a_batch_once_a_transaction_comes_its_delay_after_the_first() -> None:
    """However few transactions come, they wait at most `max_batch_delay_s` of packet time for the detectors;
    an idle live link's wall time hands them on too (`flush_due`)."""
    from detectors.engine import DetectionEngine, DetectorSettings

    seen: list[list[float]] = []

    class Recording:
        def inspect(self, transactions):
            seen.append([transaction.ts for transaction in transactions])
            return []

    engine = DetectionEngine([Recording()], DetectorSettings(max_batch_delay_s=1.0), lambda alert: None)
    for ts in (0.0, 0.4, 0.99, 1.0, 1.5, 2.2):
        engine.observe(tx(ts, "10.0.0.1"))
    assert seen == [[0.0, 0.4, 0.99], [1.0, 1.5]]
    engine.flush_due(3.1)
    assert seen[-1] == [1.0, 1.5]  # 2.2 has waited 0.9 s: not yet
    engine.flush_due(3.2)
    assert seen[-1] == [2.2]
    engine.finish()
    assert len(seen) == 3


def test_a_batch_out_of_time_order_raises_what_it_raises_in_time_order() -> None:
    """Rows come in the order their responses ended, not their requests' times: the detector orders a batch by
    time, and recodes its clients so (tables small enough to evict, so the order clients are met in matters)."""
    import random
    from dataclasses import replace

    settings = RateSettings(
        client_limit=12, client_endpoint_limit=8, max_clients=4, max_client_endpoints=5, min_population=2,
        population_floor=4, auth_failure_limit=3, enumeration_distinct_limit=4,
    )  # fmt: skip
    rows = [
        tx(100 + n * 0.01, f"10.3.0.{n * 7 % 6}", f"/api/v1/users/{n % 9}", "/api/v1/users/{id}",
           status=401 if n % 4 == 0 else 200)
        for n in range(160)
    ]  # fmt: skip
    batches = [rows[start : start + 40] for start in range(0, len(rows), 40)]
    batches[-1] += [replace(row, client_id="", ts=row.ts + 0.005) for row in batches[-1][::5]]  # by address
    ordered_detector, shuffled_detector = RateDetector(settings), RateDetector(settings)
    shuffle = random.Random(7).shuffle
    raised = set()
    for batch in batches:
        by_time = ordered_detector.inspect(sorted(batch, key=lambda row: row.ts))
        shuffle(batch)
        assert shuffled_detector.inspect(batch) == by_time
        assert list(shuffled_detector.clients.table.slots.items()) == list(ordered_detector.clients.table.slots.items())
        raised |= {alert.rule for alert in by_time}
    assert raised >= {"client_rate", "client_endpoint_rate", "auth_failures", "distinct_ids"}
