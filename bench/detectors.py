"""What detection costs: detector throughput in transactions/s, and its share of a replay.

Replays a capture once to collect its transactions (detectors off), then times the detection engine alone over
them (and over them with every body made unique: the detectors read each distinct body of a run of identical
ones once, and the bench capture's nginx serves a handful of bodies again and again), and times `apispy replay`
(a process of its own) with detectors on and off. Prints transactions/s of the engine, each detector's own
time, and the cost of detection as a share of the replay (the goal: under 15%), both for a bare replay and for
one writing its time series (`--line-protocol`), as a monitored replay does. It also times the engine inside a
replay in this process (its own time, without what it costs the parser around it), and the share interleaved in
this process: replays without detection, with the batches only and with detection, fed the capture chunk by chunk
in turns and timed chunk by chunk (CPU time), which this VM's drift cannot put on one side of the comparison; the
reading this bench stands on (see `interleaved_share`).

With `--instructions` (needs valgrind), it also runs the four kinds of replay under callgrind, which counts the
instructions they execute and simulates this CPU's caches: counts that the same build, capture and environment
repeat exactly, whatever else the machine does, where this VM's times swing by a factor of two. Besides the
instructions it prints callgrind's estimate of cycles, which adds 10 per first-level cache miss and 100 per
last-level miss (KCachegrind's "CEst"): a batch held for the detectors could cost in memory what it does not cost
in instructions. numba is told the host's CPU (NUMBA_CPU_NAME and NUMBA_CPU_FEATURES, as llvmlite reads them
outside valgrind), so that under valgrind, whose CPU looks different, it loads the kernels it compiled for this
one from its cache instead of compiling others. Each such replay runs some 100 times slower than natively:
about 25 minutes for the bench capture, two at a time.

Callgrind simulates two cache levels: the first, and a last one that it sizes as this CPU's L3 (32 MiB here).
With `--last-level l2` the last level is sized as one core's L2 instead (read from sysfs: 512 KiB, 8-way here),
and the estimate counts each of its misses at L2_MISS_CYCLES, an L3 hit's latency. On this VM its misses are
the count that follows the times: on a capture of 120k packets, detection is 11.6% of a bare replay's
instructions but 20.6% of its L2 misses (24.8% with the time series written), its batches and tables pushing
the parser's data out of the L2, which a 32 MiB last level never shows. The estimate itself, where the first
level's misses weigh most, stays near the instructions' share.

An L2-sized level's misses also depend on where the heap lands, which decides the cache sets each object takes:
on that capture a run's count moved by up to 2.1M of some 40M when a few dozen KB were allocated before the
replay, while detection adds 6 to 10M. So one count can tell detection's cost but not a change of a few points in
it; `--layouts N` counts each kind at N heap layouts (layout k allocates k * HEAP_PAD_BYTES before apispy is
imported) and prints the mean share with each layout's.

    python bench/detectors.py --capture FILE [--repeat 3] [--instructions [--last-level l3|l2] [--layouts N]]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
# This script's folder (sys.path[0]) would make this file the `detectors` package. The checkout's root goes last:
# an installed apispy, built as the `apispy` command timed here is, comes first, so that both halves of the bench
# time one build (a compiled install's pipeline takes some 30% less time than the checkout's plain Python).
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.append(str(HERE.parent))

from detectors.batchkeys import TransactionBatch  # noqa: E402
from detectors.engine import DetectionEngine, default_detectors  # noqa: E402
from parsers.transaction import Transaction, transaction_columns  # noqa: E402
from sniffer.alerting import AlertOutputs  # noqa: E402
from sniffer.capture.pcapfile import open_capture  # noqa: E402
from sniffer.cli import build_name  # noqa: E402
from sniffer.config import Config, load_config  # noqa: E402
from sniffer.outputs import MetricOutputs  # noqa: E402
from sniffer.replay import Run, replay  # noqa: E402


def replay_command(apispy: str, capture: Path, detect: bool, workdir: Path, time_series: bool) -> list[str]:
    """`apispy replay --quiet` as a user runs it, detectors on or off, writing its time series (as line protocol,
    to a file of its own) or not."""
    command = [apispy, "replay", "--quiet", str(capture)]
    if time_series:
        command[2:2] = ["--line-protocol", str(workdir / f"points-{int(detect)}.lp")]
    if not detect:
        config = workdir / "no-detectors.toml"
        config.write_text("[detectors]\nenabled = false\n")
        command[2:2] = ["--config", str(config)]
    return command


def timed_replay(apispy: str, capture: Path, detect: bool, workdir: Path, time_series: bool) -> float:
    """Seconds of `apispy replay --quiet` (its own process, its own GC settings): the share is measured where it
    is paid, not beside a heap holding every transaction."""
    start = time.perf_counter()
    subprocess.run(replay_command(apispy, capture, detect, workdir, time_series), check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def host_cpu_environment() -> dict[str, str]:
    """The environment for a replay under valgrind: numba told this CPU (as llvmlite reads it here, natively),
    which makes the key of its on-disk cache the same as a native run's; and one string hash seed, so that every
    run lays out its dicts and sets alike."""
    import llvmlite.binding as llvm

    return {**os.environ, "NUMBA_CPU_NAME": llvm.get_host_cpu_name(),
            "NUMBA_CPU_FEATURES": llvm.get_host_cpu_features().flatten(), "PYTHONHASHSEED": "0"}  # fmt: skip


# With --cache-sim=yes: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw (instructions, data reads and writes, then misses).
COLLECTED = re.compile(rb"Collected : ((?:\d+ ){8}\d+)")
FIRST_LEVEL_MISS_CYCLES = 10
LAST_LEVEL_MISS_CYCLES = 100  # callgrind's own last level, sized as the L3: a miss goes to memory
L2_MISS_CYCLES = 40  # the last level sized as the L2 (--last-level l2): a miss is mostly an L3 hit
L2_CACHE = Path("/sys/devices/system/cpu/cpu0/cache/index2")


@dataclass(frozen=True)
class CountedRun:
    instructions: int
    cycles: int  # estimated: instructions, and each cache miss at its level's cost
    last_level_misses: int


def l2_geometry(cache: Path = L2_CACHE) -> str:
    """Callgrind's `--LL` value (size,associativity,line size in bytes) for one core's L2, as sysfs describes it."""
    size = (cache / "size").read_text().strip()
    factor = {"K": 1 << 10, "M": 1 << 20}.get(size[-1], 1)
    size_bytes = int(size.rstrip("KM")) * factor
    ways = (cache / "ways_of_associativity").read_text().strip()
    line = (cache / "coherency_line_size").read_text().strip()
    return f"{size_bytes},{ways},{line}"


def counted_run(command: list[str], environment: dict[str, str], last_level: str = "l3") -> CountedRun:
    """What callgrind counts of `command` (and of nothing it starts), its caches simulated, the last level sized
    as the L3 (callgrind's choice) or as the L2."""
    sized = ["--LL=" + l2_geometry()] if last_level == "l2" else []
    miss_cycles = L2_MISS_CYCLES if last_level == "l2" else LAST_LEVEL_MISS_CYCLES
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--cache-sim=yes", *sized, "--callgrind-out-file=/dev/null", *command],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True,
    )  # fmt: skip
    found = COLLECTED.search(result.stderr)
    if found is None:
        raise RuntimeError(f"no counts in callgrind's output: {result.stderr[-300:]!r}")
    instructions, _, _, i1_misses, d1_read_misses, d1_write_misses, *last = map(int, found.group(1).split())
    first_level = i1_misses + d1_read_misses + d1_write_misses
    cycles = instructions + FIRST_LEVEL_MISS_CYCLES * first_level + miss_cycles * sum(last)
    return CountedRun(instructions, cycles, sum(last))


