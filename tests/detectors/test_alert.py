"""The alert record: renaming the endpoint an alert is about (what the parent of several workers does); a batch's
alerts by row."""

from __future__ import annotations

from dataclasses import replace

from detectors.alert import RowAlerts
from detectors.signatures import SignatureSet, injection_alerts
from parsers.transaction import Transaction


def test_an_alert_about_another_name_of_its_endpoint_says_so_in_its_message_too() -> None:
    target = "/api/shops/red-fox/items?id=1%20UNION%20SELECT%20password%20FROM%20users--"
    transaction = Transaction(
        ts=1700000000.5, src_ip="127.0.0.66", src_port=40000, dst_ip="10.0.0.1", dst_port=80, method="GET",
        uri=target, host="api.example.com", path="/api/shops/red-fox/items", query="", http_version="HTTP/1.1",
        endpoint="/api/shops/red-fox/items", status=200, client_id="127.0.0.66", raw_target=target,
    )  # fmt: skip
    [alert] = injection_alerts(SignatureSet(), transaction)
    assert "GET /api/shops/red-fox/items" in alert.message

    renamed = alert.about_endpoint("/api/shops/{param}/items")

    assert renamed.endpoint == "/api/shops/{param}/items"
    assert renamed.message == alert.message.replace("/api/shops/red-fox/items", "/api/shops/{param}/items")
    assert (renamed.ts, renamed.detector, renamed.rule, renamed.evidence, renamed.count) == (
        alert.ts, alert.detector, alert.rule, alert.evidence, alert.count,
    )  # fmt: skip


def test_row_alerts_make_a_rows_list_when_asked_and_give_the_alerts_in_row_order() -> None:
    target = "/items?q=%3Cscript%3Ealert(1)%3C/script%3E"
    transaction = Transaction(
        ts=1700000000.5, src_ip="127.0.0.66", src_port=40000, dst_ip="10.0.0.1", dst_port=80, method="GET",
        uri=target, host="api.example.com", path="/items", query="", http_version="HTTP/1.1", endpoint="/items",
        raw_target=target,
    )  # fmt: skip
    [xss] = injection_alerts(SignatureSet(), transaction)
    first, second, third = (replace(xss, ts=xss.ts + n) for n in range(3))
    alerts = RowAlerts()
    assert alerts.in_row_order() == [] and alerts.as_lists(2) == [[], []]
    alerts[7].append(third)
    alerts[2].extend([first, second])
    assert alerts[5] == [] and sorted(alerts) == [2, 5, 7]  # asking makes the row's list
    assert alerts.in_row_order() == [first, second, third]
    assert alerts.as_lists(8) == [[], [], [first, second], [], [], [], [], [third]]
