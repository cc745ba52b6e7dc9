"""Alert delivery to Slack, Microsoft Teams, PagerDuty and generic JSON webhooks, off the capture thread.

Each target has its own daemon worker thread and its own bounded queue, so a dead or slow webhook can neither
slow capture (`submit` only copies the alert and does `put_nowait`) nor hold back the other targets. A full
queue drops the alert and counts it. Each delivery is a JSON POST through urllib, retried with exponential
backoff (with jitter) on network errors, timeouts, 408, 429 and 5xx; `Retry-After` (seconds or HTTP date) on a
429 or 503 is honoured up to RETRY_AFTER_MAX_S. Any other 4xx and any 3xx (redirects are not followed: a
webhook that moved must be reconfigured, and its headers must not follow it elsewhere) fail permanently.

Payloads follow the vendors' documentation:
- Slack incoming webhooks (https://api.slack.com/messaging/webhooks) with Block Kit
  (https://api.slack.com/reference/block-kit/blocks): top-level `text` is the notification fallback; a
  `header` block (plain_text, at most 150 characters), `section` blocks with mrkdwn text (at most 3000) and
  `fields` (at most 10, each at most 2000), a `context` block. `&`, `<` and `>` are escaped in mrkdwn as Slack's
  "Formatting text for app surfaces" asks, so that evidence such as `<!channel>` cannot ping anyone.
- Microsoft Teams incoming webhooks and Workflows ("Send Adaptive Cards using an Incoming Webhook",
  msteams-platform/webhooks-and-connectors/how-to/connectors-using.md): a `message` whose one attachment is
  `application/vnd.microsoft.card.adaptive` with `contentUrl` null and an Adaptive Card 1.4 (TextBlock,
  FactSet; https://adaptivecards.io/explorer/). Connectors may answer 200 with "HTTP error 429" in the body;
  that is retried like a 429.
- PagerDuty Events API v2, "Send an Alert Event" and "Response Codes & Retry Logic"
  (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/, developer-docs
  events-API-v2/01-Overview.md): `routing_key`, `event_action` trigger, `dedup_key` (at most 255 characters),
  `payload` with `summary` (at most 1024), `source`, `severity` (critical, error, warning, info), ISO 8601
  `timestamp`, `component`, `group`, `class`, `custom_details`. 400 is not retried; 429 and 5xx are.
- generic: the alert's record plus `source`.

Secrets: the alert's evidence arrives already redacted and is sent as given. A webhook's own URL (Slack's and
Teams' carry their credential in the path), its extra headers and the PagerDuty routing key are secrets too:
they are left out of `repr` and of log messages, which name the target and its host only.

Counters (`sent`, `retried`, `failed`, `dropped`) are sums over targets and count one per alert per target.
`failed` includes alerts still queued or being retried when `close` gives up; an alert submitted after `close`
is `dropped`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import queue
import random
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from detectors.alert import SEVERITIES, Alert, severity_rank

if TYPE_CHECKING:
    import urllib.request

log = logging.getLogger(__name__)

KINDS = ("slack", "teams", "pagerduty", "generic")
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}
PAGERDUTY_SUMMARY_MAX_CHARS = 1024
PAGERDUTY_DEDUP_KEY_MAX_CHARS = 255
SLACK_HEADER_MAX_CHARS = 150
SLACK_SECTION_TEXT_MAX_CHARS = 3000
SLACK_FIELD_TEXT_MAX_CHARS = 2000
SLACK_FIELDS_MAX = 10
# Teams rejects messages over about 28 KB; a card's free text is kept well below that.
TEAMS_TEXT_MAX_CHARS = 4000
TEAMS_TITLE_COLOR = {"critical": "Attention", "high": "Attention", "medium": "Warning", "low": "Default"}
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION = "1.4"
TEAMS_THROTTLED_MARKER = b"HTTP error 429"
RETRYABLE_STATUSES = frozenset({408, 429})
RETRY_AFTER_STATUSES = frozenset({429, 503})
RETRY_AFTER_MAX_S = 300.0
RESPONSE_READ_MAX_BYTES = 64 * 1024
ABORT_GRACE_S = 0.1
ELLIPSIS = "…"


@dataclass
class WebhookTarget:
    """One destination. `min_severity` is the lowest alert severity it receives.

    `url` defaults to the PagerDuty Events API for kind pagerduty; `routing_key` is that integration's key;
    `headers` are extra request headers (for generic targets, e.g. Authorization). The secret-bearing fields
    are kept out of `repr`.
    """

    kind: str
    url: str = field(repr=False)
    min_severity: str = "high"
    routing_key: str = field(default="", repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    name: str = ""

    @property
    def label(self) -> str:
        """How logs and thread names refer to the target: its name, or kind and host, never the full URL."""
        return self.name or f"{self.kind}@{urllib.parse.urlsplit(self.url).hostname or '?'}"


@dataclass
class WebhookSettings:
    """The `[webhooks]` delivery settings shared by all targets; `queue_size` is per target."""

    queue_size: int = 1000
    timeout_s: float = 5.0
    max_attempts: int = 5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    source: str = "apispy"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_mrkdwn(text: str, limit: int) -> str:
    """`text` escaped for mrkdwn and cut to `limit` characters without splitting an `&...;` entity."""
    escaped = _slack_escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - len(ELLIPSIS)]
    ampersand = cut.rfind("&", len(cut) - 4)
    if ampersand != -1 and ";" not in cut[ampersand:]:
        cut = cut[:ampersand]
    return cut + ELLIPSIS


def _client(alert: Alert) -> str:
    return alert.client_id if alert.client_id == alert.src_ip else f"{alert.client_id} ({alert.src_ip})"


def _title(alert: Alert) -> str:
    return f"[{alert.severity.upper()}] {alert.detector}/{alert.rule}: {alert.method} {alert.endpoint}"


def _iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")


def slack_payload(alert: Alert, source: str) -> dict:
    """An incoming-webhook message: fallback `text` plus Block Kit blocks within Slack's length limits."""
    facts = [
        ("Detector", alert.detector), ("Rule", alert.rule), ("Severity", alert.severity),
        ("Client", _client(alert)), ("Endpoint", f"{alert.method} {alert.endpoint}"), ("Count", str(alert.count)),
        ("Score", f"{alert.score:g}"),
    ]
    fields = [{"type": "mrkdwn", "text": _slack_mrkdwn(f"*{name}*\n{value}", SLACK_FIELD_TEXT_MAX_CHARS)}
              for name, value in facts[:SLACK_FIELDS_MAX]]
    fence = "```"
    evidence_limit = SLACK_SECTION_TEXT_MAX_CHARS - len("*Evidence*\n") - 2 * len(fence)
    evidence = _slack_mrkdwn(alert.evidence, evidence_limit) if alert.evidence else "(none)"
    return {
        "text": _slack_mrkdwn(f"{_title(alert)} — {alert.message}", SLACK_SECTION_TEXT_MAX_CHARS),
        "blocks": [
            {"type": "header",
             "text": {"type": "plain_text", "text": _clip(f"{source}: {_title(alert)}", SLACK_HEADER_MAX_CHARS)}},
            {"type": "section",
             "text": {"type": "mrkdwn", "text": _slack_mrkdwn(alert.message, SLACK_SECTION_TEXT_MAX_CHARS)}},
            {"type": "section", "fields": fields},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Evidence*\n{fence}{evidence}{fence}"}},
            {"type": "context",
             "elements": [{"type": "mrkdwn", "text": _slack_mrkdwn(f"{source} · {_iso_time(alert.ts)}",
                                                                SLACK_SECTION_TEXT_MAX_CHARS)}]},
        ],
    }


