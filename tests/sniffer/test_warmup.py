"""The warm-up exchange really goes through the whole pipeline (so it really loads every kernel)."""

from sniffer.config import load_config
from sniffer.warmup import warm_up


def test_warm_up_produces_one_transaction() -> None:
    assert warm_up(load_config()) == 1
