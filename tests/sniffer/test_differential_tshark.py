"""apispy against tshark on every public capture whose oracle is tshark, and on the bundled samples.

Compared: the multiset of (client ip, method, uri) of requests and of (client ip, status) of final responses.
apispy must find every message tshark finds. Where apispy finds more, the case is named here with the reason
tshark misses it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from support.samples import PCAPS, TSHARK_UNREADABLE, manifest_rows, run_replay
from support.tshark_oracle import PUBLIC, apispy_messages, expected_rows, matched, options_of, tshark_messages

PUBLIC_ROWS = {row["file"]: row for row in expected_rows() if row["oracle"] == "tshark"}
SAMPLE_ROWS = {name: row for name, row in manifest_rows().items() if row["tshark requests"] != TSHARK_UNREADABLE}

# Messages apispy reports that tshark does not, and why apispy is right.
EXPLAINED_EXTRAS: dict[str, tuple[Counter, str]] = {
    "zeek-bro.org.pcap": (
        Counter({("10.0.2.15", 200): 1}),
        "a 200 whose body lost a segment in the capture: tshark cannot reassemble the PDU and drops the response;"
        " apispy skips the gap inside the Content-Length body and reports it flagged `gap`",
    ),
    "edge_gap_body.pcap": (
        Counter({("10.0.0.1", 200): 1}),
        "same as bro.org: a response whose Content-Length body has a hole",
    ),
    "edge_gap_headers.pcap": (
        Counter({("10.0.0.1", 200): 1}),
        "the status line was captured, the rest of the head fell in a gap: apispy reports the status, flagged `gap`",
    ),
    "edge_midstream.pcap": (
        Counter({("10.0.0.1", 200): 1}),
        "the capture starts inside a body that does not end in a line break: tshark glues the next status line to"
        " it; apispy resynchronises at the segment that starts with `HTTP/1.1`",
    ),
}


CASES = [(PUBLIC / name, options_of(row["tshark_options"])) for name, row in sorted(PUBLIC_ROWS.items())] + [
    (PCAPS / name, options_of(row["tshark options"])) for name, row in sorted(SAMPLE_ROWS.items())
]
_compared: dict[Path, tuple[Counter, Counter]] = {}


def compare(path: Path, options: list[str]) -> tuple[Counter, Counter]:
    """(apispy's messages, tshark's messages) of one capture, computed once per session."""
    if path not in _compared:
        records, _ = run_replay(path)
        ours_requests, ours_responses = apispy_messages(records)
        theirs_requests, theirs_responses = tshark_messages(path, options)
        _compared[path] = (ours_requests + ours_responses, theirs_requests + theirs_responses)
    return _compared[path]


@pytest.mark.parametrize(("path", "options"), CASES, ids=[path.name for path, _ in CASES])
def test_capture_has_every_message_tshark_finds_and_only_explained_extras(
    path: Path, options: list[str], tshark: str
) -> None:
    ours, theirs = compare(path, options)
    assert theirs - ours == Counter()
    assert ours - theirs == EXPLAINED_EXTRAS.get(path.name, (Counter(), ""))[0]


def test_overall_agreement_with_tshark_is_at_least_99_5_percent(tshark: str) -> None:
    found = total = 0
    for path, options in CASES:
        ours, theirs = compare(path, options)
        found += matched(ours, theirs)
        total += sum(theirs.values())
    assert total > 4000
    assert found / total >= 0.995
