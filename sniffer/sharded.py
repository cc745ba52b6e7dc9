"""Replay on several processes (`--workers N`): connections sharded by a symmetric hash of their 4-tuple.

The parent parses shard 0 itself and starts a worker process for each other shard, so N processes work on N cores.
Shard 0 is smaller than the others (`parent_share`): the parent also merges. The workers are forked where that is
safe (`ShardedRun.start`), so they skip apispy's start-up. Every process reads every capture itself: reading and
decoding are numba kernels and cost little next to HTTP parsing, and it saves copying packets between processes.
Each keeps only the TCP segments of its shard (see `Shard`: both directions of a connection land in the same shard,
and connections are given to shards in the order they are first seen, sniffer.shardsplit) and runs the stages
whose state is per connection: reassembly, HTTP parsing, transaction records with templating, and the detectors
that need the bodies, which only that process holds (injection, data exposure, and the features the payload
baselines compare). Per capture block (a step), each shard hands the parent its transactions' public
fields with those features, the alerts its detectors raised, its packet clock and the time of its oldest unanswered
request.

The parent runs what must see every connection: the detectors whose state spans connections (rate abuse, brute
force, enumeration, shadow endpoints, payload baselines per endpoint) and the inventory, deduplication of every
alert, the interval metrics, the summary and every output. It takes step k once every shard has reported it, as
one process takes a block: the transactions emitted before the block's end, in input order (`Pipeline.position`),
then the packets, then the interval clock with the oldest request any shard still waits on. So every output is
the same, byte for byte, as with one process. The parent also names every request's endpoint again, in input
order: a shard learns templates from its own connections only (and its body detectors' alerts name what it
learned, renamed here; whether a JWT in a response is expected is judged here too, by these names). A capture with
few connections splits unevenly (sharding is by connection).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import multiprocessing
import queue
import signal
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from operator import itemgetter
from typing import Any

import numpy as np

from detectors.alert import Alert
from detectors.batchkeys import TransactionBatch
from detectors.engine import ExpectedJwts, worker_payload_detectors
from detectors.openapi import ApiSpec
from parsers.transaction import BatchCollector, Transaction
from sniffer.alerting import AlertOutputs
from sniffer.config import Config
from sniffer.entry import GC_THRESHOLDS
from sniffer.metrics import NS_PER_S, CaptureCounters, IntervalMetrics, packet_counts
from sniffer.outputs import MetricOutputs
from sniffer.pipeline import Pipeline, Shard
from sniffer.records import EndpointNamer
from sniffer.replay import ReplayResult, build_pipeline, counters, open_all, templater_of
from sniffer.shipping import ShippedRows, received, ship
from sniffer.summary import EndpointSummary

# Counters of the whole capture, which every worker counts alike: taken from worker 0, not summed.
# How far a worker may run ahead of the slowest before it is made to wait: transactions held, and steps.
MAX_HELD_ROWS = 200_000
MAX_STEPS_AHEAD = 64
# Each held row is some four objects the garbage collector tracks: its transaction, its entry and position tuples
# and its list of alerts. At the pipeline's youngest-generation threshold (GC_THRESHOLDS), every 50,000 of them
# set off a collection that walked the rows still held, all of them alive: 15 to 17 collections, 0.3-0.6 s of the
# parent's CPU time on the bench capture with 2 workers (the parent is the busier process). With room in that
# generation for every row the parent may hold, rows are merged, and freed, before a collection comes. The workers
# keep the pipeline's thresholds.
TRACKED_PER_HELD_ROW = 4
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Python 3.10+ names it; Linux only)
PIPE_BYTES = 1 << 20
SENDS_QUEUED = 4  # a worker's messages pickled and waiting for the pipe (PipeSender)
FINISHED = 1 << 62  # a finished worker's `done_before`: nothing more will come from it
EMITTED_AT = itemgetter(3)  # a held entry's place in the input (see `held_entries`)
CAPTURE_WIDE_COUNTERS = frozenset(
    {"packets", "bytes", "tcp_packets", "malformed_packets", "fragments_reassembled"}
)


# The parent parses a smaller share of the connections than each worker: it also merges what every shard sends
# (names endpoints, runs the detectors that span connections, the metrics and every output). Chosen so that both
# processes of `--workers 2` are busy alike (compiled build, the bench, writing its time series). Counted by
# callgrind on the bench capture's first 120,000 packets (whole processes, the worker's count including the start-up
# it shares with the parent before the fork), the parent and its worker execute 3,256M and 2,871M at 0.3, 3,056M and
# 3,111M at 0.45: alike at about 0.43. Their CPU time after the fork on the whole bench capture (5 runs each,
# in turns: this VM's times swing by a third from run to run) was 2.71 s and 2.27 s on average at 0.3, 2.40 s and
# 2.53 s at 0.43: alike at about 0.4. (An older build's wall times had put it at 0.3, with the worker's instructions
# seemingly slower; the CPU times do not show that.) At 0.4, with the cheaper judge, transactions and shipping
# since, they execute 2,998M and 2,916M. The parent then parses 30% of the connections, 6.7% with 3 processes and
# none from 4 on.
MERGE_COST = 0.4


def parent_share(workers: int) -> float:
    """The share of the connections the parent of `workers` processes parses itself (shard 0)."""
    return max(0.0, 1.0 - MERGE_COST * (workers - 1)) / workers


def merge_gc_threshold(workers: int) -> int:
    """The parent's youngest-generation threshold while it merges `workers` processes (see TRACKED_PER_HELD_ROW)."""
    return GC_THRESHOLDS[0] + TRACKED_PER_HELD_ROW * MAX_HELD_ROWS * (workers - 1)