# Layout k > 0 (--layouts) allocates k * HEAP_PAD_BYTES, half as one block and half as small objects, before
# apispy is imported: every later allocation lands elsewhere in the heap, and so in other cache sets.
HEAP_PAD_BYTES = 37_000
PADDED_APISPY = (
    "import sys; pad = int(sys.argv.pop(1)); held = [bytearray(pad // 2 or 1), [object() for _ in range(pad // 32)]]; "
    "from sniffer.cli import main; sys.argv[0] = 'apispy'; main()"
)


def with_heap_layout(command: list[str], layout: int) -> list[str]:
    """The replay `command` (the apispy script first), run with heap layout `layout` (0: as it is)."""
    if not layout:
        return command
    first_line = Path(command[0]).read_bytes().split(b"\n", 1)[0]
    if not first_line.startswith(b"#!"):
        raise SystemExit(f"--layouts: {command[0]} is not a script whose first line names its Python")
    interpreter = first_line[2:].decode().strip()
    return [interpreter, "-c", PADDED_APISPY, str(layout * HEAP_PAD_BYTES), *command[1:]]


def counted_replays(
    apispy: str, capture: Path, workdir: Path, last_level: str = "l3", layouts: int = 1
) -> dict[tuple[bool, bool], list[CountedRun]]:
    """What callgrind counts of each kind of replay, (time series, detect) -> counts at each heap layout, two under
    valgrind at a time. numba's cache is warmed natively first with the same environment, so valgrind's runs only
    load kernels."""
    environment = host_cpu_environment()
    subprocess.run(replay_command(apispy, capture, True, workdir, True), env=environment, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    kinds = [(time_series, detect) for time_series in (False, True) for detect in (False, True)]
    runs = [(kind, layout) for layout in range(layouts) for kind in kinds]
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(
            lambda run: counted_run(
                with_heap_layout(replay_command(apispy, capture, run[0][1], workdir, run[0][0]), run[1]), environment,
                last_level,
            ),
            runs,
        ))  # fmt: skip
    return {kind: [count for (of, _), count in zip(runs, counts, strict=True) if of == kind] for kind in kinds}


