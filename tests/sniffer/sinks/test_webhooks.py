"""Webhook delivery against a real HTTP server on loopback: vendor formats, thresholds, retries, dead targets."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from detectors.alert import Alert
from detectors.evidence import mask_middle
from sniffer.sinks.webhooks import (
    WebhookDispatcher,
    WebhookSettings,
    WebhookTarget,
    webhook_targets_from_config,
)

FAST = WebhookSettings(timeout_s=2.0, max_attempts=5, backoff_initial_s=0.01, backoff_max_s=0.05)
RAW_TOKEN = "sk_live_51HcQ7uLkdIwHu7ixQWERTYzxcvb9876"
EVIDENCE = f"Authorization: Bearer {mask_middle(RAW_TOKEN)}"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class RecordingServer:
    """A real HTTP server on 127.0.0.1 that records POSTs and answers from a script, then with 200 "ok".

    `replies` are answered in order before the default; `hang` makes every request wait until the server
    stops (or `release` is set) before answering.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.replies: list[Reply] = []
        self.hang = False
        self.release = threading.Event()
        self.changed = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with recorder.changed:
                    recorder.requests.append(Received(self.path, dict(self.headers), body, time.monotonic()))
                    reply = recorder.replies.pop(0) if recorder.replies else Reply(200, body=b"ok")
                    recorder.changed.notify_all()
                if recorder.hang:
                    recorder.release.wait(10)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[Received]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.requests) >= count, timeout_s)
            return list(self.requests)

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback is reached directly even where the environment names an HTTP proxy."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    recording = RecordingServer()
    yield recording
    recording.stop()


@pytest.fixture
def second_server() -> Iterator[RecordingServer]:
    recording = RecordingServer()
    yield recording
    recording.stop()


