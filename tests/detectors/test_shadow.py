import os

import pytest

from detectors.alert import Alert
from detectors.openapi import ApiSpec
from detectors.shadow import ShadowDetector, ShadowSettings
from parsers.templating import EndpointTemplater
from parsers.transaction import Transaction

SPECS = os.path.join(os.path.dirname(__file__), "specs")
T0 = 1_700_000_000.0

# Most tests look at how probes are reported; by default (see the last test) they are not.
REPORTING = ShadowSettings(report_probes=True)


def transaction(
    method: str,
    path: str,
    status: int | None = 200,
    ts: float = T0,
    endpoint: str | None = None,
    query: str = "",
    src_ip: str = "127.0.0.66",
) -> Transaction:
    """A transaction as the pipeline hands it over; the endpoint is apispy's own template unless given."""
    return Transaction(
        ts=ts,
        src_ip=src_ip,
        src_port=40_000,
        dst_ip="127.0.0.1",
        dst_port=8080,
        method=method,
        uri=path + (f"?{query}" if query else ""),
        host="api.example.com",
        path=path,
        query=query,
        http_version="HTTP/1.1",
        endpoint=endpoint if endpoint is not None else EndpointTemplater().template(path),
        status=status,
        client_id=f"ip:{src_ip}",
    )


@pytest.fixture(scope="module")
def shop() -> ApiSpec:
    return ApiSpec.load(os.path.join(SPECS, "shop.yaml"))


def summary(alerts: list[Alert]) -> list[tuple[str, str, str, str]]:
    return [(alert.rule, alert.severity, alert.method, alert.endpoint) for alert in alerts]


# With a spec.


def test_undocumented_endpoint_answering_2xx_is_high_with_readable_message(shop):
    [alert] = ShadowDetector(shop, REPORTING).inspect([transaction("POST", "/v1/admin/export", 200)])
    assert alert == Alert(
        ts=T0,
        detector="shadow_endpoint",
        rule="undocumented",
        severity="high",
        src_ip="127.0.0.66",
        client_id="ip:127.0.0.66",
        method="POST",
        endpoint="/v1/admin/export",
        message="Undocumented endpoint POST /v1/admin/export answered 200 to 127.0.0.66 (not in the OpenAPI spec)",
        evidence="POST /v1/admin/export -> 200",
        score=0.9,
    )


@pytest.mark.parametrize(
    ("status", "severity"),
    [(404, "low"), (405, "low"), (501, "low"), (500, "medium"), (403, "medium"), (None, "medium")],
)
def test_undocumented_endpoint_severity_follows_the_answer(shop, status, severity):
    [alert] = ShadowDetector(shop, REPORTING).inspect([transaction("GET", "/v1/.env", status)])
    assert (alert.rule, alert.severity) == ("undocumented", severity)


def test_probe_answered_404_says_likely_a_probe(shop):
    [alert] = ShadowDetector(shop, REPORTING).inspect(
        [transaction("GET", "/wp-admin/setup.php", 404, src_ip="10.9.8.7")]
    )
    assert alert.message == (
        "Undocumented endpoint GET /wp-admin/setup.php answered 404 to 10.9.8.7 "
        "(not in the OpenAPI spec; likely a probe)"
    )


def test_unanswered_request_message(shop):
    [alert] = ShadowDetector(shop, REPORTING).inspect([transaction("GET", "/v1/debug", None)])
    assert alert.message == (
        "Undocumented endpoint GET /v1/debug from 127.0.0.66 got no response (not in the OpenAPI spec)"
    )
    assert alert.evidence == "GET /v1/debug -> no response"


def test_documented_operations_raise_nothing_whatever_the_endpoint_naming(shop):
    detector = ShadowDetector(shop, REPORTING)
    alerts = detector.inspect(
        [
            transaction("GET", "/v1/users/42", endpoint="/v1/users/{userId}"),  # the lead substituted the template
            transaction("GET", "/v1/users/42"),  # apispy's own `/v1/users/{id}`: matched against the spec here
            transaction("GET", "/v1/users/export"),
            transaction("HEAD", "/v1/users/42"),
            transaction("OPTIONS", "/v1/users/42", 204),
            transaction("GET", "/v1/users/"),
        ]
    )
    assert alerts == []


def test_spec_path_with_another_method_is_undocumented_method(shop):
    [alert] = ShadowDetector(shop, REPORTING).inspect(
        [transaction("DELETE", "/v1/users/42", 204, endpoint="/v1/users/{userId}")]
    )
    assert summary([alert]) == [("undocumented_method", "high", "DELETE", "/v1/users/{userId}")]
    assert alert.message == (
        "Undocumented method DELETE on /v1/users/{userId} answered 204 to 127.0.0.66 "
        "(the OpenAPI spec documents only GET, PUT)"
    )