def teams_payload(alert: Alert, source: str) -> dict:
    """A Teams message carrying one Adaptive Card 1.4: title, message, facts and evidence."""
    facts = [
        ("Detector", alert.detector), ("Rule", alert.rule), ("Severity", alert.severity),
        ("Client", _client(alert)), ("Endpoint", f"{alert.method} {alert.endpoint}"), ("Count", str(alert.count)),
        ("Score", f"{alert.score:g}"), ("Time", _iso_time(alert.ts)),
    ]
    card = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": [
            {"type": "TextBlock", "text": _clip(f"{source}: {_title(alert)}", TEAMS_TEXT_MAX_CHARS),
             "weight": "Bolder", "size": "Medium", "wrap": True, "color": TEAMS_TITLE_COLOR[alert.severity]},
            {"type": "TextBlock", "text": _clip(alert.message, TEAMS_TEXT_MAX_CHARS), "wrap": True},
            {"type": "FactSet", "facts": [{"title": name, "value": _clip(value, TEAMS_TEXT_MAX_CHARS)}
                                          for name, value in facts]},
            {"type": "TextBlock", "text": "Evidence", "weight": "Bolder", "wrap": True},
            {"type": "TextBlock", "text": _clip(alert.evidence or "(none)", TEAMS_TEXT_MAX_CHARS),
             "fontType": "Monospace", "wrap": True},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card},
        ],
    }


