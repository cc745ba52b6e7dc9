"""apispy against Zeek's own http.log where tshark is wrong or incomplete (oracle `zeek` in expected.tsv).

Every request Zeek logs must be among apispy's, and every status Zeek logs too. Where apispy reports more, the
difference is named here with the reason.
"""

from __future__ import annotations

from collections import Counter

import pytest
from support.samples import run_replay
from support.tshark_oracle import PUBLIC, apispy_messages, expected_rows
from support.zeek_oracle import zeek_messages

ZEEK_ROWS = sorted(row["file"] for row in expected_rows() if row["oracle"] == "zeek")

EXPLAINED_EXTRAS: dict[str, tuple[Counter, str]] = {
    "zeek-http-11-request-then-cruft.pcap": (
        Counter({("192.168.12.5", 400): 1}),
        "the server answers the cruft after the request with a 400; Zeek stops parsing the connection at the"
        " cruft, apispy (like tshark) still reports the answer, with no request",
    ),
    "zeek-methods.pcap": (
        Counter({("128.2.6.136", 400): 5, ("128.2.6.136", 403): 1, ("128.2.6.136", 411): 2}),
        "requests such as `PUT /HTTP/1.1` have no version: Zeek reads them as HTTP/0.9 and so takes the server's"
        " `HTTP/1.0 400` answer for a body without status; apispy (like tshark) reads the status line",
    ),
}


@pytest.mark.parametrize("name", ZEEK_ROWS)
def test_capture_has_every_transaction_zeek_logs(name: str) -> None:
    records, _ = run_replay(PUBLIC / name)
    ours_requests, ours_responses = apispy_messages(records)
    zeek_requests, zeek_responses = zeek_messages(name)
    assert zeek_requests - ours_requests == Counter()
    assert zeek_responses - ours_responses == Counter()
    extras = (ours_requests - zeek_requests) + (ours_responses - zeek_responses)
    assert extras == EXPLAINED_EXTRAS.get(name, (Counter(), ""))[0]
