"""Compare `apispy replay` with tshark's HTTP dissector on one capture of API traffic.

Unless `--capture FILE` is given, the capture is recorded first: nginx and wrk run inside a network namespace of
their own (loopback only, MTU 1500, offloads off so that segments look like a mirror port's) while tcpdump writes
every packet. The namespace, and every process started in it, is removed on exit, also on error or Ctrl-C.

Both tools then read the same file: `apispy replay --quiet --line-protocol POINTS FILE` (every stage, the time
series included; the transaction log off) and `tshark -Y http.request` printing method and URI of each request.
Each is timed with `time.perf_counter` around `subprocess.run`; apispy is warmed up first on the capture's first
packets so that numba's on-disk compile cache is filled, and that warm-up is reported apart.

Every run is timed `--rounds` times (default 3), in turns: each round runs every apispy configuration and tshark
once, the order rotating from round to round, so that a slow spell of a shared machine falls on all of them alike.
A run's time is the least of its rounds (noise only adds time), and the report shows the median beside it: on this
project's VM, one replay of the same build and capture took anywhere from 5.2 to 9.6 s in one morning. Beside them,
the median CPU time the run's processes took (`getrusage` of the children, worker processes included): what
`--workers N` costs in all, which the VM's slow spells on one core or the other do not hide.

    python bench/replay_vs_tshark.py [--capture FILE] [--packets N] [--keep PATH] [--apispy PATH] [--workers N]
                                     [--rounds N]

Besides the default run (every detector on, one process), apispy is timed with the detectors off, with `--strict`
(h11 reads every head instead of the numba head reader) and with `--workers 2..N`.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

DEFAULT_PACKETS = 250_000
DEFAULT_ROUNDS = 3
WARMUP_PACKETS = 1_000
NGINX_ADDRESS = "127.0.0.1"
NGINX_PORT = 8080
WRK_CONNECTIONS = 64  # a busy API has many connections; workers shard by connection
WRK_THREADS = 2
FIRST_ROUND_S = 1
MAX_ROUNDS = 12
ROUND_MARGIN = 1.15
LONGEST_ROUND_S = 120
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
TCPDUMP_BUFFER_KIB = 65_536
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

CATALOG_ITEMS = 24
NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    default_type application/json;
    server {{
        listen {address}:{port};
        server_name api.bench.local;
        location /api/v1/users/ {{ return 200 '{{"id":1,"name":"x"}}'; }}
        location ~ ^/api/v1/orders/[0-9]+/items$ {{
            return 200 '[{{"sku":"a-1","qty":2}},{{"sku":"b-7","qty":1}}]';
        }}
        location = /api/v1/orders {{ return 201 '{{"id":42,"status":"created"}}'; }}
        location = /api/v1/catalog {{ alias {prefix}/html/catalog.json; }}
        location / {{ return 404 '{{"error":"not found"}}'; }}
    }}
}}
"""
WRK_SCRIPT = """\
-- Rotates over API-like paths with ids: users, order items, the catalog, a POST, a query string and 404s.
local counter = 0
local order_body = '{"user_id":7,"items":[{"sku":"a-1","qty":2}]}'
wrk.headers["User-Agent"] = "apispy-bench/wrk"
wrk.headers["Accept"] = "application/json"
request = function()
    counter = counter + 1
    local id = (counter * 7919) % 100000 + 1
    local slot = counter % 10
    if slot <= 2 then
        return wrk.format("GET", "/api/v1/users/" .. id)
    elseif slot <= 4 then
        return wrk.format("GET", "/api/v1/orders/" .. id .. "/items")
    elseif slot <= 6 then
        return wrk.format("GET", "/api/v1/catalog")
    elseif slot == 7 then
        local headers = {["User-Agent"] = "apispy-bench/wrk", ["Content-Type"] = "application/json"}
        return wrk.format("POST", "/api/v1/orders", headers, order_body)
    elseif slot == 8 then
        return wrk.format("GET", "/api/v1/users/" .. id .. "?fields=name,email")
    else
        return wrk.format("GET", "/api/v2/unknown/" .. id)
    end
end
"""
READY_PROBE = """\
import sys, time, urllib.error, urllib.request
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=1) as response:
            sys.exit(0 if response.status == 200 else 1)
    except (urllib.error.URLError, ConnectionError):
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.05)
"""


