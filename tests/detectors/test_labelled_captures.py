"""Detectors on labelled captures of real traffic with attacks in it (pcaps/attacks_*.pcap).

Every labelled attack is caught by the right detector and rule, and the normal clients raise no high or critical
alert. Precision and recall per detector are printed (pytest -s) for the closing notes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.labels import LABELS, score
from support.samples import PCAPS

APISPY = str(Path(sys.executable).with_name("apispy"))
CAPTURES = sorted(LABELS["captures"])
NORMAL = {client["src_ip"] for client in LABELS["normal_clients"]}
DETECTORS = {"rate_abuse", "bruteforce", "enumeration", "shadow_endpoint", "injection", "data_exposure",
             "payload_anomaly"}


@pytest.fixture(scope="module")
def alerts_by_capture() -> dict[str, list[dict]]:
    alerts = {}
    for capture in CAPTURES:
        result = subprocess.run(
            [APISPY, "replay", "--quiet", "--spec", str(PCAPS / LABELS["spec"]), "--alerts", "-", str(PCAPS / capture)],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        alerts[capture] = [json.loads(line) for line in result.stdout.splitlines()]
    return alerts


def test_every_labelled_attack_is_caught_and_nothing_else(alerts_by_capture) -> None:
    scores = score(alerts_by_capture, DETECTORS)
    for detector in sorted(scores):
        one = scores[detector]
        print(
            f"{detector:<16} precision {one.precision:.2f} recall {one.recall:.2f} "
            f"(tp {one.true_positives}, fp {one.false_positives}, fn {one.false_negatives})"
        )
    missed = {detector: one.missed for detector, one in scores.items() if one.missed}
    spurious = {detector: one.spurious for detector, one in scores.items() if one.spurious}
    assert missed == {}
    assert spurious == {}


def test_normal_clients_raise_no_high_or_critical_alert(alerts_by_capture) -> None:
    exposures = LABELS["exposures"] + LABELS["expected_benign_findings"]
    loud = [
        alert
        for capture, alerts in alerts_by_capture.items()
        for alert in alerts
        if alert["src_ip"] in NORMAL
        and alert["severity"] in ("high", "critical")
        and not any(
            label["capture"] == capture
            and label["src_ip"] == alert["src_ip"]
            and label["detector"] == alert["detector"]
            for label in exposures
        )
    ]
    assert loud == []