def test_undocumented_method_found_by_path_when_endpoint_is_apispys_template(shop):
    [alert] = ShadowDetector(shop, REPORTING).inspect([transaction("DELETE", "/v1/users/42", 405)])
    assert summary([alert]) == [("undocumented_method", "low", "DELETE", "/v1/users/{id}")]
    assert "DELETE on /v1/users/{userId} answered 405" in alert.message


def test_each_method_endpoint_alerts_once(shop):
    detector = ShadowDetector(shop, REPORTING)
    first = detector.inspect([transaction("POST", "/v1/admin/export", 200, ts=T0 + index) for index in range(5)])
    later = detector.inspect([transaction("POST", "/v1/admin/export", 200, ts=T0 + 100, src_ip="10.0.0.2")])
    other_method = detector.inspect([transaction("GET", "/v1/admin/export", 200, ts=T0 + 101)])
    assert summary(first) == [("undocumented", "high", "POST", "/v1/admin/export")]
    assert later == []
    assert summary(other_method) == [("undocumented", "high", "GET", "/v1/admin/export")]


def test_probe_that_later_succeeds_alerts_again_with_higher_severity(shop):
    detector = ShadowDetector(shop, REPORTING)
    alerts = detector.inspect(
        [
            transaction("GET", "/v1/backup", 404),
            transaction("GET", "/v1/backup", 404),
            transaction("GET", "/v1/backup", 500),
            transaction("GET", "/v1/backup", 200),
            transaction("GET", "/v1/backup", 404),
            transaction("GET", "/v1/backup", 200),
        ]
    )
    assert [alert.severity for alert in alerts] == ["low", "medium", "high"]


def test_min_count_alerts_on_the_nth_occurrence_with_its_count(shop):
    detector = ShadowDetector(shop, ShadowSettings(min_count=3, report_probes=True))
    assert detector.inspect([transaction("POST", "/v1/admin/export", ts=T0 + index) for index in range(2)]) == []
    [alert] = detector.inspect([transaction("POST", "/v1/admin/export", ts=T0 + 2)])
    assert (alert.ts, alert.count) == (T0 + 2, 3)


def test_evidence_masks_token_and_long_parameter_segments_and_keeps_redacted_query(shop):
    token = "aZ3kQ9xP2mL7vB4nR8tY1wE6"
    [alert] = ShadowDetector(shop, REPORTING).inspect(
        [transaction("POST", f"/v1/reset/{token}", 200, query="user=7&token=REDACTED")]
    )
    assert alert.endpoint == "/v1/reset/{token}"
    assert alert.evidence == "POST /v1/reset/aZ3k****************1wE6?user=7&token=REDACTED -> 200"
    assert token not in alert.evidence


# Without a spec: learning by packet time.


def test_learning_period_counts_packet_time_from_first_transaction():
    detector = ShadowDetector(None, ShadowSettings(learning_period_s=60.0, report_probes=True))
    learned = detector.inspect(
        [
            transaction("GET", "/api/users/1", ts=T0),
            transaction("POST", "/api/orders", 201, ts=T0 + 59.9),
        ]
    )
    after = detector.inspect(
        [
            transaction("GET", "/api/users/2", ts=T0 + 61),
            transaction("POST", "/api/orders", 201, ts=T0 + 62),
            transaction("DELETE", "/api/users/3", 204, ts=T0 + 63),
            transaction("GET", "/api/admin", 200, ts=T0 + 64),
            transaction("GET", "/api/admin", 200, ts=T0 + 65),
            transaction("GET", "/.git/config", 404, ts=T0 + 66),
        ]
    )
    assert learned == []
    assert summary(after) == [
        ("new_endpoint", "medium", "DELETE", "/api/users/{id}"),
        ("new_endpoint", "medium", "GET", "/api/admin"),
        ("new_endpoint", "low", "GET", "/.git/config"),
    ]
    assert after[0].message == (
        "New endpoint DELETE /api/users/{id} answered 204 to 127.0.0.66 (first seen after the learning period)"
    )
    assert after[0].ts == T0 + 63


