"""Zeek's own http.log for the captures where tshark is wrong or incomplete (oracle `zeek` in expected.tsv)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from support.tshark_oracle import PUBLIC

ZEEK_LOGS = PUBLIC / "zeek-http-logs"
UNSET = "-"
EMPTY = "(empty)"


def zeek_rows(capture: str) -> list[dict[str, str]]:
    path = ZEEK_LOGS / f"{capture}.http.log"
    fields: list[str] = []
    rows = []
    for line in Path(path).read_text(errors="surrogateescape").splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif not fields and line.startswith("ts\tuid\t"):
            fields = line.split("\t")  # a log written with a plain header line instead of #fields
        elif line and not line.startswith("#"):
            rows.append(dict(zip(fields, line.split("\t"), strict=False)))
    return rows


def zeek_messages(capture: str) -> tuple[Counter, Counter]:
    """(Counter of (client, method, uri), Counter of (client, status)) from Zeek's log: one row per transaction."""
    requests: Counter = Counter()
    responses: Counter = Counter()
    for row in zeek_rows(capture):
        client = row["id.orig_h"]
        if row["method"] != UNSET:
            uri = "" if row["uri"] in (EMPTY, UNSET) else row["uri"]
            requests[(client, row["method"], uri)] += 1
        if row["status_code"] not in (UNSET, "0"):
            responses[(client, int(row["status_code"]))] += 1
    return requests, responses