def widen_pipe(connection: Connection) -> None:
    """Lets the pipe hold up to PIPE_BYTES (Linux's default limit for a user; 64 KB otherwise). A block of a
    thousand transactions weighs a few hundred KB: through a 64 KB pipe, the worker would wait for the parent to
    read each one, and the two processes would take turns instead of working side by side."""
    try:
        fcntl.fcntl(connection.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass  # a lower limit (fs.pipe-max-size): the default pipe still works, only with more waiting


class WorkerError(Exception):
    """A worker failed; the message says which and why."""


@dataclass(frozen=True)
class WorkerTask:
    shard: Shard
    paths: list[str]
    config: Config
    spec: ApiSpec | None
    # Whether the parent writes time series, and so needs each block's oldest waiting request: finding it
    # walks every open flow, which a run without time series need not pay at each block.
    needs_pending: bool = True


@dataclass
class Block:
    """What a worker sends after each capture block (a step): enough for the parent to take the step as one
    process would have taken it. Every worker reads the same blocks, so step k is the same input for all.

    A worker's `rows` are its transactions in columns (sniffer.shipping): their public fields, the bytes their
    bodies weighed, the alerts the worker's detectors raised, their JSON key sets for the anomaly baselines (their
    feature values are row i of `features`) and where each was emitted: (`Pipeline.position`, the position of its
    flow's last segment), which orders the flows that close at one position as one process closes them. (The
    parent's own shard, which crosses no pipe, makes held entries instead: see `held_entries`.)
    """

    rows: ShippedRows | list[tuple]
    done_before: int  # no row will come from an input position before this one
    final: bool  # the worker's last block: its flows are closed
    clock_ns: int
    oldest_pending_ns: int | None
    health: CaptureCounters
    packet_counts: list[tuple[int, int, int]]  # worker 0 only: (interval start, packets, bytes) of the block
    bytes_read: int
    dropped: int = 0  # live capture: packets this shard's sockets lost so far
    # The rows' anomaly feature values, one row each, in one array: pickling a small array per transaction
    # costs some 8 us each way, more than the rest of the row. Each row then carries only its JSON key sets.
    features: np.ndarray | None = None


@dataclass
class _Step:
    """One step as the workers report it; the parent takes it once every worker has."""

    reported: int = 0
    done_before: int = FINISHED
    clock_ns: int = 0
    packet_counts: list[tuple[int, int, int]] = field(default_factory=list)
    bytes_read: int = 0


def held_entries(block: Block, texts: list[str | None]) -> list[tuple]:
    """A block's rows as the parent holds them: (transaction, bytes its bodies weighed, alerts raised, where it
    was emitted). A worker's columns become transactions here (`texts`: that worker's texts by number, see
    sniffer.shipping); the parent's own shard (a `local` collector) makes entries directly."""
    rows = block.rows
    if isinstance(rows, ShippedRows):
        return received(rows, block.features, texts)
    return rows


class ShardCollector:
    """Collects one shard's transactions between blocks and runs the body detectors on them; `block()` hands
    them on with the shard's state (a worker sends it to the parent; the parent takes its own shard's)."""

    def __init__(self, task: WorkerTask, position: Callable[[], int] | None = None, local: bool = False) -> None:
        """`position()`: where in the input a transaction is emitted (default: the pipeline's `position`, with its
        flow's last segment's position after it). `local`: the parent's own shard, whose rows are held entries
        already (see `held_entries`)."""
        self.task = task
        self.position = position
        self.local = local
        self.pipeline: Pipeline | None = None
        self.transactions: list[Transaction] = []
        self.positions: list[tuple[int, int]] = []
        self.interval_ns = int(task.config.metrics.interval_s * NS_PER_S)
        self.numbered: dict[str | None, int] = {}  # the texts shipped to the parent, by number (sniffer.shipping)
        self.payload = self.tagger = None
        if task.config.detectors.enabled:
            self.payload, self.tagger = worker_payload_detectors(task.config.detectors)

    def on_transaction(self, transaction: Transaction) -> None:
        self.transactions.append(transaction)
        if self.position is None:
            self.positions.append((self.pipeline.position, self.pipeline.emitting_flow_position))
        else:
            self.positions.append((self.position(), 0))

    def _rows(self) -> tuple[ShippedRows | list[tuple], np.ndarray | None]:
        """The rows of the transactions collected since the last block, and their anomaly feature values (see
        `Block`); the body detectors run here, where the bodies are."""
        transactions, positions = self.transactions, self.positions
        self.transactions, self.positions = [], []
        alerts: list[list[Alert]] = [[] for _ in transactions]
        values = []
        if self.payload is not None:
            size = self.task.config.detectors.batch_size
            for start in range(0, len(transactions), size):
                chunk = TransactionBatch(transactions[start : start + size])  # its bodies taken once for both
                alerts[start : start + size] = self.payload.inspect_rows(chunk).as_lists(len(chunk))
                if self.tagger is not None:
                    values.append(self.tagger.tag(chunk))
        if self.local:
            # The parent keeps its own transactions (no copy through a tuple), stripped of what a worker's
            # transaction never brings along, so that every shard's transactions look alike to the merge.
            entries = []
            for t, raised, position in zip(transactions, alerts, positions, strict=True):
                entries.append((t, len(t.req_body) + len(t.resp_body), raised, position))
                t.forwarded_for = t.forwarded = t.raw_target = ""
                t.req_body = t.resp_body = b""
                t.req_headers = t.resp_headers = ()  # as a worker's transaction comes: the shared default
            return entries, None
        features = np.concatenate(values) if values else None
        return ship(transactions, positions, alerts, features is not None, self.numbered), features

    def block(self, packets: Any, bytes_read: int, final: bool = False) -> Block:
        pipeline = self.pipeline
        stats, flows = pipeline.stats, pipeline.flows
        health = CaptureCounters(
            packets=stats.packets, bytes=stats.bytes, flows_active=len(flows), flows_evicted=flows.stats.evictions,
            gaps=flows.stats.gaps, parse_errors=flows.stats.parse_errors,
        )
        counts = []
        if packets is not None and len(packets):
            counts = packet_counts(packets.ts_ns, packets.wire_lengths, self.interval_ns)
        rows, features = self._rows()
        return Block(
            rows, FINISHED if final else pipeline.batch_end_position, final, stats.last_ts_ns,
            flows.oldest_pending_ts() if self.task.needs_pending else None, health, counts, bytes_read,
            features=features,
        )


class PipeSender:
    """Sends a worker's messages to the parent from a thread of its own, so that the worker parses its next
    block while the last one waits for room in the pipe. The parent reads only between its own blocks, and a
    block is more than the pipe holds (PIPE_BYTES; the bench capture's blocks of some 4,600 transactions weigh
    1.7 MB each): sending from the parsing thread held a worker of that capture some 0.25 s of its 3 s, in turns
    with the parent instead of beside it. At most SENDS_QUEUED messages wait, pickled. Messages go in the order they
    are given."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.queued: queue.Queue[bytes | None] = queue.Queue(SENDS_QUEUED)
        self.error: OSError | None = None
        self.thread = threading.Thread(target=self._send_all, name="apispy-worker-sender", daemon=True)
        self.thread.start()

    def send(self, message: tuple) -> None:
        """Queues `message`; raises the error that ended the sending (the parent is gone) if one did."""
        if self.error is not None:
            raise self.error
        self.queued.put(ForkingPickler.dumps(message))  # pickled here: the sender thread then only writes

    def close(self) -> None:
        """Sends what is queued, then stops the thread."""
        self.queued.put(None)
        self.thread.join()

    def _send_all(self) -> None:
        while (payload := self.queued.get()) is not None:
            if self.error is None:
                try:
                    self.connection.send_bytes(payload)
                except OSError as error:  # the parent closed the pipe (`abort`): what is left is dropped
                    self.error = error


def worker_main(task: WorkerTask, connection: Connection, stop: Any) -> None:
    """One worker process: its shard of every capture, start to end (or until the parent sets `stop`). Shard 0
    is the parent's own, which also counts the packets and reports the captures' warnings."""
    # Ctrl-C reaches the whole process group: the parent decides when to stop, and tells the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    gc.set_threshold(*GC_THRESHOLDS)
    sender = PipeSender(connection)
    try:
        collector = ShardCollector(task)
        pipeline = collector.pipeline = build_pipeline(task.config, collector.on_transaction, task.spec, task.shard)
        for reader in open_all(task.paths):
            for batch in reader.batches():
                pipeline.process(batch)
                sender.send(("block", collector.block(None, 0)))
                if stop.is_set():
                    break
            if stop.is_set():
                break
        pipeline.finish()
        sender.send(("block", collector.block(None, 0, final=True)))
        sender.send(("done", counters(pipeline)))
    except Exception as error:  # noqa: BLE001 - reported to the parent as one line, never a traceback
        with contextlib.suppress(OSError):  # the parent is gone or stopped listening (`abort`)
            sender.send(("error", f"worker {task.shard.index}: {type(error).__name__}: {error}"))
    finally:
        sender.close()
        connection.close()


class Merge:
    """What the parent does with each merged transaction, in input order: what one process's `Run._record` does,
    after naming the request's endpoint again. Each shard names its endpoints from its own connections; templates
    learned from all of them, in input order, are what one process would name. Compiled, its fields are typed
    (sharded.pxd) and each call per transaction is a C call, where bound methods held in locals were calls by name:
    35M of the parent's 3,429M instructions on the bench subset (callgrind, `--workers 2`, time series on)."""

    __slots__ = ("batches", "endpoints", "engine", "expected_jwts", "metrics", "namer", "on_transaction")

    def __init__(self, namer: EndpointNamer, expected_jwts: ExpectedJwts) -> None:
        self.namer = namer
        self.expected_jwts = expected_jwts  # whether a JWT in a response is expected: judged by the names here
        self.endpoints = EndpointSummary()
        self.metrics: IntervalMetrics | None = None
        self.engine: Any = None
        self.batches: BatchCollector | None = None
        self.on_transaction: Callable[[Transaction], None] | None = None

    def attach(
        self, on_transaction: Callable[[Transaction], None] | None, metrics: IntervalMetrics | None, engine: Any
    ) -> None:
        self.on_transaction = on_transaction
        self.metrics = metrics
        self.engine = engine
        # Straight to the detectors' batch collector, as one process's replay loop does.
        self.batches = engine.collector if engine is not None else None

    def take(self, rows: list[tuple]) -> None:
        """Each held entry (see `held_entries`), in the order given."""
        for row in rows:
            self._take(row[0], row[1], row[2])

    def _take(self, transaction: Transaction, body_bytes: int, raised: Sequence[Alert]) -> None:
        if transaction.method:  # a request: named here (a response alone has no endpoint)
            endpoint = self.namer.endpoint(transaction.method, transaction.path)
            if endpoint != transaction.endpoint:
                raised = [alert.about_endpoint(endpoint or transaction.path)
                          if alert.endpoint == (transaction.endpoint or transaction.path) else alert
                          for alert in raised]  # fmt: skip
                transaction.endpoint = endpoint
        if raised:
            raised = self.expected_jwts.unexpected(transaction, raised)
        self.endpoints.add(transaction)
        if self.metrics is not None:
            self.metrics.add(transaction)
        if self.batches is not None and self.batches.add(transaction, body_bytes, raised):
            self.engine.inspect_sealed()
        if self.on_transaction is not None:
            self.on_transaction(transaction)


class ShardedRun:
    """The parent: starts the workers, merges what they send into the outputs, and returns the summary."""

    def __init__(
        self,
        workers: int,
        paths: list[str],
        config: Config,
        on_transaction: Callable[[Transaction], None] | None = None,
        outputs: MetricOutputs | None = None,
        alerting: AlertOutputs | None = None,
        spec: ApiSpec | None = None,
    ) -> None:
        """The outputs may come later, in `attach` (after `start`)."""
        self.workers = workers
        self.paths = paths
        self.config = config
        self.spec = spec
        self.stop: Any = None  # set by `start`, which tells the workers to stop
        self.time_series: bool | None = None
        self.active: dict[Connection, int] = {}  # the pipes of the workers still running, and their shards
        self.processes: list[Any] = []
        self.merge = Merge(EndpointNamer(templater_of(config), spec), ExpectedJwts(config.detectors))
        self.endpoints = self.merge.endpoints
        self.steps: deque[_Step] = deque()  # steps not yet taken; the first is step number `self.first_step`
        self.first_step = 0
        self.sent = [0] * workers  # blocks received from each worker
        self.finished = [False] * workers
        self.held: list[deque[tuple]] = [deque() for _ in range(workers)]
        self.texts: list[list[str | None]] = [[] for _ in range(workers)]  # each worker's, by number (`held_entries`)
        self.pending: list[int | None] = [None] * workers
        self.health = [CaptureCounters() for _ in range(workers)]
        self.reported_pending: list[deque[int | None]] = [deque() for _ in range(workers)]  # per step not yet taken
        self.reported_health: list[deque[CaptureCounters]] = [deque() for _ in range(workers)]
        self.attach(on_transaction, outputs, alerting)

    def attach(
        self,
        on_transaction: Callable[[Transaction], None] | None,
        outputs: MetricOutputs | None,
        alerting: AlertOutputs | None,
    ) -> None:
        """Where the merged transactions, metrics and alerts go: outputs with threads of their own are built
        after the workers are forked."""
        self.on_transaction = on_transaction
        self.outputs = outputs
        self.metrics = outputs.metrics if outputs is not None else None
        self.alerting = alerting
        self.merge.attach(on_transaction, self.metrics, alerting.engine if alerting is not None else None)
        if self.metrics is not None:
            self.metrics.health = self._merged_health
            self.metrics.pending_since = self._oldest_pending

    def _merged_health(self) -> CaptureCounters:
        merged = CaptureCounters(packets=self.health[0].packets, bytes=self.health[0].bytes)
        for health in self.health:
            merged.flows_active += health.flows_active
            merged.flows_evicted += health.flows_evicted
            merged.gaps += health.gaps
            merged.parse_errors += health.parse_errors
        return merged

    def _oldest_pending(self) -> int | None:
        """The oldest request waiting for its answer in any worker at the step being taken. (Transactions held
        here for later steps were still waiting at this one: their worker counted them.)"""
        waiting = [pending for pending in self.pending if pending is not None]
        return min(waiting) if waiting else None

    def start(self, time_series: bool | None = None) -> None:
        """Starts a worker process for each shard but the first, which this process parses itself. They are
        forked when no other thread runs here (`apispy replay` starts them before its outputs start theirs): a
        forked worker skips the imports and set-up a spawned one would repeat, some 0.5 s of a core.
        `time_series`: whether metrics will be attached (default: whether they are)."""
        self.time_series = time_series
        context = multiprocessing.get_context("fork" if threading.active_count() == 1 else "spawn")
        self.stop = context.Event()
        for index in range(1, self.workers):
            receiver, sender = context.Pipe(duplex=False)
            widen_pipe(sender)
            process = context.Process(target=worker_main, args=(self._task(index), sender, self.stop),
                                      name=f"apispy-worker-{index}")
            process.start()
            sender.close()
            self.active[receiver] = index
            self.processes.append(process)

    def abort(self) -> None:
        """Stops the workers `start` started, without taking what they send."""
        if self.stop is not None:
            self.stop.set()
        for connection in self.active:
            connection.close()  # a worker blocked on a full pipe gets an error and ends
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()

    def run(
        self, on_progress: Callable[[int], None] | None = None, should_stop: Callable[[], bool] = lambda: False
    ) -> ReplayResult:
        """Parses shard 0 here, merging as blocks come in (on two cores, two processes, not a parent idling
        beside two workers); starts the workers first unless `start` did."""
        if self.stop is None:
            self.start()
        stop, active = self.stop, self.active
        self.worker_counters = [{} for _ in range(self.workers)]
        self.errors: list[str] = []
        warnings: list[str] = []
        thresholds = gc.get_threshold()
        gc.set_threshold(merge_gc_threshold(self.workers), *thresholds[1:])
        try:
            collector = ShardCollector(self._task(0), local=True)
            pipeline = collector.pipeline = build_pipeline(
                self.config, collector.on_transaction, self.spec, collector.task.shard
            )
            for reader in open_all(self.paths):
                read = 0
                for batch in reader.batches():
                    pipeline.process(batch)
                    self._receive(0, collector.block(batch, reader.bytes_consumed - read), on_progress)
                    read = reader.bytes_consumed
                    self._poll(active, on_progress, wait_s=0.0)
                    # Ahead of the slowest worker by too much: wait for it (memory stays bounded).
                    while active and self.sent[0] - self.first_step >= MAX_STEPS_AHEAD and not self.errors:
                        self._poll(active, on_progress, wait_s=0.5)
                    if should_stop() or self.errors:
                        stop.set()
                        break
                warnings.extend(reader.warnings)
                if stop.is_set():
                    break
            pipeline.finish()
            self._receive(0, collector.block(None, 0, final=True), on_progress)
            self.worker_counters[0] = counters(pipeline)
            while active:
                if should_stop():
                    stop.set()
                self._poll(active, on_progress, wait_s=0.5)
        finally:
            gc.set_threshold(*thresholds)
            stop.set()
            for process in self.processes:
                process.join(timeout=10)
                if process.is_alive():
                    process.kill()
        if self.errors:
            raise WorkerError("; ".join(self.errors))
        if should_stop():
            warnings.append("interrupted: stopped reading; everything read so far was flushed")
        return self._finish(self.worker_counters, warnings)

    def _task(self, index: int) -> WorkerTask:
        shard = Shard(index, self.workers, parent_share(self.workers), first_sight=True)
        needs_pending = self.time_series if self.time_series is not None else self.metrics is not None
        return WorkerTask(shard, self.paths, self.config, self.spec, needs_pending)

    def _poll(
        self, active: dict[Connection, int], on_progress: Callable[[int], None] | None, wait_s: float
    ) -> None:
        """Takes what the workers have sent (waiting up to `wait_s` for something). A worker far ahead of the
        others is not read until the merge catches up: its pipe fills and it waits."""
        readable = [
            connection
            for connection, index in active.items()
            if len(self.held[index]) < MAX_HELD_ROWS and self.sent[index] - self.first_step < MAX_STEPS_AHEAD
        ]
        for connection in wait(readable, timeout=wait_s):
            index = active[connection]
            try:
                message = connection.recv()
            except EOFError:
                self.errors.append(f"worker {index} ended without finishing its share")
                del active[connection]
                self._done(index)
                continue
            if message[0] == "block":
                self._receive(index, message[1], on_progress)
            elif message[0] == "done":
                self.worker_counters[index] = message[1]
                del active[connection]
                self._done(index)
            else:
                self.errors.append(message[1])
                del active[connection]
                self._done(index)

    def _receive(self, index: int, block: Block, on_progress: Callable[[int], None] | None) -> None:
        number = self.sent[index] - self.first_step
        self.sent[index] += 1
        while len(self.steps) <= number:
            self.steps.append(_Step())
        step = self.steps[number]
        step.reported += 1
        step.done_before = min(step.done_before, block.done_before)
        step.clock_ns = max(step.clock_ns, block.clock_ns)
        step.packet_counts.extend(block.packet_counts)
        step.bytes_read += block.bytes_read
        self.held[index].extend(held_entries(block, self.texts[index]))
        self.reported_pending[index].append(block.oldest_pending_ns)
        self.reported_health[index].append(block.health)
        if block.final:
            self.finished[index] = True
        self._take_steps(on_progress)

    def _take_steps(self, on_progress: Callable[[int], None] | None = None) -> None:
        """Takes every step all workers have reported (a finished worker counts as having reported every later
        step), as one process takes a block: its transactions, its packets, then the interval clock."""
        while self.steps:
            step = self.steps[0]
            behind = [
                index for index in range(self.workers)
                if self.sent[index] <= self.first_step and not self.finished[index]
            ]  # fmt: skip
            if behind:
                return
            self.steps.popleft()
            self.first_step += 1
            for index in range(self.workers):
                if self.reported_pending[index]:
                    self.pending[index] = self.reported_pending[index].popleft()
                    self.health[index] = self.reported_health[index].popleft()
                else:
                    self.pending[index] = None  # finished earlier
            self._release(step.done_before)
            if self.metrics is not None:
                self.metrics.add_packet_counts(step.packet_counts)
                if step.done_before != FINISHED:
                    # The last step holds what the flows gave as they ended, after the input's last block: one
                    # process's clock does not move then, and what its last requests held open closes with the
                    # outputs, after the last alerts.
                    self.metrics.advance(step.clock_ns)
            if on_progress is not None and step.bytes_read:
                on_progress(step.bytes_read)

    def _release(self, done_before: int) -> None:
        """Hands on, in input order, every transaction emitted before `done_before`. Flows of several workers
        that close at one input position (idle, or at the end of the input) come least recently active first, as
        one process closes them."""
        rows: list[tuple] = []
        shards = 0
        for held in self.held:
            count = len(rows)
            while held and held[0][-1][0] < done_before:
                rows.append(held.popleft())
            shards += len(rows) > count
        if shards > 1:
            # Each shard's rows come in input order: a stable sort of them one shard after the other is the merge,
            # the lower shard first at one position (a C sort of runs, where heapq.merge took a Python step a row).
            rows.sort(key=EMITTED_AT)
        self.merge.take(rows)

    def _done(self, index: int) -> None:
        """The worker ended (normally after its final block; else it failed and the run ends in an error)."""
        self.finished[index] = True
        self._take_steps()

    def _merged_counters(self, worker_counters: list[dict[str, int]]) -> dict[str, int]:
        """Every shard read the whole capture: its counters of the capture as a whole are taken from shard 0,
        the rest are summed."""
        merged: dict[str, int] = {}
        for index, counts in enumerate(worker_counters):
            for name, value in counts.items():
                if name in CAPTURE_WIDE_COUNTERS:
                    if index == 0:
                        merged[name] = value
                else:
                    merged[name] = merged.get(name, 0) + value
        return merged

    def _finish(self, worker_counters: list[dict[str, int]], warnings: list[str]) -> ReplayResult:
        merged = self._merged_counters(worker_counters)
        merged["workers"] = self.workers
        for index, counts in enumerate(worker_counters):  # how evenly the connections were shared out
            merged[f"transactions_worker{index}"] = counts.get("transactions", 0)
        result = ReplayResult(merged, self.endpoints, warnings)
        if self.alerting is not None:
            self.alerting.close()
            result.counters.update(self.alerting.counters())
        if self.outputs is not None:
            result.warnings.extend(self.outputs.close())
            result.counters.update(self.outputs.counters())
        return result