def engine_inside_replay(capture: Path, config: Config) -> tuple[float, float]:
    """(seconds spent in the detectors, seconds of the whole replay) of one replay in this process: their own cost
    where it is paid, which this VM's drift between two processes cannot blur. The batching (holding each batch, and
    taking its columns as it is sealed) is not in it: the interleaved share counts it."""
    engine = DetectionEngine(default_detectors(config.detectors), config.detectors, lambda alert: None)
    inside = 0.0
    inspect_sealed = engine.inspect_sealed

    def timed_inspect() -> None:
        nonlocal inside
        began = time.perf_counter()
        inspect_sealed()
        inside += time.perf_counter() - began

    engine.inspect_sealed = timed_inspect  # observe() and finish() call self.inspect_sealed()
    start = time.perf_counter()
    replay([open_capture(str(capture))], config, engine.observe)
    engine.finish()
    return inside, time.perf_counter() - start


INTERLEAVED_BLOCK_BYTES = 1 << 20  # read so, the bench capture comes in some 150 chunks of about 2,500 packets
KINDS = ("without", "batches", "detection")


def interleaved_share(capture: Path, config: Config, repeat: int, workdir: Path, time_series: bool) -> dict[str, float]:
    """CPU seconds of a replay in this process without detection, with the batches only (an engine without
    detectors: each transaction held, each batch's columns taken), and with detection, as the `apispy` command
    runs each (time series written as line protocol or not).

    The three replays run side by side in one process, fed the same capture a chunk at a time in turns (the order
    rotating from chunk to chunk), each chunk timed on its own, with the time it took to read it from the file,
    which each replay would spend: a drift of this VM's speed, which over a few seconds moves a replay's time by
    tens of percent, falls on all three alike. Each chunk's time is the least of `repeat` passes (noise only adds
    time), and a replay's time is the sum over its chunks, with its flush at the end as a chunk of its own. The
    start of a process (imports, numba's cached kernels, the Hyperscan database: about a second, of which
    detection takes some 40 ms) is in none of them: a pass after the first finds them loaded. Each chunk (some
    20 ms) starts with the caches as the other two replays left them, which costs all three alike, and a held
    batch more than the rest."""
    shortest: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(repeat):
        runs = {}
        for kind in KINDS:
            outputs = None
            if time_series:
                outputs = MetricOutputs(config, "bench", str(workdir / f"interleaved-{kind}.lp"))
            alerting = None
            if kind != "without":
                alerting = AlertOutputs(config, None, outputs.emit if outputs is not None else None)
                if kind == "batches":
                    alerting.engine.detectors = []
            runs[kind] = (Run(config, lambda transaction: None, outputs, alerting), [])
        batches = open_capture(str(capture), INTERLEAVED_BLOCK_BYTES).batches()
        for number in itertools.count():  # one batch in memory at a time
            began = time.thread_time()
            batch = next(batches, None)
            reading = time.thread_time() - began  # each replay would read it: counted in each
            for turn in range(len(KINDS)):
                run, seconds = runs[KINDS[(number + turn) % len(KINDS)]]
                began = time.thread_time()
                if batch is not None:
                    run.feed(batch)
                else:
                    run.finish([])
                seconds.append(reading + time.thread_time() - began)
            if batch is None:
                break
        for kind, (_, seconds) in runs.items():
            if shortest[kind]:
                seconds = [min(pair) for pair in zip(shortest[kind], seconds, strict=True)]
            shortest[kind] = seconds
        del runs
        gc.collect()
    return {kind: sum(seconds) for kind, seconds in shortest.items()}


