"""Live capture on several processes (`apispy live --workers N`): the kernel shares the traffic out.

Each process has its own socket on every interface, all joined to one PACKET_FANOUT group per interface in hash
mode: the kernel hands each packet to one socket by a symmetric hash of its flow, so both directions of a
connection reach the same process, and no process copies packets for another. The workers are forked once the
sockets are open (before any output thread exists), so they inherit their socket, the warmed-up kernels and the
dropped privileges.

Each worker runs reassembly, HTTP, templating and the body detectors on its connections (see sniffer.sharded)
and sends the parent its transactions with the clock they were emitted at: packet time, or wall time while
the link is idle, as for one process. The parent captures nothing: it merges them in clock order up to the
slowest worker's clock, and runs what needs every connection: the cross-connection detectors, deduplication,
the time series (each interval closes once every worker is past it and none waits on a request of it) and every
output. A parent that also captured a share would carry its share's parsing besides all of that, and one busy
connection (which no hash can split) landing on it would make it the bottleneck. Kernel drops of every socket
are added up.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from detectors.openapi import ApiSpec
from sniffer.capture.live import LiveSource
from sniffer.config import Config
from sniffer.entry import GC_THRESHOLDS
from sniffer.metrics import CaptureCounters
from sniffer.pipeline import Shard
from sniffer.replay import ReplayResult, build_pipeline, counters
from sniffer.sharded import FINISHED, Block, ShardCollector, ShardedRun, WorkerTask, held_entries, widen_pipe
from sniffer.sinks.pcapwriter import PcapTarget

PENDING_CHECK_S = 0.5
MERGE_WAIT_S = 0.05  # the parent's longest wait for its workers' blocks before it looks at signals again


class _LiveShard:
    """One process's share: its source, its pipeline and its clock (packet time, or wall time when idle)."""

    def __init__(self, task: WorkerTask, source: LiveSource) -> None:
        self.source = source
        self.clock_ns = 0
        self.needs_pending = task.needs_pending
        self.pending_bound: int | None = None
        self.pending_checked = 0.0
        # The collector must not walk the flow table at every batch: see _pending.
        self.collector = ShardCollector(replace(task, needs_pending=False), lambda: self.clock_ns)
        self.pipeline = self.collector.pipeline = build_pipeline(
            task.config, self.collector.on_transaction, task.spec
        )

    def step(self, batch: Any) -> Block:
        """Takes one batch (None: a tick of an idle link) and returns what the parent needs of it."""
        if batch is None:
            self.clock_ns = max(self.clock_ns, time.time_ns())
            self.pipeline.flows.expire(self.clock_ns)
        else:
            self.clock_ns = max(self.clock_ns, int(batch.ts_ns.max()))
            self.pipeline.process(batch)
        return self._block(batch, final=False)

    def finish(self) -> Block:
        self.pipeline.finish()
        return self._block(None, final=True)

    def _block(self, batch: Any, final: bool) -> Block:
        block = self.collector.block(batch, 0, final=final)
        block.done_before = FINISHED if final else self.clock_ns
        block.clock_ns = self.clock_ns
        block.dropped = self.source.dropped
        block.oldest_pending_ns = self._pending(final)
        return block

    def _pending(self, final: bool) -> int | None:
        """A time before which no request of this shard waits for its answer, for the parent's intervals.

        Finding the oldest waiting request walks every open flow, too much to do at each batch with a few
        hundred thousand flows open: it is done at most every PENDING_CHECK_S. In between, the last answer
        stays a safe bound: the oldest waiting request only moves forward in time, and a request that arrived
        since came after the clock of that check."""
        if not self.needs_pending or final:
            return None
        now = time.monotonic()
        if now - self.pending_checked >= PENDING_CHECK_S:
            self.pending_checked = now
            oldest = self.pipeline.flows.oldest_pending_ts()
            self.pending_bound = self.clock_ns if oldest is None else min(oldest, self.clock_ns)
        return self.pending_bound