class BenchError(Exception):
    """A tool is missing or failed; the message says which and why."""


@dataclass(frozen=True)
class Recording:
    """What recording the capture produced, for the report."""

    wrk_seconds: int
    tcpdump_stats: str
    offloads: str


@dataclass(frozen=True)
class TimedRun:
    """One tool's runs over the capture: the least time of its rounds, their median, and the median CPU time of
    the run's processes (worker processes included)."""

    seconds: float
    transactions: int
    median_seconds: float = 0.0
    cpu_seconds: float = 0.0


def children_cpu_seconds() -> float:
    """User and system time of every child process waited for so far (and of the children they waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_in_rounds(
    runs: dict[str, Callable[[], float]], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Each run's seconds in each of `rounds` rounds, and the CPU time its processes took; a round runs each once,
    the order rotating by one each round."""
    names = list(runs)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            before = children_cpu_seconds()
            seconds[name].append(runs[name]())
            cpu[name].append(children_cpu_seconds() - before)
    return seconds, cpu


def require_tools(names: list[str]) -> dict[str, str]:
    """Resolve each tool on PATH, or fail naming every missing one and the Debian package that has it."""
    packages = {"ip": "iproute2", "capinfos": "wireshark-common", "editcap": "wireshark-common"}
    found = {name: shutil.which(name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        hints = ", ".join(f"{name} (apt-get install {packages.get(name, name)})" for name in missing)
        raise BenchError(f"missing tools: {hints}")
    return {name: path for name, path in found.items() if path is not None}


def find_apispy(explicit: str | None) -> str:
    """The apispy command: --apispy, else the one next to this Python (a virtualenv), else the one on PATH."""
    candidates = [explicit] if explicit else [str(Path(sys.executable).parent / "apispy"), shutil.which("apispy")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BenchError("apispy not found: run this script with the virtualenv's python or pass --apispy PATH")


def apispy_build(apispy: str) -> str:
    """Whether the apispy command runs compiled modules (`pip install .`) or plain Python (an editable install,
    `APISPY_COMPILE=0`, no compiler), as its `--version` says: its figures differ by some 20%."""
    version = subprocess.run([apispy, "--version"], capture_output=True, text=True).stdout
    return version.partition("(")[2].rpartition(")")[0] or "build unknown"


def run_checked(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command that must succeed; on failure raise with the command line and its stderr."""
    result = subprocess.run(command, text=True, capture_output=True, **kwargs)
    if result.returncode != 0:
        raise BenchError(f"`{' '.join(command)}` exited {result.returncode}:\n{result.stderr.strip()}")
    return result


def count_packets(capture: Path) -> int:
    """Packets in a capture per capinfos; a file still being written may end in a cut packet, which is not counted."""
    result = subprocess.run(["capinfos", "-M", "-c", str(capture)], text=True, capture_output=True)
    match = re.search(r"Number of packets:\s*(\d+)", result.stdout)
    if match is None:
        raise BenchError(f"capinfos could not count packets in {capture}:\n{result.stderr.strip()}")
    return int(match.group(1))


def catalog_json() -> str:
    """A static JSON catalog of about 3 KB, so that responses span several 1500-byte segments."""
    items = ",".join(
        f'{{"sku":"sku-{index:04d}","name":"Catalog item number {index}","price_cents":{index * 137 % 9000 + 99},'
        f'"tags":["api","bench"]}}'
        for index in range(CATALOG_ITEMS)
    )
    return f'{{"version":3,"items":[{items}]}}\n'


def in_namespace(namespace: str, command: list[str]) -> list[str]:
    return ["ip", "netns", "exec", namespace, *command]


def stop_process(process: subprocess.Popen[bytes] | None, first_signal: signal.Signals) -> None:
    """Signal one process we started, wait for it, and kill it if it does not exit in time."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(first_signal)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def remove_namespace(namespace: str) -> None:
    """Kill whatever is left in our own namespace (only our processes live there), then delete it."""
    pids = subprocess.run(["ip", "netns", "pids", namespace], text=True, capture_output=True).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    result = subprocess.run(["ip", "netns", "del", namespace], text=True, capture_output=True)
    if result.returncode != 0:
        print(f"warning: could not delete namespace {namespace}: {result.stderr.strip()}", file=sys.stderr)


def wait_for_line(name: str, log: Path, needle: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait until a process we started writes `needle` to its log, failing early if it exits."""
    deadline = time.monotonic() + timeout_s
    while needle not in log.read_text(errors="replace"):
        if process.poll() is not None:
            raise BenchError(f"{name} exited {process.returncode}:\n{log.read_text(errors='replace')}")
        if time.monotonic() > deadline:
            raise BenchError(f"{name} did not write {needle!r} within {timeout_s} s")
        time.sleep(0.05)


def start_nginx(namespace: str, prefix: Path, log: Path, base_url: str) -> subprocess.Popen[bytes]:
    """Start nginx in the foreground inside the namespace and wait until it serves the catalog."""
    error_log = prefix / "error.log"
    command = ["nginx", "-p", str(prefix), "-e", str(error_log), "-c", str(prefix / "nginx.conf")]
    with log.open("wb") as output:
        nginx = subprocess.Popen(in_namespace(namespace, command), stdout=output, stderr=subprocess.STDOUT)
    probe = [sys.executable, "-c", READY_PROBE, f"{base_url}/api/v1/catalog", str(READY_TIMEOUT_S)]
    if subprocess.run(in_namespace(namespace, probe), capture_output=True).returncode != 0:
        details = error_log.read_text(errors="replace") if error_log.exists() else log.read_text(errors="replace")
        stop_process(nginx, signal.SIGTERM)
        raise BenchError(f"nginx did not answer on {base_url} within {READY_TIMEOUT_S} s:\n{details.strip()}")
    return nginx


def start_tcpdump(namespace: str, capture: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start tcpdump on the namespace's loopback, unbuffered, full snap length, and wait until it listens."""
    command = ["tcpdump", "-i", "lo", "-n", "-s", "0", "-U", "-B", str(TCPDUMP_BUFFER_KIB), "-Z", "root"]
    command += ["-w", str(capture), "tcp", "port", str(NGINX_PORT)]
    with log.open("wb") as output:
        tcpdump = subprocess.Popen(in_namespace(namespace, command), stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_line("tcpdump", log, "listening on", tcpdump, READY_TIMEOUT_S)
    except BenchError:
        stop_process(tcpdump, signal.SIGINT)
        raise
    return tcpdump


def run_wrk_until(namespace: str, script: Path, base_url: str, capture: Path, packets_wanted: int) -> int:
    """Run wrk in rounds, each sized from the packet rate so far, until the capture holds enough packets.

    Returns the seconds of load generated. wrk takes whole seconds, so the last round overshoots a little.
    """
    wrk_seconds = 0
    round_s = FIRST_ROUND_S
    for _ in range(MAX_ROUNDS):
        command = ["wrk", "-t", str(WRK_THREADS), "-c", str(WRK_CONNECTIONS), "-d", f"{round_s}s"]
        run_checked(in_namespace(namespace, [*command, "-s", str(script), base_url]), timeout=round_s + 60)
        wrk_seconds += round_s
        packets = count_packets(capture)
        print(f"recording: {packets:,} packets after {wrk_seconds} s of wrk", file=sys.stderr)
        if packets >= packets_wanted:
            return wrk_seconds
        rate = max(packets / wrk_seconds, 1.0)
        round_s = min(math.ceil((packets_wanted - packets) / rate * ROUND_MARGIN), LONGEST_ROUND_S)
    raise BenchError(f"only {packets:,} of {packets_wanted:,} packets after {MAX_ROUNDS} rounds of wrk")


def record_capture(capture: Path, workdir: Path, packets_wanted: int) -> Recording:
    """Record at least `packets_wanted` packets of wrk→nginx API traffic on the loopback of a private namespace."""
    if os.geteuid() != 0:
        raise BenchError("recording needs root (network namespace, tcpdump); pass --capture FILE to skip it")
    require_tools(["ip", "nginx", "wrk", "tcpdump"])
    namespace = f"apispy-bench-{os.getpid()}"
    nginx_prefix = workdir / "nginx"
    (nginx_prefix / "html").mkdir(parents=True)
    (nginx_prefix / "html" / "catalog.json").write_text(catalog_json())
    (nginx_prefix / "nginx.conf").write_text(
        NGINX_CONF.format(prefix=nginx_prefix, address=NGINX_ADDRESS, port=NGINX_PORT)
    )
    for directory in (workdir, nginx_prefix, nginx_prefix / "html"):
        directory.chmod(0o755)
    wrk_script = workdir / "rotate_paths.lua"
    wrk_script.write_text(WRK_SCRIPT)
    tcpdump_log = workdir / "tcpdump.log"
    base_url = f"http://{NGINX_ADDRESS}:{NGINX_PORT}"

    nginx = tcpdump = None
    run_checked(["ip", "netns", "add", namespace])
    try:
        run_checked(["ip", "-n", namespace, "link", "set", "lo", "mtu", "1500"])
        run_checked(["ip", "-n", namespace, "link", "set", "lo", "up"])
        if shutil.which("ethtool"):
            run_checked(in_namespace(namespace, ["ethtool", "-K", "lo", "tso", "off", "gso", "off", "gro", "off"]))
            offloads = "tso/gso/gro off"
        else:
            offloads = "offloads left on: ethtool not installed (apt-get install ethtool)"
            print(f"warning: {offloads}; segments may exceed the MTU", file=sys.stderr)
        nginx = start_nginx(namespace, nginx_prefix, workdir / "nginx.log", base_url)
        tcpdump = start_tcpdump(namespace, capture, tcpdump_log)
        wrk_seconds = run_wrk_until(namespace, wrk_script, base_url, capture, packets_wanted)
        stop_process(tcpdump, signal.SIGINT)
        if tcpdump.returncode != 0:
            raise BenchError(f"tcpdump exited {tcpdump.returncode}:\n{tcpdump_log.read_text(errors='replace')}")
        stats = " / ".join(line.strip() for line in tcpdump_log.read_text().splitlines() if "packets" in line)
        return Recording(wrk_seconds=wrk_seconds, tcpdump_stats=stats, offloads=offloads)
    finally:
        stop_process(tcpdump, signal.SIGINT)
        stop_process(nginx, signal.SIGTERM)
        remove_namespace(namespace)


def cut_warmup_capture(capture: Path, workdir: Path) -> Path:
    """The first packets of the capture, in the same file format, for apispy's warm-up run."""
    with capture.open("rb") as file:
        file_format = "pcapng" if file.read(4) == PCAPNG_MAGIC else "pcap"
    warmup = workdir / f"warmup.{file_format}"
    run_checked(["editcap", "-F", file_format, "-r", str(capture), str(warmup), f"1-{WARMUP_PACKETS}"])
    return warmup


def time_apispy(
    apispy: str, capture: Path, config: Path | None = None, extra: tuple[str, ...] = (), points: Path | None = None
) -> float:
    """Seconds for `apispy replay --quiet` with the transaction log off, writing its time series as line protocol
    to `points` when given (the metrics are part of the work); a crash is reported with its stderr."""
    command = [apispy, "replay", "--quiet", *extra, str(capture)]
    if points is not None:
        command[2:2] = ["--line-protocol", str(points)]
    if config is not None:
        command[2:2] = ["--config", str(config)]
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise BenchError(f"`{' '.join(command)}` exited {result.returncode}:\n{result.stderr.strip()}")
    if result.stderr.strip():
        print(f"apispy stderr: {result.stderr.strip()}", file=sys.stderr)
    return seconds


def count_apispy_transactions(apispy: str, capture: Path, workdir: Path) -> int:
    """Transactions apispy reports, from a separate untimed run writing the JSON-lines log."""
    log = workdir / "transactions.jsonl"
    run_checked([apispy, "replay", "--quiet", "--transactions", str(log), str(capture)])
    with log.open("rb") as file:
        return sum(1 for _ in file)


def time_tshark(capture: Path) -> TimedRun:
    """Seconds for tshark with full HTTP dissection (TCP reassembly on) printing method and URI of each request, and
    the requests it printed."""
    command = ["tshark", "-n", "-r", str(capture), "-d", f"tcp.port=={NGINX_PORT},http", "-Y", "http.request"]
    command += ["-T", "fields", "-e", "http.request.method", "-e", "http.request.uri"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise BenchError(f"`{' '.join(command)}` exited {result.returncode}:\n{result.stderr.strip()}")
    return TimedRun(seconds=seconds, transactions=result.stdout.count("\n"))


def print_report(
    apispy_command: str,
    capture: Path,
    packets: int,
    warmup_s: float,
    apispy: TimedRun,
    tshark: TimedRun,
    recording: Recording | None,
    without_detectors: TimedRun,
    strict: TimedRun,
    workers: dict[int, TimedRun],
) -> None:
    size_mb = capture.stat().st_size / 1e6
    print(f"apispy: {apispy_command} ({apispy_build(apispy_command)})")
    print(f"capture: {capture}  {size_mb:.1f} MB  {packets:,} packets")
    if recording is not None:
        print(f"recorded: {recording.wrk_seconds} s of wrk, {recording.offloads}")
        print(f"tcpdump: {recording.tcpdump_stats}")
    print(
        f"transactions: apispy {apispy.transactions:,}  tshark requests {tshark.transactions:,}"
        f"  (difference {apispy.transactions - tshark.transactions:+,})"
    )
    print(f"apispy warm-up (numba compile or cache load, {WARMUP_PACKETS:,} packets): {warmup_s:.2f} s")
    print()
    print(f"{'tool':<26}{'seconds':>10}{'median s':>10}{'cpu s':>8}{'packets/s':>14}{'transactions/s':>17}")
    runs = [("apispy (all detectors on)", apispy), ("apispy (detectors off)", without_detectors),
            ("apispy --strict (h11)", strict)]
    runs += [(f"apispy --workers {count}", run) for count, run in sorted(workers.items())]
    runs.append(("tshark", tshark))
    for name, run in runs:
        print(f"{name:<26}{run.seconds:>10.2f}{run.median_seconds:>10.2f}{run.cpu_seconds:>8.2f}"
              f"{packets / run.seconds:>14,.0f}{run.transactions / run.seconds:>17,.0f}")
    print(f"ratio apispy/tshark: {tshark.seconds / apispy.seconds:.2f}x with detectors, "
          f"{tshark.seconds / without_detectors.seconds:.2f}x without")
    print(f"fast head reader against h11 (--strict): {strict.seconds / apispy.seconds:.2f}x")
    for count, run in sorted(workers.items()):
        cpu_ratio = run.cpu_seconds / apispy.cpu_seconds
        print(f"speed-up of --workers {count} over one process: {apispy.seconds / run.seconds:.2f}x "
              f"({tshark.seconds / run.seconds:.2f}x tshark); its CPU time: {cpu_ratio:.2f}x one process's (median)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, metavar="FILE", help="benchmark this capture instead of recording one")
    parser.add_argument(
        "--packets",
        type=int,
        default=DEFAULT_PACKETS,
        metavar="N",
        help=f"record at least N packets (default {DEFAULT_PACKETS:_})",
    )
    parser.add_argument("--keep", type=Path, metavar="PATH", help="write the recorded capture here and keep it")
    parser.add_argument("--apispy", metavar="PATH", help="apispy command (default: next to this python, or on PATH)")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="also time apispy --workers 2..N (default 2; 1 skips)")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, metavar="N",
                        help=f"time every run N times, in turns; the least and the median (default {DEFAULT_ROUNDS})")
    args = parser.parse_args(argv)
    if args.capture and args.keep:
        parser.error("--keep applies to a recorded capture; it cannot be combined with --capture")
    if args.packets <= 0:
        parser.error("--packets must be positive")
    if args.rounds <= 0:
        parser.error("--rounds must be positive")
    return args


def raise_on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into SystemExit so that the `finally` blocks stop processes and delete the namespace."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    try:
        apispy = find_apispy(args.apispy)
        require_tools(["tshark", "capinfos", "editcap"])
        with tempfile.TemporaryDirectory(prefix="apispy-bench-") as tmp:
            workdir = Path(tmp)
            recording = None
            if args.capture:
                capture = args.capture
                if not capture.is_file():
                    raise BenchError(f"no such capture: {capture}")
            else:
                capture = (args.keep or workdir / "api_traffic.pcap").resolve()
                capture.parent.mkdir(parents=True, exist_ok=True)
                recording = record_capture(capture, workdir, args.packets)
            packets = count_packets(capture)

            start = time.perf_counter()
            time_apispy(apispy, cut_warmup_capture(capture, workdir))
            warmup_s = time.perf_counter() - start

            points = workdir / "points.lp"
            transactions = count_apispy_transactions(apispy, capture, workdir)
            no_detectors = workdir / "no-detectors.toml"
            no_detectors.write_text("[detectors]\nenabled = false\n")
            tshark_requests: list[int] = []

            def tshark_seconds() -> float:
                run = time_tshark(capture)
                tshark_requests.append(run.transactions)
                return run.seconds

            runs: dict[str, Callable[[], float]] = {
                "all": lambda: time_apispy(apispy, capture, points=points),
                "bare": lambda: time_apispy(apispy, capture, no_detectors, points=points),
                "strict": lambda: time_apispy(apispy, capture, extra=("--strict",), points=points),
                "tshark": tshark_seconds,
            }
            for count in range(2, args.workers + 1):
                runs[f"workers {count}"] = partial(time_apispy, apispy, capture, extra=("--workers", str(count)),
                                                   points=points)  # fmt: skip
            seconds, cpu = time_in_rounds(runs, args.rounds)
            if len(set(tshark_requests)) != 1:
                raise BenchError(f"tshark printed different request counts from round to round: {tshark_requests}")

            def timed(name: str, count: int = transactions) -> TimedRun:
                return TimedRun(min(seconds[name]), count, statistics.median(seconds[name]),
                                statistics.median(cpu[name]))

            apispy_run, bare_run, strict_run = timed("all"), timed("bare"), timed("strict")
            worker_runs = {count: timed(f"workers {count}") for count in range(2, args.workers + 1)}
            tshark_run = timed("tshark", tshark_requests[0])
            print_report(apispy, capture, packets, warmup_s, apispy_run, tshark_run, recording, bare_run, strict_run,
                         worker_runs)
            if not args.keep and not args.capture:
                print(f"(capture deleted with {workdir}; pass --keep PATH to keep it)")
    except BenchError as error:
        print(f"replay_vs_tshark: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
