"""`apispy replay --workers N`: the same outputs as one process, byte for byte, whatever N.

The workers shard connections by a hash of their 4-tuple; the parent merges their transactions back into input
order, so transaction lines, time-series points and alerts (deduplication included) must not change.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support.samples import EVERY_STAGE_SAMPLES, PCAPS, replay_outputs
from support.tshark_oracle import PUBLIC as PUBLIC_CAPTURES

from sniffer import sharded
from sniffer.batch import KIND_TCP
from sniffer.capture.pcapfile import open_capture
from sniffer.config import load_config
from sniffer.decode.decoder import decode_batch
from sniffer.pipeline import Shard
from sniffer.sharded import ShardedRun, WorkerTask

F_GETPIPE_SZ = 1032  # fcntl.F_GETPIPE_SZ, Linux

APISPY = str(Path(sys.executable).with_name("apispy"))

def outputs_of(tmp_path: Path, workers: int, *captures: str, extra: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Runs apispy with every output on; returns each output file's bytes."""
    command = [APISPY, "replay", "--workers", str(workers), *extra]
    return replay_outputs(command, tmp_path / f"w{workers}", list(captures))


def test_two_and_three_workers_write_exactly_what_one_process_writes(tmp_path: Path) -> None:
    """Every sample as one stream (time goes back between files, which stresses the interval merge), plus a
    public capture of 1000 requests."""
    captures = [str(PCAPS / sample) for sample in EVERY_STAGE_SAMPLES]
    public = PUBLIC_CAPTURES / "zeek-1000-requests-one-dropped-response.pcap"
    assert public.exists(), f"{public} is missing: the public captures sit beside the project"
    captures.append(str(public))
    one = outputs_of(tmp_path, 1, *captures)
    assert one["transactions.jsonl"].count(b"\n") > 3000
    assert one["alerts.jsonl"] and one["points.lp"]
    assert b'"detector":"payload_anomaly"' in one["alerts.jsonl"]  # features computed in workers, judged here
    for workers in (2, 3):
        assert outputs_of(tmp_path, workers, *captures) == one


def test_every_connection_lands_on_one_worker_and_every_segment_on_exactly_one() -> None:
    batch = next(open_capture(str(PCAPS / "api_nginx_wrk.pcap")).batches())
    decoded = decode_batch(batch)
    tcp = np.flatnonzero(decoded.kind == KIND_TCP)
    keys = decoded.flow_keys[tcp]
    for count in (2, 3, 4):
        owners = np.array([Shard(index, count).owns(keys) for index in range(count)])
        assert (owners.sum(axis=0) == 1).all()
        shard_of_connection: dict[frozenset, int] = {}
        for position, row in enumerate(tcp.tolist()):
            ends = frozenset(
                {(decoded.src_addr[row].tobytes(), int(decoded.src_port[row])),
                 (decoded.dst_addr[row].tobytes(), int(decoded.dst_port[row]))}
            )  # fmt: skip
            shard = int(np.flatnonzero(owners[:, position])[0])
            assert shard_of_connection.setdefault(ends, shard) == shard
        assert len(set(shard_of_connection.values())) > 1, "connections are spread over the workers"


def test_a_smaller_share_for_the_parent_still_gives_every_connection_one_owner() -> None:
    keys = np.random.default_rng(7).integers(0, 2**63, size=200_000, dtype=np.uint64) * np.uint64(2)
    for count in (2, 3, 4, 8):
        share = sharded.parent_share(count)
        owners = np.array([Shard(index, count, share).owns(keys) for index in range(count)])
        assert (owners.sum(axis=0) == 1).all()
        assert owners[0].mean() == pytest.approx(share, abs=0.01)
        others = owners[1:].mean(axis=1)
        assert others == pytest.approx([(1 - share) / (count - 1)] * (count - 1), abs=0.01)
    assert sharded.parent_share(1) == 1.0
    assert sharded.parent_share(2) < 0.5, "the parent also merges: it parses less than its worker"
    assert sharded.parent_share(8) == 0.0
    assert not Shard(0, 8, 0.0).owns(keys).any()