def live_worker_main(task: WorkerTask, source: LiveSource, connection: Connection, stop: Any,
                     pcap: PcapTarget | None = None, reopens: Any = None) -> None:  # fmt: skip
    """A forked worker: its socket's share of the traffic until the parent sets `stop`, then its flows. With
    `pcap`, it also writes the frames it captured to its own files, reopened when the parent counts a SIGHUP in
    `reopens`."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    gc.set_threshold(*GC_THRESHOLDS)
    writer = pcap.writer(task.shard.index) if pcap is not None else None
    reopened = 0
    try:
        shard = _LiveShard(task, source)
        for batch in source.batches(stop.is_set):
            if writer is not None:
                if reopens.value != reopened:
                    reopened = reopens.value
                    writer.reopen()
                if batch is not None:
                    writer.write(batch)
            connection.send(("block", shard.step(batch)))
        connection.send(("block", shard.finish()))
        connection.send(("done", counters(shard.pipeline) | {"kernel_received": source.kernel_received,
                                                             "dropped": source.dropped}))
    except Exception as error:  # noqa: BLE001 - reported to the parent as one line, never a traceback
        connection.send(("error", f"worker {task.shard.index}: {type(error).__name__}: {error}"))
    finally:
        source.close()
        if writer is not None:
            writer.close()
        connection.close()


class LiveShardedRun(ShardedRun):
    """The parent of a live capture on several processes."""

    def __init__(self, sources: list[LiveSource], config: Config, spec: ApiSpec | None,
                 pcap: PcapTarget | None = None) -> None:  # fmt: skip
        super().__init__(len(sources), [], config, lambda transaction: None, spec=spec)
        self.sources = sources
        self.pcap = pcap
        self.clocks = [0] * self.workers
        self.drops = [0] * self.workers
        self.context = multiprocessing.get_context("fork")
        self.stop = self.context.Event()
        self.reopens = self.context.Value("i", 0)  # SIGHUPs so far: each worker reopens its pcap files on a change

    def start(self) -> None:
        """Forks one worker per source: call it with the sockets open and before any thread is started (the
        outputs' threads come later, in `attach`)."""
        config, spec, context = self.config, self.spec, self.context
        for index, source in enumerate(self.sources):
            receiver, sender = context.Pipe(duplex=False)
            widen_pipe(sender)
            task = WorkerTask(Shard(index, self.workers), [], config, spec)
            process = context.Process(target=live_worker_main,
                                      args=(task, source, sender, self.stop, self.pcap, self.reopens),
                                      name=f"apispy-worker-{index}")  # fmt: skip
            process.start()
            sender.close()
            source.close()  # the worker has its own copy
            self.active[receiver] = index
            self.processes.append(process)

    @property
    def dropped(self) -> int:
        return sum(self.drops)

    def reopen_pcaps(self) -> None:
        """SIGHUP: every process continues its pcap files in new files at their paths (after logrotate)."""
        if self.pcap is None:
            return
        with self.reopens.get_lock():
            self.reopens.value += 1

    def _merged_health(self) -> CaptureCounters:
        merged = CaptureCounters(dropped=self.dropped)
        for health in self.health:
            merged.packets += health.packets
            merged.bytes += health.bytes
            merged.flows_active += health.flows_active
            merged.flows_evicted += health.flows_evicted
            merged.gaps += health.gaps
            merged.parse_errors += health.parse_errors
        return merged

    def run(self, should_stop: Callable[[], bool], on_batch: Callable[[], None] = lambda: None) -> ReplayResult:
        """Merges the workers' blocks as they come until `should_stop()`, then lets the workers finish their
        flows; `on_batch` runs after each wait (the CLI's SIGHUP and drop warnings)."""
        self.worker_counters = [{} for _ in range(self.workers)]
        self.errors: list[str] = []
        try:
            while self.active and not (should_stop() or self.errors):
                self._poll(self.active, None, wait_s=MERGE_WAIT_S)
                on_batch()
            self.stop.set()
            while self.active:
                self._poll(self.active, None, wait_s=0.5)
        finally:
            self.stop.set()
            for process in self.processes:
                process.join(timeout=10)
                if process.is_alive():
                    process.kill()
        warnings = list(self.errors)
        if self.dropped:
            warnings.append(f"{self.dropped} packets were dropped before apispy read them")
        return self._finish(self.worker_counters, warnings)

    def _receive(self, index: int, block: Block, on_progress: Callable[[int], None] | None) -> None:
        """Blocks are taken as they come: transactions are released in clock order up to the slowest
        process's clock; a finished process holds nothing back."""
        self.held[index].extend(held_entries(block, self.texts[index]))
        self.clocks[index] = block.clock_ns
        self.pending[index] = block.oldest_pending_ns
        self.health[index] = block.health
        self.drops[index] = block.dropped
        if block.final:
            self.finished[index] = True
        running = [clock for i, clock in enumerate(self.clocks) if not self.finished[i]]
        watermark = min(running) if running else FINISHED
        self._release(watermark)
        if self.alerting is not None and running:
            self.alerting.flush_due(watermark)  # packet time, or wall time once the link is idle
        if self.metrics is not None:
            self.metrics.add_packet_counts(block.packet_counts)
            self.metrics.advance(min(running) if running else max(self.clocks))

    def _done(self, index: int) -> None:
        self.finished[index] = True
        self.pending[index] = None
        self._receive(index, Block([], FINISHED, True, self.clocks[index], None, self.health[index], [], 0,
                                   self.drops[index]), None)

    def _merged_counters(self, worker_counters: list[dict[str, int]]) -> dict[str, int]:
        """Each process saw its own packets: every counter is summed."""
        merged: dict[str, int] = {}
        for counts in worker_counters:
            for name, value in counts.items():
                merged[name] = merged.get(name, 0) + value
        return merged