@pytest.fixture
def refused_url() -> str:
    """A loopback port with nothing listening: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def make_alert(severity: str = "high", **changes) -> Alert:
    values = dict(
        ts=1_700_000_000.25, detector="injection", rule="sql_union", severity=severity, src_ip="10.0.0.7",
        client_id="10.0.0.7", method="GET", endpoint="/api/users/{id}", message="UNION SELECT in query string",
        evidence=EVIDENCE, score=0.93, count=3,
    )
    values.update(changes)
    return Alert(**values)


def deliver(target: WebhookTarget, *alerts: Alert, settings: WebhookSettings = FAST) -> WebhookDispatcher:
    dispatcher = WebhookDispatcher([target], settings)
    for alert in alerts:
        dispatcher.submit(alert)
    dispatcher.close(timeout_s=5)
    return dispatcher


def all_strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from all_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from all_strings(item)


def test_slack_payload_is_block_kit_with_fields_and_evidence(server: RecordingServer) -> None:
    deliver(WebhookTarget("slack", server.url + "/services/T0/B0/x"), make_alert())
    (request,) = server.requests
    body = request.json
    assert request.path == "/services/T0/B0/x"
    assert request.headers["Content-Type"] == "application/json"
    assert set(body) == {"text", "blocks"}
    assert body["text"] == "[HIGH] injection/sql_union: GET /api/users/{id} — UNION SELECT in query string"
    header, message, facts, evidence, context = body["blocks"]
    assert header == {"type": "header",
                      "text": {"type": "plain_text", "text": "apispy: [HIGH] injection/sql_union: GET /api/users/{id}"}}
    assert message == {"type": "section", "text": {"type": "mrkdwn", "text": "UNION SELECT in query string"}}
    assert facts["type"] == "section"
    assert [item["text"] for item in facts["fields"]] == [
        "*Detector*\ninjection", "*Rule*\nsql_union", "*Severity*\nhigh", "*Client*\n10.0.0.7",
        "*Endpoint*\nGET /api/users/{id}", "*Count*\n3", "*Score*\n0.93",
    ]
    assert all(item["type"] == "mrkdwn" for item in facts["fields"])
    assert evidence == {"type": "section", "text": {"type": "mrkdwn", "text": f"*Evidence*\n```{EVIDENCE}```"}}
    assert context == {"type": "context",
                       "elements": [{"type": "mrkdwn", "text": "apispy · 2023-11-14T22:13:20.250+00:00"}]}


def test_slack_texts_are_cut_to_block_kit_limits(server: RecordingServer) -> None:
    long_alert = make_alert(message="m" * 5000, evidence="e&" * 2000, endpoint="/" + "p" * 3000)
    deliver(WebhookTarget("slack", server.url), long_alert)
    body = server.requests[0].json
    header, message, facts, evidence, context = body["blocks"]
    assert len(header["text"]["text"]) == 150
    assert len(body["text"]) == 3000
    assert len(message["text"]["text"]) == 3000 and message["text"]["text"].endswith("…")
    assert len(facts["fields"]) <= 10
    assert all(len(item["text"]) <= 2000 for item in facts["fields"])
    evidence_text = evidence["text"]["text"]
    assert len(evidence_text) <= 3000 and evidence_text.endswith("…```")
    assert "&amp…" not in evidence_text and "&am…" not in evidence_text and "&a…" not in evidence_text


def test_slack_escapes_mrkdwn_control_characters(server: RecordingServer) -> None:
    deliver(WebhookTarget("slack", server.url), make_alert(evidence="q=<!channel> & <@U123>", message="a<b>"))
    body = server.requests[0].json
    assert body["blocks"][3]["text"]["text"] == "*Evidence*\n```q=&lt;!channel&gt; &amp; &lt;@U123&gt;```"
    assert body["blocks"][1]["text"]["text"] == "a&lt;b&gt;"
    assert not any("<!channel>" in text or "<@U123>" in text for text in all_strings(body))


def test_teams_payload_is_a_message_with_one_adaptive_card(server: RecordingServer) -> None:
    deliver(WebhookTarget("teams", server.url), make_alert(severity="critical", client_id="203.0.113.9"))
    body = server.requests[0].json
    assert set(body) == {"type", "attachments"}
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    title, message, facts, evidence_title, evidence = card["body"]
    assert title == {"type": "TextBlock", "text": "apispy: [CRITICAL] injection/sql_union: GET /api/users/{id}",
                     "weight": "Bolder", "size": "Medium", "wrap": True, "color": "Attention"}
    assert message == {"type": "TextBlock", "text": "UNION SELECT in query string", "wrap": True}
    assert facts["type"] == "FactSet"
    assert facts["facts"] == [
        {"title": "Detector", "value": "injection"}, {"title": "Rule", "value": "sql_union"},
        {"title": "Severity", "value": "critical"}, {"title": "Client", "value": "203.0.113.9 (10.0.0.7)"},
        {"title": "Endpoint", "value": "GET /api/users/{id}"}, {"title": "Count", "value": "3"},
        {"title": "Score", "value": "0.93"}, {"title": "Time", "value": "2023-11-14T22:13:20.250+00:00"},
    ]
    assert evidence_title["text"] == "Evidence"
    assert evidence == {"type": "TextBlock", "text": EVIDENCE, "fontType": "Monospace", "wrap": True}


def test_teams_throttle_reported_in_a_200_body_is_retried(server: RecordingServer) -> None:
    server.replies = [Reply(200, body=b"Microsoft Teams endpoint returned HTTP error 429 with ContextId ...")]
    dispatcher = deliver(WebhookTarget("teams", server.url), make_alert())
    assert len(server.requests) == 2
    assert dispatcher.counters() == {"sent": 1, "retried": 1, "failed": 0, "dropped": 0}


@pytest.mark.parametrize(("severity", "pagerduty_severity"),
                         [("critical", "critical"), ("high", "error"), ("medium", "warning"), ("low", "info")])
def test_pagerduty_event_follows_events_api_v2(server: RecordingServer, severity: str,
                                               pagerduty_severity: str) -> None:
    target = WebhookTarget("pagerduty", server.url + "/v2/enqueue", min_severity="low", routing_key="R0123456789")
    deliver(target, make_alert(severity=severity))
    request = server.requests[0]
    body = request.json
    assert request.path == "/v2/enqueue"
    assert set(body) == {"routing_key", "event_action", "dedup_key", "payload"}
    assert (body["routing_key"], body["event_action"]) == ("R0123456789", "trigger")
    assert isinstance(body["dedup_key"], str) and 0 < len(body["dedup_key"]) <= 255
    payload = body["payload"]
    assert set(payload) == {"summary", "source", "severity", "timestamp", "component", "group", "class",
                            "custom_details"}
    assert payload["summary"] == (f"[{severity.upper()}] injection/sql_union: GET /api/users/{{id}} — "
                                  "UNION SELECT in query string")
    assert payload["severity"] == pagerduty_severity
    assert (payload["source"], payload["component"], payload["group"], payload["class"]) == (
        "apispy", "GET /api/users/{id}", "injection", "sql_union")
    assert datetime.fromisoformat(payload["timestamp"]).timestamp() == 1_700_000_000.25
    assert payload["custom_details"] == make_alert(severity=severity).to_record()


def test_pagerduty_summary_is_cut_to_1024_characters(server: RecordingServer) -> None:
    deliver(WebhookTarget("pagerduty", server.url, routing_key="R1"), make_alert(message="x" * 3000))
    summary = server.requests[0].json["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("x…")


def test_pagerduty_dedup_key_is_stable_per_detector_rule_client_and_endpoint(server: RecordingServer) -> None:
    same_finding = [make_alert(), make_alert(ts=1_700_000_999.0, count=40, message="again", severity="critical")]
    other_findings = [make_alert(client_id="10.0.0.8"), make_alert(endpoint="/api/orders"),
                      make_alert(rule="sql_tautology"), make_alert(detector="bruteforce")]
    deliver(WebhookTarget("pagerduty", server.url, min_severity="low", routing_key="R1"),
            *same_finding, *other_findings)
    keys = [request.json["dedup_key"] for request in server.requests]
    assert len(keys) == 6
    assert keys[0] == keys[1]
    assert len(set(keys[1:])) == 5


def test_generic_payload_is_the_alert_record_with_source_and_extra_headers(server: RecordingServer) -> None:
    target = WebhookTarget("generic", server.url + "/alerts", headers={"Authorization": "Bearer hook-token-123"})
    alert = make_alert()
    deliver(target, alert, settings=WebhookSettings(source="edge-1", backoff_initial_s=0.01))
    request = server.requests[0]
    assert request.json == {**alert.to_record(), "source": "edge-1"}
    assert request.headers["Authorization"] == "Bearer hook-token-123"
    assert request.headers["Content-Type"] == "application/json"
    assert b"hook-token-123" not in request.body


def test_each_target_receives_alerts_from_its_min_severity_up(server: RecordingServer) -> None:
    targets = [WebhookTarget("generic", f"{server.url}/{minimum}", min_severity=minimum)
               for minimum in ("low", "medium", "high", "critical")]
    dispatcher = WebhookDispatcher(targets, FAST)
    for severity in ("low", "medium", "high", "critical"):
        dispatcher.submit(make_alert(severity=severity))
    dispatcher.close(timeout_s=5)
    received = sorted((request.path, request.json["severity"]) for request in server.requests)
    assert received == sorted([
        ("/low", "low"), ("/low", "medium"), ("/low", "high"), ("/low", "critical"),
        ("/medium", "medium"), ("/medium", "high"), ("/medium", "critical"),
        ("/high", "high"), ("/high", "critical"), ("/critical", "critical"),
    ])
    assert dispatcher.counters() == {"sent": 10, "retried": 0, "failed": 0, "dropped": 0}


def test_server_errors_are_retried_until_success(server: RecordingServer) -> None:
    server.replies = [Reply(500), Reply(502), Reply(408)]
    dispatcher = deliver(WebhookTarget("generic", server.url), make_alert())
    assert len(server.requests) == 4
    assert len({request.body for request in server.requests}) == 1
    assert dispatcher.counters() == {"sent": 1, "retried": 3, "failed": 0, "dropped": 0}


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(server: RecordingServer, status: int) -> None:
    server.replies = [Reply(status, {"Retry-After": "1"})]
    dispatcher = deliver(WebhookTarget("generic", server.url), make_alert())
    first, second = server.requests
    assert second.at - first.at >= 0.95
    assert dispatcher.counters() == {"sent": 1, "retried": 1, "failed": 0, "dropped": 0}


def test_attempts_are_bounded(server: RecordingServer) -> None:
    server.replies = [Reply(500)] * 10
    dispatcher = deliver(WebhookTarget("generic", server.url), make_alert())
    assert len(server.requests) == 5
    assert dispatcher.counters() == {"sent": 0, "retried": 4, "failed": 1, "dropped": 0}


@pytest.mark.parametrize("reply", [Reply(400), Reply(401), Reply(404), Reply(302, {"Location": "/elsewhere"})])
def test_client_errors_and_redirects_fail_without_retry(server: RecordingServer, reply: Reply) -> None:
    server.replies = [reply]
    dispatcher = deliver(WebhookTarget("generic", server.url + "/hook"), make_alert())
    assert [request.path for request in server.requests] == ["/hook"]
    assert dispatcher.counters() == {"sent": 0, "retried": 0, "failed": 1, "dropped": 0}


def test_dead_and_hanging_targets_delay_neither_submit_nor_a_healthy_target(
        server: RecordingServer, second_server: RecordingServer, refused_url: str) -> None:
    second_server.hang = True
    targets = [WebhookTarget("generic", refused_url), WebhookTarget("generic", second_server.url),
               WebhookTarget("generic", server.url)]
    dispatcher = WebhookDispatcher(targets, WebhookSettings(timeout_s=5.0, backoff_initial_s=0.5))
    started = time.monotonic()
    for number in range(1000):
        dispatcher.submit(make_alert(count=number + 1))
    submitted = time.monotonic() - started
    first = server.wait_for(1, timeout_s=2.0)
    assert submitted < 1.0
    assert first and first[0].at - started < 1.0
    # All of them arrive in the end: a bound generous enough for a loaded machine, not a timing claim.
    assert len(server.wait_for(1000, timeout_s=30.0)) == 1000
    dispatcher.close(timeout_s=0.5)


def test_full_queue_drops_and_counts(server: RecordingServer) -> None:
    server.hang = True
    dispatcher = WebhookDispatcher([WebhookTarget("generic", server.url)],
                                   WebhookSettings(queue_size=5, timeout_s=5.0))
    dispatcher.submit(make_alert())
    server.wait_for(1)
    for _ in range(10):
        dispatcher.submit(make_alert())
    assert dispatcher.counters()["dropped"] == 5
    dispatcher.close(timeout_s=0.2)
    assert dispatcher.counters() == {"sent": 0, "retried": 0, "failed": 5, "dropped": 5}


def test_close_returns_within_its_timeout_when_a_target_hangs(server: RecordingServer) -> None:
    server.hang = True
    dispatcher = WebhookDispatcher([WebhookTarget("generic", server.url)], WebhookSettings(timeout_s=5.0))
    for _ in range(3):
        dispatcher.submit(make_alert())
    server.wait_for(1)
    started = time.monotonic()
    dispatcher.close(timeout_s=0.5)
    assert time.monotonic() - started < 1.0
    assert dispatcher.counters()["failed"] == 2


def test_close_returns_within_its_timeout_while_backing_off(refused_url: str) -> None:
    settings = WebhookSettings(backoff_initial_s=5.0, backoff_max_s=5.0)
    dispatcher = WebhookDispatcher([WebhookTarget("generic", refused_url)], settings)
    dispatcher.submit(make_alert())
    time.sleep(0.1)
    started = time.monotonic()
    dispatcher.close(timeout_s=0.3)
    assert time.monotonic() - started < 0.8
    assert dispatcher.counters() == {"sent": 0, "retried": 1, "failed": 1, "dropped": 0}


def test_close_delivers_what_is_queued(server: RecordingServer) -> None:
    dispatcher = deliver(WebhookTarget("generic", server.url), *(make_alert(count=n) for n in range(1, 51)))
    assert [request.json["count"] for request in server.requests] == list(range(1, 51))
    assert dispatcher.counters() == {"sent": 50, "retried": 0, "failed": 0, "dropped": 0}


def test_submit_after_close_is_dropped(server: RecordingServer) -> None:
    dispatcher = deliver(WebhookTarget("generic", server.url))
    dispatcher.submit(make_alert())
    assert server.requests == []
    assert dispatcher.counters() == {"sent": 0, "retried": 0, "failed": 0, "dropped": 1}


def test_a_later_change_to_the_alert_does_not_change_what_is_sent(server: RecordingServer) -> None:
    server.hang = True
    dispatcher = WebhookDispatcher([WebhookTarget("generic", server.url)], FAST)
    dispatcher.submit(make_alert())
    alert = make_alert()
    dispatcher.submit(alert)
    alert.count = 99
    server.hang = False
    server.release.set()
    dispatcher.close(timeout_s=5)
    assert [request.json["count"] for request in server.requests] == [3, 3]


def test_evidence_is_sent_as_given_and_no_secret_leaks(server: RecordingServer, caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    targets = [
        WebhookTarget("slack", server.url + "/services/T0/B0/slack-url-secret"),
        WebhookTarget("teams", server.url + "/webhookb2/teams-url-secret"),
        WebhookTarget("pagerduty", server.url + "/v2/enqueue", routing_key="pd-routing-key"),
        WebhookTarget("generic", server.url + "/generic", headers={"Authorization": "Bearer generic-header-secret"}),
    ]
    server.replies = [Reply(400)] * 4
    dispatcher = WebhookDispatcher(targets, FAST)
    with caplog.at_level(logging.DEBUG, logger="sniffer.sinks.webhooks"):
        dispatcher.submit(make_alert())
        dispatcher.close(timeout_s=5)
        dispatcher = WebhookDispatcher(targets, FAST)
        dispatcher.submit(make_alert())
        dispatcher.close(timeout_s=5)
    bodies = {request.path: request.body.decode() for request in server.requests[4:]}
    assert len(bodies) == 4
    for path, body in bodies.items():
        assert EVIDENCE in body, path
        assert RAW_TOKEN not in body, path
        for secret in ("slack-url-secret", "teams-url-secret", "generic-header-secret"):
            assert secret not in body, path
    assert "pd-routing-key" not in "".join(body for path, body in bodies.items() if path != "/v2/enqueue")
    assert "not delivered" in caplog.text
    for secret in ("url-secret", "pd-routing-key", "generic-header-secret"):
        assert secret not in caplog.text
        assert secret not in "".join(map(repr, targets))


def test_targets_from_config() -> None:
    targets = webhook_targets_from_config([
        {"kind": "slack", "url": "https://hooks.slack.com/services/T/B/x", "name": "soc"},
        {"kind": "pagerduty", "routing_key": "R123", "min_severity": "critical"},
        {"kind": "generic", "url": "http://127.0.0.1:9/a", "min_severity": "low", "headers": {"X-Key": "k"}},
    ])
    assert targets == [
        WebhookTarget("slack", "https://hooks.slack.com/services/T/B/x", name="soc"),
        WebhookTarget("pagerduty", "https://events.pagerduty.com/v2/enqueue", min_severity="critical",
                      routing_key="R123"),
        WebhookTarget("generic", "http://127.0.0.1:9/a", min_severity="low", headers={"X-Key": "k"}),
    ]


@pytest.mark.parametrize(("entry", "message"), [
    ({"kind": "discord", "url": "https://x.example/"}, r"webhooks\[0\]\.kind must be one of"),
    ({"kind": "slack"}, r"webhooks\[0\]\.url must be an http"),
    ({"kind": "slack", "url": "ftp://x.example/secret-path"}, r"webhooks\[0\]\.url must be an http"),
    ({"kind": "slack", "url": "https://x.example/", "min_severity": "urgent"}, r"webhooks\[0\]\.min_severity"),
    ({"kind": "pagerduty"}, r"webhooks\[0\]\.routing_key"),
    ({"kind": "generic", "url": "https://x.example/", "headers": ["a"]}, r"webhooks\[0\]\.headers"),
    ({"kind": "generic", "url": "https://x.example/", "colour": "red"}, r"unknown key webhooks\[0\]\.colour"),
    ("slack", r"webhooks\[0\] must be a mapping"),
])
def test_bad_config_entries_name_the_key(entry: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        webhook_targets_from_config([entry])
    assert "secret-path" not in str(raised.value)