START_METHODS = """
import sys, threading
from sniffer.config import load_config
from sniffer.sharded import ShardedRun

def start_methods():
    run = ShardedRun(2, [sys.argv[1]], load_config())
    run.start()
    try:
        return [process._start_method for process in run.processes]
    finally:
        run.abort()

alone = start_methods()
release = threading.Event()
thread = threading.Thread(target=release.wait)
thread.start()
beside_a_thread = start_methods()
release.set()
print(alone, beside_a_thread)
"""


def test_workers_are_forked_unless_another_thread_runs() -> None:
    """A forked worker skips the imports a spawned one repeats; forking beside a running thread is unsafe. (In a
    process of its own: the test process may run threads of earlier tests.)"""
    result = subprocess.run([sys.executable, "-c", START_METHODS, str(PCAPS / "api_python_curl.pcap")],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['fork']", "['spawn']"]


def test_an_output_that_cannot_be_opened_stops_the_started_workers(tmp_path: Path) -> None:
    captures = [str(PCAPS / "api_nginx_wrk.pcap")] * 400  # a worker left running would read for a while
    alerts = tmp_path / "missing" / "alerts.jsonl"
    process = subprocess.Popen(
        [APISPY, "replay", "--workers", "2", "--alerts", str(alerts), *captures],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        _, stderr = process.communicate(timeout=60)
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)  # nothing of its process group is left: the workers ended with it
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # only if the test failed: nothing should be left
    assert process.returncode == 2
    assert stderr.strip().splitlines() == [f"apispy: error: {alerts}: No such file or directory"]


def test_the_merge_holds_order_when_a_worker_must_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """With room for a single held transaction per worker, the faster worker waits on the merge; nothing
    deadlocks and the order is still the input's."""
    monkeypatch.setattr(sharded, "MAX_HELD_ROWS", 1)
    config = load_config()

    def run(workers: int) -> list[tuple]:
        seen: list[tuple] = []
        ShardedRun(workers, [str(PCAPS / "api_nginx_wrk.pcap")], config,
                   lambda t: seen.append((t.ts, t.src_port, t.uri, t.status))).run()  # fmt: skip
        return seen

    one = run(1)
    assert len(one) == 1203
    assert run(2) == one


def test_the_parent_makes_room_for_the_rows_it_holds_and_gives_the_collector_its_thresholds_back() -> None:
    """While it merges, the parent's youngest generation has room for every row it may hold (else collections
    walk the held rows, all alive, again and again); after the run, the thresholds it had."""
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    ShardedRun(2, [str(PCAPS / "api_python_curl.pcap")], load_config(),
               lambda transaction: seen.append(gc.get_threshold())).run()  # fmt: skip
    assert seen and set(seen) == {(sharded.merge_gc_threshold(2), *before[1:])}
    assert sharded.merge_gc_threshold(2) >= sharded.TRACKED_PER_HELD_ROW * sharded.MAX_HELD_ROWS
    assert sharded.merge_gc_threshold(3) - sharded.merge_gc_threshold(2) == (
        sharded.TRACKED_PER_HELD_ROW * sharded.MAX_HELD_ROWS
    )
    assert gc.get_threshold() == before


def test_a_failing_worker_sends_one_error_line() -> None:
    receiver, sender = multiprocessing.Pipe(duplex=False)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        task = WorkerTask(Shard(1, 2), ["/nonexistent/capture.pcap"], load_config(), None)
        sharded.worker_main(task, sender, multiprocessing.Event())
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    assert receiver.recv() == ("error", "worker 1: CaptureError: /nonexistent/capture.pcap: no such file")


def test_the_parent_turns_a_worker_error_into_one_error() -> None:
    run = ShardedRun(2, [str(PCAPS / "api_python_curl.pcap")], load_config(), lambda t: None)
    run.errors, run.worker_counters = [], [{}, {}]
    receiver, sender = multiprocessing.Pipe(duplex=False)
    sender.send(("error", "worker 1: OSError: disk on fire"))
    active = {receiver: 1}
    run._poll(active, None, wait_s=5.0)
    assert run.errors == ["worker 1: OSError: disk on fire"]
    assert not active


def test_stdin_with_workers_is_refused_with_one_line() -> None:
    result = subprocess.run([APISPY, "replay", "--workers", "2", "-"], input="", capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "apispy: error: --workers needs capture files: every worker reads them, and stdin can be read only once"
    ]


def test_sigint_stops_the_workers_and_flushes_what_they_parsed(tmp_path: Path) -> None:
    transactions = tmp_path / "transactions.jsonl"
    captures = [str(PCAPS / "api_nginx_wrk.pcap")] * 400  # long enough to be interrupted
    process = subprocess.Popen(
        [APISPY, "replay", "--workers", "2", "--transactions", str(transactions), *captures],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not transactions.exists() or transactions.stat().st_size < 100_000):
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C does: the whole process group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr
    lines = transactions.read_text().splitlines()
    assert 0 < len(lines) < 400 * 1203
    assert all(line.endswith("}") for line in lines)


def test_workers_with_a_spec_give_the_same_shadow_alerts_and_inventory(tmp_path: Path) -> None:
    spec = ("--spec", str(PCAPS / "attacks_api.yaml"))
    capture = str(PCAPS / "attacks_enum_shadow.pcap")
    one = outputs_of(tmp_path, 1, capture, extra=spec)
    assert b"shadow_endpoint" in one["alerts.jsonl"] and b"x-apispy-shadow" in one["inventory.yaml"]
    assert outputs_of(tmp_path, 2, capture, extra=spec) == one


def shop_names() -> list[str]:
    """60 distinct shop names: literal path segments that the shape rules leave alone."""
    colours = ("red", "blue", "green", "amber", "violet", "grey")
    animals = ("fox", "owl", "lynx", "heron", "otter", "wren", "mole", "hare", "crow", "newt")
    return [f"{colour}-{animal}" for colour in colours for animal in animals]


def test_workers_learn_endpoint_templates_as_one_process_does(tmp_path: Path) -> None:
    """60 connections, each to its own shop name (a literal segment the shape rules leave alone): one process
    learns `{param}` at the 20th distinct name. Each worker alone would see fewer names, and learn later; the
    parent names every endpoint, in input order (the alerts a worker raised too), so the outputs are still the
    same as one process writes."""
    sys.path.insert(0, str(PCAPS))
    from make_edge_cases import conversation, ethernet_pcap, json_response, request

    packets = []
    for number, name in enumerate(shop_names()):
        talk = conversation(41_000 + number)
        # One request carries SQL injection: a worker raises that alert under the name it learned so far.
        query = "?id=1%20UNION%20SELECT%20password%20FROM%20users--" if number == 30 else ""
        packets += talk.handshake()
        packets += talk.exchange(request("GET", f"/api/shops/{name}/items{query}"), json_response(name, 80))
        packets += talk.close()
    capture = tmp_path / "shops.pcap"
    capture.write_bytes(ethernet_pcap(packets))
    one = outputs_of(tmp_path, 1, str(capture))
    endpoints = [json.loads(line)["endpoint"] for line in one["transactions.jsonl"].splitlines()]
    assert len(endpoints) == 60
    assert endpoints.count("/api/shops/{param}/items") == 41
    alerts = [json.loads(line) for line in one["alerts.jsonl"].splitlines()]
    assert [(alert["detector"], alert["endpoint"]) for alert in alerts] == [("injection", "/api/shops/{param}/items")]
    assert "GET /api/shops/{param}/items" in alerts[0]["message"]
    for workers in (2, 3):
        assert outputs_of(tmp_path, workers, str(capture)) == one


def test_a_jwt_is_judged_expected_or_not_by_the_endpoint_one_process_names(tmp_path: Path) -> None:
    """A JWT in a response is expected where the endpoint has a login or token word. Shop names are literal
    segments until one process learns `{param}` (at the 20th name): a JWT from `/api/shops/login-lounge/items`
    (an early name) is expected, one from `/api/shops/token-corner/items` (a late name, `{param}` by then) is
    not. A worker, which learns later, would judge the second by its literal name: the parent judges both."""
    sys.path.insert(0, str(PCAPS))
    from make_edge_cases import conversation, ethernet_pcap, json_response, request, response

    jwt = b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzaG9wIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    names = shop_names()
    names[5], names[35] = "login-lounge", "token-corner"
    packets = []
    for number, name in enumerate(names):
        talk = conversation(42_000 + number)
        answer = json_response(name, 80)
        if number in (5, 35):
            body = b'{"shop": "%s", "token": "%s"}' % (name.encode(), jwt)
            answer = response(200, "OK", headers=(("Content-Type", "application/json"),), body=body)
        packets += talk.handshake()
        packets += talk.exchange(request("GET", f"/api/shops/{name}/items"), answer)
        packets += talk.close()
    capture = tmp_path / "tokens.pcap"
    capture.write_bytes(ethernet_pcap(packets))
    one = outputs_of(tmp_path, 1, str(capture))
    alerts = [json.loads(line) for line in one["alerts.jsonl"].splitlines()]
    assert [(alert["rule"], alert["endpoint"]) for alert in alerts] == [("jwt", "/api/shops/{param}/items")]
    for workers in (2, 3):
        assert outputs_of(tmp_path, workers, str(capture)) == one


def test_the_last_intervals_close_after_the_alerts_as_with_one_process(tmp_path: Path) -> None:
    """One process closes the intervals that a request waiting for its answer held open only with its outputs,
    after the deduplicator's last alerts; the parent must not close them earlier, when the workers' flows end.
    (Found replaying the fuzzing corpus as one stream.)"""
    sys.path.insert(0, str(PCAPS))
    from make_edge_cases import START_NS, conversation, ethernet_pcap, json_response, request

    waiting = conversation(43_000)
    first = waiting.handshake() + waiting.send(0, request("GET", "/api/slow-report"))  # never answered
    for number in range(5):  # the same injection five times: one alert, then four folded into a last one
        talk = conversation(43_100 + number)
        first += talk.handshake()
        first += talk.exchange(request("GET", "/api/items?id=1%27%20OR%20%271%27%3D%271"), json_response("x", 40))
        first += talk.close()
    later = conversation(43_200)
    second = later.handshake() + later.exchange(request("GET", "/api/items"), json_response("y", 40)) + later.close()
    captures = [tmp_path / "first.pcap", tmp_path / "second.pcap"]
    captures[0].write_bytes(ethernet_pcap(first))
    captures[1].write_bytes(ethernet_pcap(second, START_NS + 30 * 1_000_000_000))  # 30 s later
    extra = ("--interval", "1")
    one = outputs_of(tmp_path, 1, *map(str, captures), extra=extra)
    points = one["points.lp"].decode().splitlines()
    alerts = [number for number, line in enumerate(points) if line.startswith("api_alerts,")]
    assert len(alerts) == 2 and "count=4i" in points[alerts[1]]
    assert any(line.startswith("apispy_capture,") for line in points[alerts[1] :]), "intervals close after it"
    assert outputs_of(tmp_path, 2, *map(str, captures), extra=extra) == one


def test_connections_open_at_the_end_are_flushed_in_the_order_one_process_flushes_them(tmp_path: Path) -> None:
    """At the end of the input, one process closes its open connections least recently active first, and each
    writes its unanswered request then. Connections of several workers are merged in that order too. (The bench
    capture, cut while wrk ran, ended with 48 of them in another order.)"""
    sys.path.insert(0, str(PCAPS))
    from make_edge_cases import conversation, ethernet_pcap, json_response, request

    talks = [conversation(44_000 + number) for number in range(24)]
    packets = [packet for talk in talks for packet in talk.handshake()]
    for talk in talks:  # one answered request each...
        packets += talk.exchange(request("GET", f"/api/items/{talk.endpoints[0].port}"), json_response("x", 40))
    for talk in reversed(talks):  # ...then one never answered, in the other order: that is their activity order
        packets += talk.send(0, request("GET", f"/api/orders/{talk.endpoints[0].port}"))
    capture = tmp_path / "open.pcap"
    capture.write_bytes(ethernet_pcap(packets))
    one = outputs_of(tmp_path, 1, str(capture))
    unanswered = [json.loads(line)["uri"] for line in one["transactions.jsonl"].splitlines()][24:]
    assert unanswered == [f"/api/orders/{talk.endpoints[0].port}" for talk in reversed(talks)]
    for workers in (2, 3):
        assert outputs_of(tmp_path, workers, str(capture)) == one


def test_idle_connections_expire_where_one_process_expires_them(tmp_path: Path) -> None:
    """One process looks for idle flows at a segment of any connection; a worker must look at the same segment,
    not at the next one of its own, or their unanswered requests come out between other transactions."""
    sys.path.insert(0, str(PCAPS))
    from make_edge_cases import START_NS, conversation, ethernet_pcap, json_response, request

    waiting = []
    for number in range(12):  # each leaves a request unanswered, then goes quiet
        talk = conversation(45_000 + number)
        waiting += talk.handshake() + talk.send(0, request("GET", f"/api/pending/{number}"))
    later = []
    for number in range(40):  # 130 s later: past the idle timeout
        talk = conversation(46_000 + number)
        later += talk.handshake()
        later += talk.exchange(request("GET", f"/api/items/{number}"), json_response("x", 40)) + talk.close()
    captures = [tmp_path / "waiting.pcap", tmp_path / "later.pcap"]
    captures[0].write_bytes(ethernet_pcap(waiting))
    captures[1].write_bytes(ethernet_pcap(later, START_NS + 130 * 1_000_000_000))
    config = tmp_path / "idle.toml"
    config.write_text("[flows]\nidle_timeout_s = 60\n")
    extra = ("--config", str(config))
    one = outputs_of(tmp_path, 1, *map(str, captures), extra=extra)
    uris = [json.loads(line)["uri"] for line in one["transactions.jsonl"].splitlines()]
    assert uris[:13] == [f"/api/pending/{number}" for number in range(12)] + ["/api/items/0"]
    for workers in (2, 3):
        assert outputs_of(tmp_path, workers, *map(str, captures), extra=extra) == one


def test_worker_pipes_are_widened_so_a_worker_can_run_a_block_ahead() -> None:
    receiver, sender = multiprocessing.get_context("spawn").Pipe(duplex=False)
    try:
        sharded.widen_pipe(sender)
        size = fcntl.fcntl(sender.fileno(), F_GETPIPE_SZ)
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        assert size == sharded.PIPE_BYTES or (limit < sharded.PIPE_BYTES and size == 65536)
    finally:
        receiver.close()
        sender.close()


def test_a_worker_sends_its_messages_in_order_while_it_goes_on() -> None:
    """The worker's sender thread writes what it is given, in order, while the parsing thread goes on: a message
    bigger than the pipe does not hold it up until the parent reads."""
    receiver, sender_end = multiprocessing.Pipe(duplex=False)
    sender = sharded.PipeSender(sender_end)
    big = b"x" * (4 * sharded.PIPE_BYTES)  # more than any pipe holds: the writer waits for the reader
    started = time.monotonic()
    for number in range(3):
        sender.send(("block", number, big))
    assert time.monotonic() - started < 5, "send returns once the message is queued, not written"
    assert [receiver.recv()[1] for _ in range(3)] == [0, 1, 2]
    sender.send(("done", {}))
    sender.close()
    assert receiver.recv() == ("done", {})
    receiver.close()
    sender_end.close()


def test_a_worker_whose_parent_stopped_listening_ends_without_hanging() -> None:
    """The parent closed its end (`abort`): the sender thread drops what is left, the next send raises OSError and
    closing returns, however full the queue was."""
    receiver, sender_end = multiprocessing.Pipe(duplex=False)
    sender = sharded.PipeSender(sender_end)
    receiver.close()
    big = b"x" * sharded.PIPE_BYTES
    with pytest.raises(OSError):
        for _ in range(sharded.SENDS_QUEUED + 4):
            sender.send(("block", big))
            time.sleep(0.05)
    sender.close()
    assert not sender.thread.is_alive()
    sender_end.close()