def pagerduty_dedup_key(alert: Alert, source: str) -> str:
    """Stable per (detector, rule, client_id, endpoint): repeats update one open PagerDuty alert.

    The client and endpoint enter as a digest, which keeps the key short and leaks nothing new.
    """
    digest = hashlib.sha256("\0".join(alert.key).encode()).hexdigest()[:32]
    return _clip(f"{source}:{alert.detector}:{alert.rule}:{digest}", PAGERDUTY_DEDUP_KEY_MAX_CHARS)


def pagerduty_payload(alert: Alert, routing_key: str, source: str) -> dict:
    """An Events API v2 trigger event."""
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": pagerduty_dedup_key(alert, source),
        "payload": {
            "summary": _clip(f"{_title(alert)} — {alert.message}", PAGERDUTY_SUMMARY_MAX_CHARS),
            "source": source,
            "severity": PAGERDUTY_SEVERITY[alert.severity],
            "timestamp": _iso_time(alert.ts),
            "component": f"{alert.method} {alert.endpoint}",
            "group": alert.detector,
            "class": alert.rule,
            "custom_details": alert.to_record(),
        },
    }


def generic_payload(alert: Alert, source: str) -> dict:
    return {**alert.to_record(), "source": source}


def build_payload(target: WebhookTarget, alert: Alert, source: str) -> dict:
    """The JSON body that `target` receives for `alert`."""
    if target.kind == "slack":
        return slack_payload(alert, source)
    if target.kind == "teams":
        return teams_payload(alert, source)
    if target.kind == "pagerduty":
        return pagerduty_payload(alert, target.routing_key, source)
    return generic_payload(alert, source)


# urllib.request (with http.client and email, which it imports) is imported only when a worker starts: it took a
# replay without webhooks some 70 ms of its start-up, where a whole replay of a small capture takes 300 ms.


def _opener_without_redirects() -> urllib.request.OpenerDirector:
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            return None

    return urllib.request.build_opener(NoRedirect)


def _retry_after_s(value: str | None) -> float | None:
    """`Retry-After` as seconds to wait: delta-seconds or an HTTP date; None when absent or unreadable."""
    import email.utils

    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - time.time())


@dataclass
class _Outcome:
    """One attempt's result: delivered, or whether to retry and how long the server asked us to wait."""

    delivered: bool
    retryable: bool = False
    retry_after_s: float | None = None
    reason: str = ""


