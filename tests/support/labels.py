"""Scoring detectors against pcaps/attacks_labels.json: precision and recall per detector.

The rules are the labels file's own `scoring` text: an alert matches a label with the same capture, src_ip and
detector, and the same rule and endpoint where the label gives them (`also_matches` lists other rules that are
right for the same request). Labels in `attacks` and `exposures` must be matched (else false negatives); an
alert matching no label at all is a false positive; alerts matching only `expected_benign_findings` or
`tolerated_findings` are ignored.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from support.samples import PCAPS

LABELS = json.loads((PCAPS / "attacks_labels.json").read_text())


def matches(alert: dict, label: dict, capture: str) -> bool:
    if label["capture"] != capture or label["src_ip"] != alert["src_ip"] or label["detector"] != alert["detector"]:
        return False
    if "rule" in label and alert["rule"] not in (label["rule"], *label.get("also_matches", ())):
        return False
    return "endpoint" not in label or alert["endpoint"] in (label["endpoint"], "*")


@dataclass
class Score:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    missed: list[dict] = field(default_factory=list)
    spurious: list[dict] = field(default_factory=list)

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positives + self.false_negatives
        return self.true_positives / wanted if wanted else 1.0


def score(alerts_by_capture: dict[str, list[dict]], detectors: set[str]) -> dict[str, Score]:
    """Per detector: labels matched (true positives), labels missed, and alerts that match no label."""
    scores: dict[str, Score] = defaultdict(Score)
    wanted = [label for label in LABELS["attacks"] + LABELS["exposures"] if label["detector"] in detectors]
    ignored = LABELS["expected_benign_findings"] + LABELS["tolerated_findings"]
    for label in wanted:
        alerts = alerts_by_capture.get(label["capture"], [])
        if any(matches(alert, label, label["capture"]) for alert in alerts):
            scores[label["detector"]].true_positives += 1
        else:
            scores[label["detector"]].false_negatives += 1
            scores[label["detector"]].missed.append(label)
    for capture, alerts in alerts_by_capture.items():
        for alert in alerts:
            if alert["detector"] not in detectors:
                continue
            if any(matches(alert, label, capture) for label in wanted + ignored):
                continue
            scores[alert["detector"]].false_positives += 1
            scores[alert["detector"]].spurious.append(alert)
    return dict(scores)