def with_unique_bodies(transactions: list[Transaction]) -> list[Transaction]:
    """The transactions with every body made different from every other: a number written before a body's last
    "}" (a JSON object keeps its keys but for that one), or after the body. An API that serves the same bodies
    again and again, as the bench capture's nginx does, lets the detectors read each distinct body once; this
    measures them where nothing repeats."""

    def unique(body: bytes, number: int) -> bytes:
        if not body:
            return body
        cut = body.rfind(b"}")
        return body[:cut] + b', "n": %d' % number + body[cut:] if cut > 0 else body + b" %d" % number

    return [replace(t, req_body=unique(t.req_body, 2 * n), resp_body=unique(t.resp_body, 2 * n + 1))
            for n, t in enumerate(transactions)]  # fmt: skip


def engine_over(transactions: list[Transaction], config: Config, repeat: int) -> float:
    """The fastest of `repeat` runs of the detection engine over the transactions, as a replay feeds it."""
    fastest = float("inf")
    for _ in range(repeat):
        engine = DetectionEngine(default_detectors(config.detectors), config.detectors, lambda alert: None)
        start = time.perf_counter()
        for transaction in transactions:
            engine.observe(transaction)
        engine.finish()
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--apispy", default=str(Path(sys.executable).with_name("apispy")))
    parser.add_argument("--instructions", action="store_true", help="also count instructions under callgrind")
    parser.add_argument("--last-level", choices=("l3", "l2"), default="l3",
                        help="the cache callgrind's last level is sized as (with --instructions)")  # fmt: skip
    parser.add_argument("--layouts", type=int, default=1,
                        help="heap layouts to count each kind at (with --instructions)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind (Debian package valgrind)")
    if not 1 <= args.layouts <= 16:
        parser.error("--layouts must be from 1 to 16")
    if args.instructions and args.layouts > 1:
        with_heap_layout([args.apispy], 1)  # says now, not after the timings, if it cannot shift the heap
    level_file = L2_CACHE / "level"
    if args.last_level == "l2" and not (level_file.is_file() and level_file.read_text().strip() == "2"):
        parser.error(f"--last-level l2 needs this CPU's L2 described in sysfs ({L2_CACHE})")
    gc.set_threshold(50_000, 20, 100)  # as the apispy command sets it
    gc.freeze()
    config = load_config()
    engine_inside, replay_seconds = min(engine_inside_replay(args.capture, config) for _ in range(args.repeat))
    workdir = Path(tempfile.mkdtemp(prefix="apispy-bench-"))
    interleaved = {time_series: interleaved_share(args.capture, config, args.repeat, workdir, time_series)
                   for time_series in (False, True)}  # fmt: skip
    transactions = []
    replay([open_capture(str(args.capture))], config, transactions.append)
    gc.freeze()
    timed_replay(args.apispy, args.capture, True, workdir, False)  # warm-up: numba cache, hyperscan database

    per_detector: dict[str, float] = {}
    alerts = 0
    engine_seconds = float("inf")
    for _ in range(args.repeat):
        detectors = default_detectors(config.detectors)
        engine = DetectionEngine(detectors, config.detectors, lambda alert: None)
        spent = dict.fromkeys(["columns"] + [type(d).__name__ for d in detectors], 0.0)
        start = time.perf_counter()
        for first in range(0, len(transactions), config.detectors.batch_size):
            batch = TransactionBatch(transactions[first : first + config.detectors.batch_size])  # as the engine's
            began = time.perf_counter()
            batch.columns = transaction_columns(batch)  # as the collector takes them at sealing, not in a detector
            spent["columns"] += time.perf_counter() - began
            for detector in detectors:
                began = time.perf_counter()
                raised = detector.inspect(batch)
                spent[type(detector).__name__] += time.perf_counter() - began
                engine._report(engine.dedup.admit(sorted(raised, key=lambda alert: alert.ts)))
        engine._report(engine.dedup.finish())
        seconds = time.perf_counter() - start
        if seconds < engine_seconds:
            engine_seconds, per_detector, alerts = seconds, spent, engine.reported

    count = len(transactions)
    distinct_bodies = len({body for t in transactions for body in (t.req_body, t.resp_body) if body})
    unique_seconds = engine_over(with_unique_bodies(transactions), config, args.repeat)
    transactions.clear()  # the replays below are measured without this heap beside them
    # The four kinds of replay take turns, and each keeps its fastest: this VM's speed drifts over minutes, and a
    # drift must not fall on one side of the comparison. Each round's own share (its two replays ran side by side)
    # is kept too: their spread shows what one reading is worth on a machine whose speed wanders.
    replays: dict[tuple[bool, bool], float] = {}
    round_shares: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeat):
        for time_series in (False, True):
            pair = []
            for detect in (False, True):
                seconds = timed_replay(args.apispy, args.capture, detect, workdir, time_series)
                replays[time_series, detect] = min(seconds, replays.get((time_series, detect), seconds))
                pair.append(seconds)
            round_shares[time_series].append(100 * (pair[1] - pair[0]) / pair[1])
    counted = (counted_replays(args.apispy, args.capture, workdir, args.last_level, args.layouts)
               if args.instructions else {})  # fmt: skip
    shutil.rmtree(workdir)
    print(f"capture: {args.capture}  transactions: {count:,}  alerts: {alerts:,}  (this process: {build_name()})")
    print(f"detection engine: {engine_seconds:.2f} s = {count / engine_seconds:,.0f} transactions/s")
    for name, seconds in per_detector.items():
        print(f"  {name:<18} {seconds:6.2f} s  {count / max(seconds, 1e-9):>12,.0f} transactions/s")
    print(f"  with every body made unique ({distinct_bodies:,} distinct bodies in the capture): {unique_seconds:.2f} s"
          f" = {count / unique_seconds:,.0f} transactions/s")
    print(f"inside a replay (this process): the detectors took {engine_inside:.2f} s of {replay_seconds:.2f} s "
          f"({100 * engine_inside / replay_seconds:.1f}%; not the batching: batches held, columns taken at sealing)")
    for time_series, what in ((False, "bare"), (True, "writing its time series")):
        off, batches, on = (interleaved[time_series][kind] for kind in KINDS)
        print(f"interleaved in this process, {what} (CPU time, least of {args.repeat} per chunk): without detectors "
              f"{off:.2f} s, with {on:.2f} s; detection share {100 * (on - off) / on:.1f}%")
        print(f"  of which batching (transactions held, columns taken, no detector): {batches:.2f} s, "
              f"{100 * (batches - off) / on:.1f}% of the replay with detection")
    for time_series, what in ((False, "a bare replay"), (True, "a replay writing its time series")):
        off, on = replays[time_series, False], replays[time_series, True]
        print(f"{what}: without detectors {off:.2f} s, with {on:.2f} s; detection share {100 * (on - off) / on:.1f}%")
        each = round_shares[time_series]
        print(f"  share in each round: {', '.join(f'{share:.1f}%' for share in each)} "
              f"(median {statistics.median(each):.1f}%)")
        if counted:
            off_runs, on_runs = counted[time_series, False], counted[time_series, True]
            level = args.last_level.upper()
            for measure, what in (("instructions", "instructions"), ("last_level_misses", f"{level} misses"),
                                  ("cycles", f"cycles, estimated with the last level as {level}")):  # fmt: skip
                offs = [getattr(run, measure) for run in off_runs]
                ons = [getattr(run, measure) for run in on_runs]
                off, on = round(statistics.mean(offs)), round(statistics.mean(ons))
                line = f"  {what} (callgrind): without detectors {off:,}, with {on:,}; detection share "
                line += f"{100 * (on - off) / on:.1f}%"
                if args.layouts > 1:  # each layout's pair, and how far one reading of each kind strays
                    shares = ", ".join(f"{100 * (b - a) / b:.1f}%" for a, b in zip(offs, ons, strict=True))
                    line += (f" (mean of {args.layouts} heap layouts; each: {shares}; without detectors "
                             f"{min(offs):,} to {max(offs):,}, with {min(ons):,} to {max(ons):,})")
                print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