class _TargetWorker:
    """A target's queue and the daemon thread that drains it, one POST at a time."""

    def __init__(self, target: WebhookTarget, settings: WebhookSettings, counts: dict[str, int],
                 lock: threading.Lock) -> None:
        self.target = target
        self.settings = settings
        self.counts = counts
        self.lock = lock
        self.rank = severity_rank(target.min_severity)
        self.queue: queue.Queue[Alert | None] = queue.Queue(maxsize=settings.queue_size)
        self.closing = threading.Event()
        self.abort = threading.Event()
        self.healthy = True
        self.headers = {"User-Agent": f"{settings.source} webhooks", **target.headers,
                        "Content-Type": "application/json"}
        self.opener = _opener_without_redirects()
        self.thread = threading.Thread(target=self._run, name=f"webhook-{target.label}", daemon=True)
        self.thread.start()

    def _count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def _run(self) -> None:
        while not self.abort.is_set():
            alert = self.queue.get()
            if alert is None:
                return
            try:
                self._deliver(alert)
            except Exception:
                # Whatever went wrong with one alert, the worker must live on for the next ones.
                log.exception("webhook %s: alert not delivered", self.target.label)
                self._count("failed")
            if self.closing.is_set() and self.queue.empty():
                return

    def _deliver(self, alert: Alert) -> None:
        body = json.dumps(build_payload(self.target, alert, self.settings.source)).encode()
        attempt = 1
        while True:
            outcome = self._post(body)
            if outcome.delivered:
                self._count("sent")
                if not self.healthy:
                    log.info("webhook %s delivers again", self.target.label)
                    self.healthy = True
                return
            if not outcome.retryable or attempt >= self.settings.max_attempts or self.abort.is_set():
                self._count("failed")
                if self.healthy:
                    log.warning("webhook %s: alert not delivered after %d attempt(s): %s", self.target.label,
                                attempt, outcome.reason)
                    self.healthy = False
                return
            self._count("retried")
            if self.abort.wait(self._delay_s(attempt, outcome.retry_after_s)):
                self._count("failed")
                return
            attempt += 1

    def _delay_s(self, attempt: int, retry_after_s: float | None) -> float:
        backoff = min(self.settings.backoff_initial_s * 2 ** (attempt - 1), self.settings.backoff_max_s)
        backoff = backoff / 2 + random.uniform(0, backoff / 2)
        if retry_after_s is None:
            return backoff
        return max(backoff, min(retry_after_s, RETRY_AFTER_MAX_S))

    def _post(self, body: bytes) -> _Outcome:
        import http.client
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.target.url, data=body, headers=self.headers, method="POST")
        try:
            with self.opener.open(request, timeout=self.settings.timeout_s) as response:
                text = response.read(RESPONSE_READ_MAX_BYTES)
        except urllib.error.HTTPError as error:
            status = error.code
            retry_after = _retry_after_s(error.headers.get("Retry-After")) if status in RETRY_AFTER_STATUSES else None
            error.close()
            retryable = status in RETRYABLE_STATUSES or status >= 500
            return _Outcome(False, retryable, retry_after, f"HTTP {status}")
        except (OSError, ValueError, http.client.HTTPException) as error:
            # URLError, refused or reset connections and socket timeouts are all OSError.
            return _Outcome(False, True, None, type(error).__name__)
        if self.target.kind == "teams" and TEAMS_THROTTLED_MARKER in text:
            return _Outcome(False, True, None, "throttled (HTTP error 429 in the response body)")
        return _Outcome(True)


