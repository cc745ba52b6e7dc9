"""Every panel of the shipped Grafana dashboard, its InfluxQL run against a real InfluxDB after a replay.

Grafana fills the macros before sending InfluxQL: `$timeFilter` becomes `time >= <from>ms and time <= <to>ms`,
`$__interval` / `$interval` a duration such as `10s`, `$__interval_ms` its milliseconds, and a template variable
its value, regex-escaped (or the variable's `allValue` for "All").
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.samples import PCAPS, ROOT

from sniffer.metrics import ALERTS_MEASUREMENT
from sniffer.sinks.influx import InfluxSettings, InfluxWriter
from sniffer.sinks.lineprotocol import Point

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards" / "apispy.json").read_text())
APISPY = str(Path(sys.executable).with_name("apispy"))
# The bundled capture's packet time, and a window around it as Grafana's time picker would send it.
FROM_MS, TO_MS = 1_795_650_000_000, 1_795_650_100_000


def grafana_query(query: str, endpoint: str, interval_s: int = 10) -> str:
    return (
        query.replace("$timeFilter", f"time >= {FROM_MS}ms and time <= {TO_MS}ms")
        .replace("$__interval_ms", str(interval_s * 1000))
        .replace("$__interval", f"{interval_s}s")
        .replace("$interval", f"{interval_s}s")
        .replace("$endpoint", endpoint)
    )


def grafana_regex_escape(value: str) -> str:
    return re.sub(r"([\\^$.|?*+()\[\]{}/])", r"\\\1", value)


PANEL_TARGETS = [(panel["title"], target["query"]) for panel in DASHBOARD["panels"] for target in panel["targets"]]


@pytest.fixture(scope="module")
def replayed(influx_server):
    influx_server.drop_all()
    subprocess.run(
        [APISPY, "replay", "--quiet", "--interval", "10", "--influx-url", influx_server.url, "--influx-bucket",
         influx_server.bucket, str(PCAPS / "api_python_curl.pcap")],
        check=True, timeout=120,
    )
    # Detectors (a later stage) write api_alerts; one alert through the same writer makes that panel testable.
    writer = InfluxWriter(InfluxSettings(url=influx_server.url, bucket=influx_server.bucket))
    writer.write([Point(ALERTS_MEASUREMENT, {"detector": "rate_abuse", "severity": "high",
                                             "endpoint": "/api/v1/users/{id}"},
                        {"count": 3, "score": 0.9}, 1_795_650_010_000_000_000)])
    assert writer.close() is None
    return influx_server


def test_dashboard_covers_what_users_watch() -> None:
    titles = {title for title, _ in PANEL_TARGETS}
    for needed in ("Request rate by endpoint", "Error rate", "Latency percentiles by endpoint", "Top endpoints",
                   "Alerts", "Capture health"):
        assert needed in titles


@pytest.mark.parametrize(("title", "query"), PANEL_TARGETS, ids=[title for title, _ in PANEL_TARGETS])
@pytest.mark.parametrize("endpoint", [".*", grafana_regex_escape("/api/v1/users/{id}")], ids=["all", "one"])
def test_panel_query_returns_series_after_a_replay(replayed, title: str, query: str, endpoint: str) -> None:
    series = replayed.query(grafana_query(query, endpoint), epoch="ms")
    assert series, title
    values = [value for one in series for row in one["values"] for value in row[1:] if value is not None]
    assert values, title


def test_request_rate_panel_adds_up_to_the_transactions(replayed) -> None:
    query = grafana_query(DASHBOARD["panels"][0]["targets"][0]["query"], ".*")
    series = replayed.query(query, epoch="ms")
    per_second = sum(value for one in series for _, value in one["values"] if value)
    assert per_second * 10 == pytest.approx(94)


def test_endpoint_variable_lists_the_templated_endpoints(replayed) -> None:
    variable = DASHBOARD["templating"]["list"][0]
    values = {row[1] for series in replayed.query(variable["query"]) for row in series["values"]}
    assert {"/api/v1/users/{id}", "/api/v1/orders/{uuid}"} <= values


def test_provisioning_points_at_the_dashboard_and_the_datasource_uid() -> None:
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "apispy.yaml").read_text())
    uids = {source["uid"] for source in datasource["datasources"]}
    used = {panel["datasource"]["uid"] for panel in DASHBOARD["panels"]}
    assert used == uids == {"apispy-influxdb"}
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "apispy.yaml").read_text())
    assert provider["providers"][0]["type"] == "file"
