"""What detection costs: detector throughput in transactions/s, and its share of a replay.

Replays a capture once to collect its transactions (detectors off), then times the detection engine alone over
them, and times the replay with detectors on and off. Prints transactions/s of the engine, each detector's own
time, and the cost of detection as a share of the replay (the goal: under 15%).

    python bench/detectors.py --capture FILE [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from detectors.engine import DetectionEngine, default_detectors  # noqa: E402
from sniffer.alerting import AlertOutputs  # noqa: E402
from sniffer.capture.pcapfile import open_capture  # noqa: E402
from sniffer.config import load_config  # noqa: E402
from sniffer.replay import replay  # noqa: E402


def timed_replay(capture: Path, detect: bool) -> tuple[float, int]:
    config = load_config()
    alerting = AlertOutputs(config, None, None) if detect else None
    start = time.perf_counter()
    result = replay([open_capture(str(capture))], config, lambda transaction: None, alerting=alerting)
    return time.perf_counter() - start, result.counters.get("alerts", 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    config = load_config()
    transactions = []
    replay([open_capture(str(args.capture))], config, transactions.append)
    timed_replay(args.capture, True)  # warm-up: numba cache, hyperscan database

    per_detector: dict[str, float] = {}
    alerts = 0
    engine_seconds = float("inf")
    for _ in range(args.repeat):
        detectors = default_detectors(config.detectors)
        engine = DetectionEngine(detectors, config.detectors, lambda alert: None)
        spent = dict.fromkeys((type(d).__name__ for d in detectors), 0.0)
        start = time.perf_counter()
        for first in range(0, len(transactions), config.detectors.batch_size):
            batch = transactions[first : first + config.detectors.batch_size]
            for detector in detectors:
                began = time.perf_counter()
                raised = detector.inspect(batch)
                spent[type(detector).__name__] += time.perf_counter() - began
                engine._report(engine.dedup.admit(sorted(raised, key=lambda alert: alert.ts)))
        engine._report(engine.dedup.finish())
        seconds = time.perf_counter() - start
        if seconds < engine_seconds:
            engine_seconds, per_detector, alerts = seconds, spent, engine.reported

    off = min(timed_replay(args.capture, False)[0] for _ in range(args.repeat))
    on = min(timed_replay(args.capture, True)[0] for _ in range(args.repeat))
    print(f"capture: {args.capture}  transactions: {len(transactions):,}  alerts: {alerts:,}")
    print(f"detection engine: {engine_seconds:.2f} s = {len(transactions) / engine_seconds:,.0f} transactions/s")
    for name, seconds in per_detector.items():
        print(f"  {name:<18} {seconds:6.2f} s  {len(transactions) / max(seconds, 1e-9):>12,.0f} transactions/s")
    print(f"replay without detectors: {off:.2f} s, with: {on:.2f} s; detection share of the replay: "
          f"{100 * (on - off) / on:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
