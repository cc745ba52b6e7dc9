"""What writing time series to InfluxDB costs a replay: points per second, and the slowdown with InfluxDB on.

Starts a real influxd (Debian's influxdb) behind nginx on loopback (the same translator the tests use), then
replays one capture with time series off, to a line-protocol file, and to InfluxDB, each `--repeat` times, and
prints the best time of each and the slowdown. Without `--capture` it records one like replay_vs_tshark.py does.

    python bench/influx_overhead.py --capture FILE [--interval 1] [--repeat 2]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
# The project root before tests/: tests/sniffer would otherwise shadow the sniffer package.
sys.path.insert(0, str(HERE.parent))

from replay_vs_tshark import find_apispy, record_capture  # noqa: E402
from support.influx import InfluxServer  # noqa: E402


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, result.stderr


def counter(summary: str, name: str) -> int:
    match = re.search(rf"\b{name}=(\d+)", summary)
    return int(match.group(1)) if match else 0


def writer_throughput(server: InfluxServer, count: int) -> tuple[float, float, int]:
    """Seconds and points/s for the InfluxDB writer alone, on `count` api_requests-shaped points."""
    from sniffer.metrics import REQUESTS_MEASUREMENT
    from sniffer.sinks.influx import InfluxSettings, InfluxWriter
    from sniffer.sinks.lineprotocol import Point

    settings = InfluxSettings(url=server.url, bucket=server.bucket, spill_path=str(server.root / "spill.lp"))
    writer = InfluxWriter(settings)
    points = [
        Point(REQUESTS_MEASUREMENT, {"endpoint": f"/api/v1/e{index % 500}/{{id}}", "method": "GET", "status": "200",
                                     "host": "api"},
              {"count": index, "errors": 0, "req_bytes": 10, "resp_bytes": 300, "latency_p50_ms": 1.5,
               "latency_p95_ms": 3.0, "latency_p99_ms": 4.5, "latency_max_ms": 9.0},
              1_800_000_000_000_000_000 + (index // 500) * 10_000_000_000)
        for index in range(count)
    ]
    start = time.perf_counter()
    for first in range(0, count, 1000):
        writer.write(points[first : first + 1000])
    writer.close()
    seconds = time.perf_counter() - start
    return seconds, count / seconds, writer.counters()["points_written"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, metavar="FILE")
    parser.add_argument("--packets", type=int, default=250_000, help="packets to record without --capture")
    parser.add_argument("--interval", type=float, default=1.0, help="time-series interval in seconds")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--points", type=int, default=200_000, help="points for the writer throughput run")
    parser.add_argument("--apispy", metavar="PATH")
    args = parser.parse_args(argv)
    apispy = find_apispy(args.apispy)
    with tempfile.TemporaryDirectory(prefix="apispy-influx-bench-") as scratch:
        workdir = Path(scratch)
        capture = args.capture
        if capture is None:
            capture = workdir / "api_traffic.pcap"
            record_capture(capture, workdir, args.packets)
        server = InfluxServer(workdir).start()
        try:
            base = [apispy, "replay", "--interval", str(args.interval), str(capture)]
            subprocess.run([apispy, "replay", "--quiet", str(capture)], capture_output=True, check=True)  # warm-up
            runs = {
                "off": [apispy, "replay", str(capture)],
                "line protocol": [*base, "--line-protocol", str(workdir / "points.lp")],
                "influxdb": [*base, "--influx-url", server.url, "--influx-bucket", server.bucket],
            }
            best: dict[str, tuple[float, str]] = {}
            for name, command in runs.items():
                for _ in range(args.repeat):
                    seconds, summary = timed(command)
                    if name not in best or seconds < best[name][0]:
                        best[name] = (seconds, summary)
            stored = server.query('SELECT count("count") FROM "api_requests"')[0]["values"][0][1]
            writer_rate = writer_throughput(server, args.points)
        finally:
            server.stop()
    off = best["off"][0]
    summary = best["influxdb"][1]
    points = counter(summary, "points")
    print(f"capture: {capture}  transactions: {counter(summary, 'transactions'):,}  interval: {args.interval:g} s")
    print(f"{'run':<14} {'seconds':>8} {'slowdown':>9}")
    for name, (seconds, _) in best.items():
        print(f"{name:<14} {seconds:>8.2f} {100 * (seconds - off) / off:>8.1f}%")
    print(f"points: {points:,} written={counter(summary, 'points_written'):,} "
          f"spilled={counter(summary, 'points_spilled')} (api_requests rows in InfluxDB: {stored:,})")
    print(f"writer throughput: {args.points:,} points in {writer_rate[0]:.2f} s = {writer_rate[1]:,.0f} points/s"
          f" (written={writer_rate[2]:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
