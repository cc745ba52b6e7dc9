"""The flow table's bounds: at most max_flows flows, idle timeout in packet time, eviction never loses data."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.utils import wrpcap
from support.samples import PCAPS, exchanges, run_replay

from sniffer.capture.pcapfile import open_capture
from sniffer.config import load_config
from sniffer.flows import HEAP_SLACK, Endpoint, FlowLimits, FlowTable
from sniffer.replay import build_pipeline


def many_connections(path: Path, count: int) -> None:
    """`count` connections, each a SYN then a request, all open at once (none finishes)."""
    packets = []
    for index in range(count):
        client = dict(src=f"10.1.{index // 250}.{index % 250 + 1}", dst="10.0.0.1")
        syn = IP(**client) / TCP(sport=40000, dport=80, flags="S", seq=100)
        request = IP(**client) / TCP(sport=40000, dport=80, flags="PA", seq=101, ack=1) / (
            f"GET /c/{index} HTTP/1.1\r\nHost: api\r\n\r\n".encode()
        )
        syn.time, request.time = 1_700_000_000 + index * 0.001, 1_700_000_000 + index * 0.001 + 0.0005
        packets += [syn, request]
    wrpcap(str(path), packets)


def test_flow_table_never_holds_more_than_max_flows(tmp_path: Path) -> None:
    capture = tmp_path / "many.pcap"
    many_connections(capture, 500)
    config = load_config(overrides={"flows": {"max_flows": 50}})
    records = []
    pipeline = build_pipeline(config, lambda transaction: records.append(transaction))
    largest = 0
    for batch in open_capture(str(capture), block_bytes=4096).batches():
        pipeline.process(batch)
        largest = max(largest, len(pipeline.flows))
    pipeline.finish()
    assert largest == 50
    assert pipeline.flows.stats.evictions == 450
    # Evicted flows are flushed, not dropped: every request is still reported, unanswered.
    assert len(records) == 500
    assert {tuple(t.flags) for t in records} == {("no_response",)}


def test_idle_flows_expire_in_packet_time() -> None:
    config = load_config(overrides={"flows": {"idle_timeout_s": 0.0001}})
    records, result = run_replay(PCAPS / "api_python_curl.pcap", config=config)
    assert result.counters["timeouts"] > 0
    assert len([record for record in records if record["method"]]) == 94


def test_tiny_reassembly_buffer_turns_reordering_into_gaps_without_crashing() -> None:
    config = load_config(overrides={"flows": {"max_buffered_bytes": 100}})
    records, result = run_replay(PCAPS / "edge_reordered.pcap", config=config)
    # Bytes forced out as gaps are lost to parsing, but what is whole still parses.
    assert result.counters["gaps"] >= 1
    assert records[0]["method"] == "GET"


def test_eviction_on_a_real_capture_still_reports_every_request() -> None:
    config = load_config(overrides={"flows": {"max_flows": 1}})
    records, result = run_replay(PCAPS / "api_nginx_wrk.pcap", config=config)
    assert result.counters["evictions"] > 0
    baseline, _ = run_replay(PCAPS / "api_nginx_wrk.pcap")
    assert len([r for r in records if r["method"]]) >= len([r for r in baseline if r["method"]]) - 10


def test_port_reuse_after_close_starts_a_new_flow() -> None:
    records, result = run_replay(PCAPS / "edge_close_delimited.pcap", PCAPS / "edge_close_delimited.pcap")
    assert exchanges(records) == 2 * [("GET", "/old", 200), ("GET", "/rst/1", 200), ("GET", "/rst/2", None)]


def test_out_of_order_bytes_of_all_flows_together_stay_under_the_memcap(tmp_path: Path) -> None:
    """Many flows each holding a hole: the flow that pushes the total over the cap turns its holes into gaps."""
    packets = []
    for index in range(50):
        client = dict(src=f"10.2.0.{index + 1}", dst="10.0.0.1")
        syn = IP(**client) / TCP(sport=40000, dport=80, flags="S", seq=100)
        # The first 100 bytes are missing: the 2000 bytes after them wait as out-of-order data.
        later = IP(**client) / TCP(sport=40000, dport=80, flags="PA", seq=201, ack=1) / (b"x" * 2000)
        syn.time = later.time = 1_700_000_000 + index * 0.001
        packets += [syn, later]
    wrpcap(str(tmp_path / "holes.pcap"), packets)
    config = load_config(overrides={"flows": {"max_total_buffered_bytes": 20_000}})
    pipeline = build_pipeline(config, lambda transaction: None)
    largest = 0
    for batch in open_capture(str(tmp_path / "holes.pcap"), block_bytes=4096).batches():
        pipeline.process(batch)
        largest = max(largest, pipeline.flows.budget.used)
    assert largest <= 20_000
    assert pipeline.flows.budget.overruns > 0
    pipeline.finish()
    assert pipeline.flows.budget.used == 0


def test_kept_and_buffered_bytes_all_return_to_the_budget_when_flows_end() -> None:
    """Long keep-alive connections that deliver a lot keep only unacknowledged bytes, and nothing stays counted
    against the shared memory limits once every flow is closed."""
    pipeline = build_pipeline(load_config(), lambda transaction: None)
    most_kept = 0
    # Small blocks, so that the bytes kept are looked at many times while the connections are open.
    for batch in open_capture(str(PCAPS / "api_nginx_wrk.pcap"), block_bytes=16384).batches():
        pipeline.process(batch)
        most_kept = max(most_kept, pipeline.flows.budget.recent_used)
    assert 0 < most_kept < 64 * 1024  # acknowledged bytes are let go of: well under one direction's 64 KiB
    pipeline.finish()
    assert pipeline.flows.budget.recent_used == 0
    assert pipeline.flows.budget.used == 0


# (operation, key, packet time in ms): a segment of flow `key`, its removal (FIN or RST), or a look for idle flows.
_TABLE_STEPS = st.lists(
    st.tuples(st.sampled_from(["segment", "segment", "segment", "remove", "expire"]), st.integers(0, 11),
              st.integers(0, 50)),
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(_TABLE_STEPS, st.integers(1, 6))
def test_flows_expire_and_are_evicted_least_recently_active_first(steps: list, max_flows: int) -> None:
    """The table's lazily renewed heap closes flows in the order an OrderedDict moved to the end per segment
    closed them: by eviction, by idle timeout (which stops at the least recent flow that is not idle, as packet
    times need not grow) and at the end. The tombstones of closed flows, kept in the order they closed, tell."""
    table = FlowTable(FlowLimits(max_flows=max_flows, idle_timeout_s=0.01), lambda flow, exchange: None)
    model: OrderedDict[int, int] = OrderedDict()  # key -> packet time (ns) of its last segment, least recent first
    tombstones: OrderedDict[int, None] = OrderedDict()

    def close_least_recent() -> None:
        tombstones[model.popitem(last=False)[0]] = None
        while len(tombstones) > max_flows:
            tombstones.popitem(last=False)

    now_ns = 0
    for position, (operation, key, ms) in enumerate(steps, start=1):
        now_ns = max(now_ns, ms * 1_000_000)
        if operation == "segment":
            flow = table.flows.get(key)
            if flow is None:
                tombstones.pop(key, None)
                while len(model) >= max_flows:
                    close_least_recent()
                flow = table.create(key, key, Endpoint("10.0.0.1", key), Endpoint("10.0.0.2", 80), position)
            model[key] = ms * 1_000_000
            model.move_to_end(key)
            flow.last_position, flow.last_ts_ns = position, ms * 1_000_000
        elif operation == "remove" and key in model:
            del model[key]
            table.remove(table.flows[key])
        elif operation == "expire":
            while model and next(iter(model.values())) < now_ns - 10_000_000:
                close_least_recent()
            table.expire(now_ns)
        assert list(table.tombstones) == list(tombstones)
        assert set(table.flows) == set(model)
    order = [flow.key for flow in sorted(table.flows.values(), key=lambda flow: flow.last_position)]
    assert order == list(model)
    assert len(table.by_activity) <= 2 * max_flows + HEAP_SLACK + 1


def test_heap_entries_of_removed_flows_are_let_go_of() -> None:
    """Connections that open and close one after another leave entries in the heap, as many as the table's size
    bounds: memory stays bounded by configuration."""
    table = FlowTable(FlowLimits(max_flows=10), lambda flow, exchange: None)
    kept = table.create(0, 0, Endpoint("10.0.0.1", 1), Endpoint("10.0.0.2", 80), 1)
    for key in range(1, 5001):
        table.remove(table.create(key, key, Endpoint("10.0.0.1", key), Endpoint("10.0.0.2", 80), key + 1))
        assert len(table.by_activity) <= 2 * table.limits.max_flows + HEAP_SLACK + 1
    assert list(table.flows.values()) == [kept]
    table.close_all()
    assert kept.closed and not table.flows and not table.by_activity