class WebhookDispatcher:
    """Fans alerts out to webhook targets; see the module docstring for the delivery guarantees."""

    def __init__(self, targets: Sequence[WebhookTarget], settings: WebhookSettings | None = None) -> None:
        self.settings = settings or WebhookSettings()
        if self.settings.queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if self.settings.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._lock = threading.Lock()
        self._counts = {"sent": 0, "retried": 0, "failed": 0, "dropped": 0}
        self._closed = False
        self._workers = [_TargetWorker(target, self.settings, self._counts, self._lock) for target in targets]

    def submit(self, alert: Alert) -> None:
        """Queues a copy of `alert` for every target whose `min_severity` it reaches; never blocks."""
        rank = severity_rank(alert.severity)
        snapshot = copy.copy(alert)
        dropped = 0
        for worker in self._workers:
            if rank < worker.rank:
                continue
            if self._closed:
                dropped += 1
                continue
            try:
                worker.queue.put_nowait(snapshot)
            except queue.Full:
                dropped += 1
        if dropped:
            with self._lock:
                self._counts["dropped"] += dropped

    def close(self, timeout_s: float = 10.0) -> None:
        """Delivers what it can within `timeout_s`, then stops the workers; undelivered alerts count as failed.

        Returns within about `timeout_s` even when a target hangs: a request in flight then ends on its own
        (within `settings.timeout_s`), in a daemon thread that no longer holds anything up.
        """
        deadline = time.monotonic() + timeout_s
        self._closed = True
        for worker in self._workers:
            worker.closing.set()
            try:
                worker.queue.put_nowait(None)
            except queue.Full:
                pass  # the worker stops by itself once it has emptied the queue
        # The last part of the time lets workers woken from a backoff wait count their alert as failed.
        grace_s = min(ABORT_GRACE_S, timeout_s / 4)
        for worker in self._workers:
            worker.thread.join(max(0.0, deadline - grace_s - time.monotonic()))
        for worker in self._workers:
            worker.abort.set()
            abandoned = 0
            while True:
                try:
                    alert = worker.queue.get_nowait()
                except queue.Empty:
                    break
                if alert is not None:
                    abandoned += 1
            if abandoned:
                with self._lock:
                    self._counts["failed"] += abandoned
        for worker in self._workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))

    def counters(self) -> dict[str, int]:
        """Alerts per target: sent, retried (attempts that were retried), failed, dropped (queue full, closed)."""
        with self._lock:
            return dict(self._counts)


def webhook_targets_from_config(entries: list[dict]) -> list[WebhookTarget]:
    """Targets from the `webhooks` list of the configuration; a bad entry raises ValueError naming its key."""
    if not isinstance(entries, list):
        raise ValueError("webhooks must be a list of targets")
    known = {"kind", "url", "min_severity", "routing_key", "headers", "name"}
    targets = []
    for index, entry in enumerate(entries):
        where = f"webhooks[{index}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a mapping with kind and url")
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(f"unknown key {where}.{unknown[0]} (known: {', '.join(sorted(known))})")
        kind = entry.get("kind")
        if kind not in KINDS:
            raise ValueError(f"{where}.kind must be one of {', '.join(KINDS)}, not {kind!r}")
        url = entry.get("url", PAGERDUTY_EVENTS_URL if kind == "pagerduty" else "")
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            # The URL itself is not echoed: Slack and Teams webhook URLs are credentials.
            raise ValueError(f"{where}.url must be an http:// or https:// URL")
        min_severity = entry.get("min_severity", "high")
        if min_severity not in SEVERITIES:
            raise ValueError(f"{where}.min_severity must be one of {', '.join(SEVERITIES)}, not {min_severity!r}")
        routing_key = entry.get("routing_key", "")
        if not isinstance(routing_key, str) or (kind == "pagerduty" and not routing_key):
            raise ValueError(f"{where}.routing_key must be the PagerDuty integration key (a non-empty string)")
        headers = entry.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in headers.items()):
            raise ValueError(f"{where}.headers must be a mapping of header names to strings")
        name = entry.get("name", "")
        if not isinstance(name, str):
            raise ValueError(f"{where}.name must be a string")
        targets.append(WebhookTarget(kind=kind, url=url, min_severity=min_severity, routing_key=routing_key,
                                     headers=dict(headers), name=name))
    return targets
