"""The parent's merge of `apispy live --workers`: transactions in clock order, never past the slowest process.

The end-to-end run (namespaces, PACKET_FANOUT, tcpreplay) is in tests/sniffer/capture/test_live.py; here the
parent is fed blocks directly, as its workers would send them, so the ordering rules are checked one by one.
"""

from __future__ import annotations

import weakref

from parsers.transaction import Transaction
from sniffer.config import load_config
from sniffer.live_sharded import LiveShardedRun
from sniffer.metrics import CaptureCounters
from sniffer.sharded import FINISHED, Block
from sniffer.shipping import ship

SECOND = 1_000_000_000


def row(uri: str, clock_ns: int) -> tuple[Transaction, tuple[int, int]]:
    """A worker's transaction emitted at `clock_ns`, and where it was emitted: (the clock, 0)."""
    transaction = Transaction(ts=clock_ns / SECOND, src_ip="10.0.0.1", src_port=1, dst_ip="10.0.0.2", dst_port=80,
                              method="GET", uri=uri, host="api", path=uri, query="", http_version="1.1",
                              status=200)  # fmt: skip
    return transaction, (clock_ns, 0)


# Each worker numbers the texts it ships, block after block (sniffer.shipping): per parent, per worker.
NUMBERED: weakref.WeakKeyDictionary[LiveShardedRun, dict[int, dict]] = weakref.WeakKeyDictionary()


def send(run: LiveShardedRun, index: int, rows: list[tuple[Transaction, tuple[int, int]]], clock_ns: int,
         final: bool = False, dropped: int = 0) -> None:  # fmt: skip
    """Worker `index` sends `run` the block of `rows`: its transactions in columns, as they cross the pipe."""
    numbered = NUMBERED.setdefault(run, {}).setdefault(index, {})
    shipped = ship([t for t, _ in rows], [position for _, position in rows], [[] for _ in rows], False, numbered)
    block = Block(shipped, FINISHED if final else clock_ns, final, clock_ns, None, CaptureCounters(packets=len(rows)),
                  [], 0, dropped)  # fmt: skip
    run._receive(index, block, None)


def parent(seen: list[str]) -> LiveShardedRun:
    run = LiveShardedRun([None, None], load_config(), None)  # no sockets, no forks: blocks come from the test
    run.attach(lambda transaction: seen.append(transaction.uri), None, None)
    return run


def test_transactions_wait_for_the_slowest_process_then_come_in_clock_order() -> None:
    seen: list[str] = []
    run = parent(seen)
    send(run, 0, [row("/a", 1 * SECOND), row("/c", 3 * SECOND)], 3 * SECOND)
    assert seen == [], "process 1 has not said where its clock is"
    send(run, 1, [row("/b", 2 * SECOND)], 2 * SECOND)
    assert seen == ["/a"], "only what both clocks have passed"
    send(run, 1, [row("/d", 4 * SECOND)], 5 * SECOND)
    assert seen == ["/a", "/b"], "/c is at process 0's clock itself, which may still emit there: held"
    send(run, 0, [row("/c2", 3 * SECOND)], 4 * SECOND)
    assert seen == ["/a", "/b", "/c", "/c2"]
    send(run, 0, [], 6 * SECOND, final=True)
    assert seen == ["/a", "/b", "/c", "/c2", "/d"], "a finished process holds nothing back"


def test_counters_and_drops_of_every_process_add_up() -> None:
    run = parent([])
    send(run, 0, [row("/a", SECOND)], SECOND, dropped=3)
    send(run, 1, [row("/b", SECOND), row("/c", SECOND)], SECOND, dropped=4)
    assert run.dropped == 7
    health = run._merged_health()
    assert (health.packets, health.dropped) == (3, 7)
    result = run._finish([{"transactions": 1, "packets": 10}, {"transactions": 2, "packets": 20}], [])
    assert result.counters["transactions"] == 3 and result.counters["packets"] == 30
    assert (result.counters["transactions_worker0"], result.counters["transactions_worker1"]) == (1, 2)


def test_waiting_transactions_reach_the_detectors_once_every_clock_is_past_their_delay() -> None:
    """Workers of an idle link send empty blocks whose clock is wall time: once the merged clock is
    `max_batch_delay_s` past the waiting batch's first transaction, the parent's detectors take the batch."""
    from sniffer.alerting import AlertOutputs

    config = load_config()
    run = LiveShardedRun([None, None], config, None)
    alerting = AlertOutputs(config, None, None, cross_flow_only=True)
    run.attach(lambda transaction: None, None, alerting)
    engine = alerting.engine
    send(run, 0, [row("/a", 10 * SECOND)], 10 * SECOND + 2)
    send(run, 1, [row("/b", 10 * SECOND + 1)], 10 * SECOND + 1)
    assert len(engine.collector) == 1  # /a is released; /b waits at process 1's own clock
    delay_ns = int(config.detectors.max_batch_delay_s * SECOND)
    send(run, 0, [], 10 * SECOND + delay_ns // 2)
    send(run, 1, [], 10 * SECOND + delay_ns // 2)
    assert len(engine.collector) == 2 and engine.raised == 0  # idle for half the delay: still waiting
    send(run, 0, [], 10 * SECOND + delay_ns)
    send(run, 1, [], 10 * SECOND + delay_ns)
    assert not len(engine.collector)
    alerting.close()
