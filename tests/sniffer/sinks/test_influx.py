"""Time series in a real InfluxDB through influxdb-client: sums, idempotent replays, outages, spill files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from support.samples import PCAPS

APISPY = str(Path(sys.executable).with_name("apispy"))
CAPTURES = [PCAPS / "api_python_curl.pcap", PCAPS / "api_nginx_wrk.pcap"]


def influx_args(server, interval: str = "1") -> list[str]:
    return [
        "--influx-url",
        server.url,
        "--influx-token",
        "apispy:secret",
        "--influx-org",
        "-",
        "--influx-bucket",
        server.bucket,
        "--interval",
        interval,
    ]


def run(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([APISPY, *args], capture_output=True, text=True, timeout=180, env=env, **kwargs)


def log_counts(path: Path) -> Counter:
    counts: Counter = Counter()
    for line in path.read_text().splitlines():
        record = json.loads(line)
        counts[(record["endpoint"], "none" if record["status"] is None else str(record["status"]))] += 1
    return counts


def stored_counts(server) -> Counter:
    counts: Counter = Counter()
    for series in server.query('SELECT sum("count") FROM "api_requests" GROUP BY "endpoint", "status"'):
        counts[(series["tags"]["endpoint"], series["tags"]["status"])] = series["values"][0][1]
    return counts


def stored_points(server) -> set[tuple]:
    points = set()
    for measurement in ("api_requests", "apispy_capture"):
        for series in server.query(f'SELECT * FROM "{measurement}"'):
            columns = series["columns"]
            for row in series["values"]:
                points.add(
                    (
                        measurement,
                        tuple(
                            sorted(
                                (c, v)
                                for c, v in zip(columns, row, strict=True)
                                if v is not None and not c.startswith("points_")
                            )
                        ),
                    )
                )
    return points


def test_replay_sums_equal_the_transaction_log_per_endpoint_and_status(influx, tmp_path: Path) -> None:
    log = tmp_path / "tx.jsonl"
    result = run("replay", "--transactions", str(log), *influx_args(influx), *map(str, CAPTURES))
    assert result.returncode == 0, result.stderr
    assert stored_counts(influx) == log_counts(log)
    assert sum(log_counts(log).values()) == 94 + 1203
    assert "points_written=" in result.stderr and "points_spilled=0" in result.stderr


def test_second_replay_changes_nothing(influx, tmp_path: Path) -> None:
    run("replay", *influx_args(influx), *map(str, CAPTURES))
    first = stored_points(influx)
    run("replay", *influx_args(influx), *map(str, CAPTURES))
    assert stored_points(influx) == first
    assert len(first) > 20


def test_two_workers_store_the_points_one_process_stores(influx) -> None:
    """The workers are forked before the InfluxDB client starts its threads; the parent writes every point."""
    result = run("replay", *influx_args(influx), *map(str, CAPTURES))
    assert result.returncode == 0, result.stderr
    one = stored_points(influx)
    influx.drop_all()
    result = run("replay", "--workers", "2", *influx_args(influx), *map(str, CAPTURES))
    assert result.returncode == 0, result.stderr
    assert "points_spilled=0" in result.stderr
    assert stored_points(influx) == one
    assert len(one) > 20


def test_environment_configures_influxdb(influx) -> None:
    env = dict(
        os.environ, INFLUX_URL=influx.url, INFLUX_TOKEN="apispy:secret", INFLUX_ORG="-", INFLUX_BUCKET=influx.bucket
    )
    result = run("replay", "--quiet", str(CAPTURES[0]), env=env)
    assert result.returncode == 0, result.stderr
    assert sum(stored_counts(influx).values()) == 94


def test_points_carry_packet_time(influx) -> None:
    run("replay", *influx_args(influx, interval="10"), str(PCAPS / "edge_pipelined.pcap"))
    series = influx.query('SELECT "count" FROM "api_requests"', epoch="s")
    assert {row[0] for s in series for row in s["values"]} == {1700000000}


def test_capture_health_is_written_per_interval(influx) -> None:
    run("replay", *influx_args(influx), str(CAPTURES[1]))
    series = influx.query('SELECT sum("packets"), sum("transactions") FROM "apispy_capture" GROUP BY "source"')
    assert series[0]["tags"] == {"source": "api_nginx_wrk.pcap"}
    assert series[0]["values"][0][1:] == [2446, 1203]


def test_line_protocol_file_holds_the_points_written_to_influxdb(influx, tmp_path: Path) -> None:
    lines = tmp_path / "points.lp"
    run("replay", "--line-protocol", str(lines), *influx_args(influx), str(CAPTURES[0]))
    written = lines.read_text().splitlines()
    stored = influx.query('SELECT count("count") FROM "api_requests"')[0]["values"][0][1]
    assert sum(1 for line in written if line.startswith("api_requests,")) == stored
    influx.drop_all()
    # The file loads as it is: POST it to the write API (what `influx write --file` does).
    import urllib.request

    request = urllib.request.Request(
        f"{influx.url}/api/v2/write?bucket={influx.bucket}&precision=ns", data=lines.read_bytes(), method="POST"
    )
    urllib.request.urlopen(request, timeout=30).close()
    assert sum(stored_counts(influx).values()) == 94


def feed_slowly(process: subprocess.Popen, data: bytes, pieces: int, pause_s: float) -> None:
    size = len(data) // pieces + 1
    for start in range(0, len(data), size):
        process.stdin.write(data[start : start + size])
        process.stdin.flush()
        time.sleep(pause_s)


def wait_until(predicate, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_influxdb_outage_in_the_middle_of_a_replay_loses_nothing(influx, tmp_path: Path) -> None:
    config = tmp_path / "apispy.toml"
    config.write_text(
        "[metrics]\nmax_lateness_s = 0\n"
        "[influx]\nmax_buffer_points = 5\nmax_retries = 1\nretry_interval_ms = 100\nmax_retry_time_ms = 1000\n"
        f"flush_interval_ms = 100\nspill_path = '{tmp_path / 'spill.lp'}'\n"
    )
    reference = tmp_path / "reference.lp"
    data = CAPTURES[0].read_bytes()
    process = subprocess.Popen(
        [APISPY, "replay", "--config", str(config), "--line-protocol", str(reference), *influx_args(influx), "-"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    third = len(data) // 3
    feed_slowly(process, data[:third], 3, 0.2)
    wait_until(lambda: influx.query('SELECT count("packets") FROM "apispy_capture"'))
    influx.stop_influxd()
    feed_slowly(process, data[third : 2 * third], 3, 0.5)
    time.sleep(2)
    influx.start_influxd()
    feed_slowly(process, data[2 * third :], 3, 0.2)
    stderr = process.communicate(timeout=120)[1].decode()  # closes stdin: end of the capture
    assert process.returncode == 0, stderr
    assert "points_spilled=0" not in stderr
    expected = [line for line in reference.read_text().splitlines() if line.startswith("api_requests,")]
    assert len(expected) > 10
    stored = influx.query('SELECT count("count") FROM "api_requests"')[0]["values"][0][1]
    assert stored == len(expected)
    assert sum(stored_counts(influx).values()) == 94
    assert not (tmp_path / "spill.lp").exists()


def test_influxdb_never_reachable_leaves_a_spill_file_that_loads_later(influx, tmp_path: Path) -> None:
    spill = tmp_path / "spill.lp"
    config = tmp_path / "apispy.toml"
    config.write_text(
        f"[influx]\nmax_retries = 1\nretry_interval_ms = 50\nmax_retry_time_ms = 1000\nspill_path = '{spill}'\n"
    )
    dead = ["--influx-url", "http://127.0.0.1:9", "--influx-bucket", influx.bucket, "--interval", "1"]
    result = run("replay", "--config", str(config), *dead, str(CAPTURES[0]))
    assert result.returncode == 0
    assert f"are kept in {spill}" in result.stderr
    assert "Traceback" not in result.stderr
    # The next run with InfluxDB up sends the spilled points first.
    result = run("replay", "--config", str(config), *influx_args(influx), str(PCAPS / "edge_pipelined.pcap"))
    assert result.returncode == 0, result.stderr
    assert not spill.exists()
    assert sum(stored_counts(influx).values()) == 94 + 3


def wait_until_caught(pid: int, number: int, timeout_s: float = 60.0) -> None:
    """Waits until process `pid` has a handler of its own for signal `number` (Linux: the SigCgt mask of
    /proc/PID/status)."""
    deadline = time.monotonic() + timeout_s
    status = Path(f"/proc/{pid}/status")
    while time.monotonic() < deadline:
        caught = next(line for line in status.read_text().splitlines() if line.startswith("SigCgt:"))
        if int(caught.split()[1], 16) >> (number - 1) & 1:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not catch signal {number} within {timeout_s} s")


def test_sigterm_stops_reading_and_flushes_everything(influx, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [APISPY, "replay", *influx_args(influx), "-"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    data = CAPTURES[0].read_bytes()
    process.stdin.write(data[: len(data) // 2])
    process.stdin.flush()
    # Until apispy catches SIGTERM, the signal would kill it: its start (imports, numba's cache) can take longer than
    # any fixed sleep on a loaded machine. Then a moment to read the first half.
    wait_until_caught(process.pid, signal.SIGTERM)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    # SIGTERM is acted on at the next block: one more write wakes the reader.
    process.stdin.write(data[len(data) // 2 : len(data) // 2 + 100])
    process.stdin.flush()
    stderr = process.communicate(timeout=30)[1].decode()
    assert process.returncode == 0, stderr
    assert "interrupted" in stderr
    assert sum(stored_counts(influx).values()) > 0


def test_writer_stores_every_point_of_large_batches(influx, tmp_path: Path) -> None:
    from sniffer.sinks.influx import InfluxSettings, InfluxWriter
    from sniffer.sinks.lineprotocol import Point

    writer = InfluxWriter(InfluxSettings(url=influx.url, bucket=influx.bucket, spill_path=str(tmp_path / "s.lp")))
    for first in range(0, 30_000, 3000):
        writer.write(
            [
                Point("bulk", {"series": str(index % 300)}, {"value": index}, 1_800_000_000_000_000_000 + index)
                for index in range(first, first + 3000)
            ]
        )
    assert writer.close() is None
    assert writer.counters() == {
        "points_written": 30_000,
        "points_retried": 0,
        "points_spilled": 0,
        "points_dropped": 0,
    }
    assert influx.query('SELECT count("value") FROM "bulk"')[0]["values"][0][1] == 30_000


def test_slow_answers_are_counted_in_their_own_interval(tmp_path: Path) -> None:
    """A request answered 95 s later, while other traffic goes on: no interval is written before it is."""
    sys.path.insert(0, str(PCAPS))
    from scapy.utils import wrpcap
    from tcpconv import Conversation, Endpoint

    packets = []
    slow = Conversation(Endpoint("10.0.0.9", 40000), Endpoint("10.0.0.2", 80), client_isn=1, server_isn=7)
    for packet in slow.handshake() + slow.send(0, b"GET /slow HTTP/1.1\r\nHost: api\r\n\r\n"):
        packet.time = 1_700_000_100.0
        packets.append(packet)
    for second in range(1, 95):
        quick = Conversation(Endpoint("10.0.0.8", 41000 + second), Endpoint("10.0.0.2", 80), client_isn=1, server_isn=9)
        for packet in quick.handshake() + quick.exchange(
            b"GET /quick HTTP/1.1\r\nHost: api\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        ):
            packet.time = 1_700_000_100.0 + second
            packets.append(packet)
    for packet in slow.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"):
        packet.time = 1_700_000_195.0
        packets.append(packet)
    capture = tmp_path / "slow.pcap"
    wrpcap(str(capture), packets)
    lines = tmp_path / "points.lp"
    result = run("replay", "--interval", "10", "--line-protocol", str(lines), "--transactions", "-", str(capture))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 95
    counts = [line for line in lines.read_text().splitlines() if line.startswith("api_requests,")]
    assert sum(int(line.split("count=")[1].split("i")[0]) for line in counts) == 95
    assert "late_transactions=0" in result.stderr
    assert any("endpoint=/slow" in line and line.endswith(" 1700000100000000000") for line in counts)