def test_learning_ignores_wall_clock_for_old_captures():
    detector = ShadowDetector(None, ShadowSettings(learning_period_s=3600.0, report_probes=True))
    old = 1_000_000_000.0  # 2001: a replayed capture far in the past
    assert detector.inspect([transaction("GET", "/a", ts=old), transaction("GET", "/b", ts=old + 3599)]) == []
    assert summary(detector.inspect([transaction("GET", "/c", ts=old + 3600)])) == [
        ("new_endpoint", "medium", "GET", "/c")
    ]


def test_zero_learning_period_reports_everything_after_the_first_instant():
    detector = ShadowDetector(None, ShadowSettings(learning_period_s=0.0, report_probes=True))
    assert summary(detector.inspect([transaction("GET", "/a")])) == [("new_endpoint", "medium", "GET", "/a")]


# Bounded memory.


def test_tables_stay_bounded_under_a_scan_of_distinct_endpoints(shop):
    settings = ShadowSettings(min_count=2, max_tracked_endpoints=100, report_probes=True)
    detector = ShadowDetector(shop, settings)
    for batch in range(10):
        detector.inspect([transaction("GET", f"/scan{batch}x{index}", 404) for index in range(1000)] * 2)
    assert detector.tracked_endpoints <= 200


def test_low_severity_keys_are_evicted_before_real_findings(shop):
    detector = ShadowDetector(shop, ShadowSettings(max_tracked_endpoints=10, report_probes=True))
    assert len(detector.inspect([transaction("POST", "/v1/admin/export", 200)])) == 1
    probes = detector.inspect([transaction("GET", f"/probe{index}", 404) for index in range(50)])
    assert len(probes) == 50
    assert detector.inspect([transaction("POST", "/v1/admin/export", 200)]) == []
    assert detector.tracked_endpoints == 10


def test_learned_endpoints_are_capped_and_never_evicted():
    detector = ShadowDetector(None, ShadowSettings(learning_period_s=10.0, max_tracked_endpoints=5, report_probes=True))
    detector.inspect([transaction("GET", f"/learn{index}", ts=T0 + index / 100) for index in range(8)])
    after = detector.inspect([transaction("GET", f"/learn{index}", ts=T0 + 20) for index in range(8)])
    assert [alert.endpoint for alert in after] == ["/learn5", "/learn6", "/learn7"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"learning_period_s": -1.0}, "learning_period_s must be >= 0, got -1.0"),
        ({"min_count": 0}, "min_count must be >= 1, got 0"),
        ({"max_tracked_endpoints": 0}, "max_tracked_endpoints must be >= 1, got 0"),
    ],
)
def test_settings_reject_bad_values_naming_the_key(settings, message):
    with pytest.raises(ValueError) as raised:
        ShadowSettings(**settings)
    assert str(raised.value) == message


def test_probes_answered_404_405_or_501_raise_nothing_by_default(shop) -> None:
    detector = ShadowDetector(shop)
    probes = [
        transaction("GET", "/.env", 404),
        transaction("DELETE", "/v1/users/42", 405),
        transaction("GET", "/v1/debug", 501),
    ]
    assert detector.inspect(probes) == []
    [alert] = detector.inspect([transaction("GET", "/v1/debug", 200)])
    assert alert.severity == "high"


@pytest.mark.parametrize("report_probes", [False, True])
@pytest.mark.parametrize("with_spec", [False, True])
def test_batches_of_any_size_raise_what_one_transaction_at_a_time_raises(shop, with_spec, report_probes) -> None:
    """A batch looks only at the rows whose operation it has not learned (or the spec lacks); an operation
    learned or reported by an earlier row of the same batch must be judged as if the rows came one by one."""
    import random

    from detectors.batchkeys import TransactionBatch

    rng = random.Random(3)
    paths = ["/users/1", "/users/2", "/orders/7", "/orders/7/items", "/admin/export", "/debug/vars", "/products",
             "/users/export", "/internal/health"]  # fmt: skip
    stream = [transaction(rng.choice(["GET", "POST", "DELETE"]), rng.choice(paths), rng.choice([200, 201, 404, 500]),
                          ts=T0 + index * 0.5) for index in range(600)]  # fmt: skip
    settings = ShadowSettings(learning_period_s=4.0, report_probes=report_probes)
    results, probes = [], []
    for size in (1, 7, 256):
        detector = ShadowDetector(shop if with_spec else None, settings)
        alerts = []
        for start in range(0, len(stream), size):
            alerts += detector.inspect(TransactionBatch(stream[start:start + size]))
        results.append(summary(alerts))
        probes.append(any(" answered 404 " in alert.message for alert in alerts))
    assert len(results[0]) > 5
    assert results[1:] == [results[0]] * 2
    assert probes == [report_probes] * 3
