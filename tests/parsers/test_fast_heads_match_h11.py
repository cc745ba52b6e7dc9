"""The fast head reader (parsers.headparse, numba) against h11 as the strict reference, on every capture.

Each capture of the suite (the bundled samples and attack captures, and every public capture) is replayed twice
in-process: once with `[http] strict = true` (h11 reads every head) and once on the fast path. Both must give
the same transactions, message by message: every public field, every header as parsed, the unredacted target,
the kept bodies and the flags. The counts of how many heads the fast path took itself show it is not idle.
"""

from __future__ import annotations

from dataclasses import astuple
from pathlib import Path

import pytest
from support.samples import PCAPS
from support.tshark_oracle import PUBLIC

from parsers import http1
from parsers.transaction import Transaction
from sniffer.capture.pcapfile import open_capture
from sniffer.config import load_config
from sniffer.replay import replay

NOT_CAPTURES = {"edge_not_a_capture.pcap", "edge_truncated_header.pcap"}  # their one-line errors are tested elsewhere
CAPTURES = sorted(
    path for path in [*PCAPS.glob("*.pcap*"), *PUBLIC.glob("*.pcap*")] if path.name not in NOT_CAPTURES
)


def transactions_of(path: Path, strict: bool) -> list[tuple]:
    config = load_config(overrides={"http": {"strict": strict}})
    found: list[Transaction] = []
    replay([open_capture(str(path))], config, found.append)
    return [astuple(transaction) for transaction in found]


def test_the_suite_has_the_public_captures() -> None:
    assert len([path for path in CAPTURES if path.parent == PUBLIC.resolve() or path.parent == PUBLIC]) >= 20


@pytest.mark.parametrize("path", CAPTURES, ids=lambda path: path.name)
def test_fast_path_and_h11_give_identical_transactions(path: Path) -> None:
    strict = transactions_of(path, strict=True)
    fast = transactions_of(path, strict=False)
    assert len(fast) == len(strict)
    for index, (fast_one, strict_one) in enumerate(zip(fast, strict, strict=True)):
        assert fast_one == strict_one, f"transaction {index} differs"


def test_the_fast_path_reads_most_heads_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """On real API traffic (nginx and wrk) h11 is asked about no head at all: the fast path is the one used."""
    calls = {"h11": 0}
    for name in ("maybe_read_from_IDLE_client", "maybe_read_from_SEND_RESPONSE_server"):
        original = getattr(http1, name)

        def counting(buffer, original=original):
            calls["h11"] += 1
            return original(buffer)

        monkeypatch.setattr(http1, name, counting)
    transactions = transactions_of(PCAPS / "api_nginx_wrk.pcap", strict=False)
    assert len(transactions) == 1203
    assert calls["h11"] == 0
    transactions_of(PCAPS / "api_nginx_wrk.pcap", strict=True)
    assert calls["h11"] >= 2 * 1203
