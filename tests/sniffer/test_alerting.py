"""Alerts out of a replay: JSON lines, api_alerts points, webhooks, the spec's endpoints and the inventory."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from support.samples import PCAPS, ROOT

APISPY = str(Path(sys.executable).with_name("apispy"))
SHOP_SPEC = ROOT / "tests" / "detectors" / "specs" / "shop.yaml"


def apispy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([APISPY, *args], capture_output=True, text=True, timeout=120)


def test_load_test_traffic_raises_rate_abuse_alerts_in_every_output(tmp_path: Path) -> None:
    alerts_path, points = tmp_path / "alerts.jsonl", tmp_path / "points.lp"
    result = apispy(
        "replay", "--alerts", str(alerts_path), "--line-protocol", str(points), str(PCAPS / "api_nginx_wrk.pcap")
    )
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in alerts_path.read_text().splitlines()]
    assert {(alert["detector"], alert["rule"]) for alert in alerts} >= {
        ("rate_abuse", "client_rate"),
        ("rate_abuse", "client_endpoint_rate"),
    }
    keys = [(a["detector"], a["rule"], a["client_id"], a["endpoint"]) for a in alerts if "repeated" not in a["message"]]
    assert len(keys) == len(set(keys)), "one first alert per key and suppression window"
    assert sum(1 for line in points.read_text().splitlines() if line.startswith("api_alerts,")) == len(alerts)
    assert f"alerts={len(alerts)}" in result.stderr


def test_normal_api_traffic_raises_no_high_alert_only_the_user_listing_bulk_emails() -> None:
    result = apispy("replay", "--alerts", "-", str(PCAPS / "api_python_curl.pcap"))
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    # GET /api/v1/users answers with every user's email: exactly what `email_bulk` exists to point out.
    assert {(a["detector"], a["rule"], a["severity"], a["endpoint"]) for a in alerts} == {
        ("data_exposure", "email_bulk", "medium", "/api/v1/users")}


class Recorder(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_alerts_reach_a_generic_webhook(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Recorder.received = []
    config = tmp_path / "apispy.toml"
    config.write_text(
        f"[[webhooks]]\nkind = 'generic'\nurl = 'http://127.0.0.1:{server.server_port}/hook'\nmin_severity = 'medium'\n"
    )
    try:
        result = apispy("replay", "--config", str(config), "--alerts", "-", str(PCAPS / "api_nginx_wrk.pcap"))
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    sent = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(Recorder.received) == len(sent) > 0
    assert {item["detector"] for item in Recorder.received} == {"rate_abuse"}
    assert all(item["source"] for item in Recorder.received)


def test_bad_webhook_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "apispy.toml"
    config.write_text("[[webhooks]]\nkind = 'carrier-pigeon'\nurl = 'http://127.0.0.1:9/'\n")
    result = apispy("replay", "--config", str(config), str(PCAPS / "edge_pipelined.pcap"))
    assert result.returncode == 2
    assert result.stderr.startswith("apispy: error: config: webhooks[0].kind must be one of")
    assert result.stderr.count("\n") == 1


def test_spec_templates_name_endpoints_and_the_inventory_marks_shadow_and_zombie(tmp_path: Path) -> None:
    spec = tmp_path / "api.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "openapi": "3.0.3",
                "info": {"title": "users", "version": "1"},
                "servers": [{"url": "/api/v1"}],
                "paths": {
                    "/users/{userId}": {"get": {"responses": {"200": {"description": "ok"}}}},
                    "/users": {
                        "get": {"responses": {"200": {"description": "ok"}}},
                        "post": {"responses": {"201": {"description": "ok"}}},
                    },
                    "/reports/{day}": {"get": {"responses": {"200": {"description": "never called"}}}},
                },
            }
        )
    )
    inventory = tmp_path / "inventory.json"
    result = apispy(
        "replay",
        "--spec",
        str(spec),
        "--inventory",
        str(inventory),
        "--alerts",
        "-",
        "--transactions",
        str(tmp_path / "tx.jsonl"),
        str(PCAPS / "api_python_curl.pcap"),
    )
    assert result.returncode == 0, result.stderr
    endpoints = {json.loads(line)["endpoint"] for line in (tmp_path / "tx.jsonl").read_text().splitlines()}
    assert "/api/v1/users/{userId}" in endpoints
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    shadow = {(alert["method"], alert["endpoint"]) for alert in alerts if alert["detector"] == "shadow_endpoint"}
    assert ("GET", "/api/v1/orders/{uuid}") in shadow
    assert ("GET", "/api/v1/users/{userId}") not in shadow
    document = json.loads(inventory.read_text())
    assert document["paths"]["/api/v1/reports/{day}"]["get"]["x-apispy-zombie"] is True
    assert document["paths"]["/api/v1/orders/{uuid}"]["get"]["x-apispy-shadow"] is True
    assert document["paths"]["/api/v1/users/{userId}"]["get"]["x-apispy-calls"] > 0


def test_unreadable_spec_is_one_line(tmp_path: Path) -> None:
    result = apispy("replay", "--spec", str(tmp_path / "missing.yaml"), str(PCAPS / "edge_pipelined.pcap"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "missing.yaml" in result.stderr


def test_an_idle_live_link_hands_waiting_transactions_to_the_detectors(tmp_path: Path) -> None:
    """A quiet API's last transactions do not wait for a batch to fill: once the link is idle for the batch's
    delay, a tick inspects them and their alerts go out while the run goes on."""
    from sniffer.alerting import AlertOutputs
    from sniffer.capture.pcapfile import open_capture
    from sniffer.config import load_config
    from sniffer.replay import Run

    config = load_config()
    alerting = AlertOutputs(config, str(tmp_path / "alerts.jsonl"), None)
    run = Run(config, lambda transaction: None, None, alerting)
    for batch in open_capture(str(PCAPS / "attacks_bruteforce_injection.pcap")).batches():
        run.feed(batch)
    engine = alerting.engine
    waiting = len(engine.collector)
    assert waiting  # the capture's last transactions: fewer than a batch
    started_ns = int(engine.collector.started_s * 1e9)
    delay_ns = int(config.detectors.max_batch_delay_s * 1e9)
    run.tick(started_ns + delay_ns // 2)
    assert len(engine.collector) == waiting
    inspected = engine.raised
    run.tick(started_ns + delay_ns + 1_000_000)
    assert not len(engine.collector) and engine.raised > inspected  # the last transactions hold the brute force's end
    alerting.close()
