"""Live capture on hosts the test makes itself: a network namespace and a veth pair, traffic from tcpreplay.

`apispy live` runs inside the namespace on one end of the veth; tcpreplay sends a bundled capture into the other
end; after SIGINT, the transactions apispy wrote must match those of `apispy replay` on the same capture. Only
the test's own namespace and veth are used. Where the machine cannot make namespaces (no root, no iproute2),
the tests are skipped with the reason, never passed silently.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from support.kernels import numba_cache_files
from support.samples import PCAPS

APISPY = str(Path(sys.executable).with_name("apispy"))


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=60)


@pytest.fixture(scope="module")
def veth():
    """(namespace, interface inside it, interface outside it); removed afterwards."""
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tcpreplay") is None:
        pytest.skip("live capture tests need root, iproute2 (ip netns) and tcpreplay")
    suffix = os.getpid() % 100_000
    namespace, inside, outside = f"apispy-t{suffix}", f"asn{suffix}", f"ash{suffix}"
    made = sh("ip", "netns", "add", namespace, check=False)
    if made.returncode != 0:
        pytest.skip(f"this machine cannot make network namespaces: {made.stderr.strip()}")
    try:
        sh("ip", "link", "add", outside, "mtu", "65535", "type", "veth", "peer", "name", inside, "mtu", "65535")
        sh("ip", "link", "set", inside, "netns", namespace)
        sh("ip", "link", "set", outside, "up")
        sh("ip", "netns", "exec", namespace, "ip", "link", "set", inside, "up")
        sh("ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up")
        yield namespace, inside, outside
    finally:
        sh("ip", "link", "del", outside, check=False)
        sh("ip", "netns", "del", namespace, check=False)


def start_live(namespace: str, interface: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    process = subprocess.Popen(
        ["ip", "netns", "exec", namespace, APISPY, "live", "-i", interface, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = process.stderr.readline()
    assert line.startswith("apispy: capturing on"), line + process.stderr.read()
    return process


def stop(process: subprocess.Popen, sig: int = signal.SIGINT) -> tuple[str, str]:
    process.send_signal(sig)
    started = time.monotonic()
    stdout, stderr = process.communicate(timeout=30)
    assert time.monotonic() - started < 10, "shutdown took too long"
    assert process.returncode == 0, stderr
    return stdout, stderr


def replay_records(capture: Path) -> list[dict]:
    result = sh(APISPY, "replay", "--quiet", "--transactions", "-", str(capture))
    return [json.loads(line) for line in result.stdout.splitlines()]


def keys(records: list[dict]) -> Counter:
    return Counter((r["src_ip"], r["method"], r["uri"], r["status"], r["resp_body_bytes"]) for r in records)


@pytest.mark.parametrize(
    ("name", "reading"),
    [("api_python_curl.pcap", []), ("api_nginx_wrk.pcap", []), ("api_nginx_wrk.pcap", ["--no-ring"])],
    ids=["curl-ring", "wrk-ring", "wrk-socket"],
)
def test_live_capture_matches_replay_of_the_same_capture(veth, tmp_path: Path, name: str, reading: list) -> None:
    """Through the receive ring (default) and reading the socket frame by frame (--no-ring)."""
    namespace, inside, outside = veth
    log = tmp_path / "live.jsonl"
    started = time.time()
    process = start_live(namespace, inside, "--transactions", str(log), *reading)
    sh("tcpreplay", "-q", "-i", outside, "--pps", "5000", str(PCAPS / name))
    time.sleep(0.5)
    _, stderr = stop(process)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(started - 1 <= record["ts"] <= time.time() for record in records)  # kernel time of arrival
    live = keys(records)
    expected = keys(replay_records(PCAPS / name))
    matched = sum((live & expected).values())
    assert matched >= 0.995 * sum(expected.values()), (matched, sum(expected.values()))
    assert "dropped=0" in stderr


def test_sigterm_flushes_and_pcap_is_written_with_rotation(veth, tmp_path: Path) -> None:
    namespace, inside, outside = veth
    pcap = tmp_path / "capture.pcap"
    process = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            namespace,
            APISPY,
            "live",
            "-i",
            inside,
            "--write-pcap",
            str(pcap),
            "--rotate-mb",
            "0.2",
            "--keep",
            "2",
            "--transactions",
            str(tmp_path / "tx.jsonl"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr.readline().startswith("apispy: capturing on")
    sh("tcpreplay", "-q", "-i", outside, "--pps", "5000", str(PCAPS / "api_nginx_wrk.pcap"))
    time.sleep(0.5)
    stop(process, signal.SIGTERM)
    files = sorted(path.name for path in tmp_path.iterdir() if path.name.startswith("capture.pcap"))
    assert files == ["capture.pcap", "capture.pcap.1", "capture.pcap.2"]
    transactions = len((tmp_path / "tx.jsonl").read_text().splitlines())
    assert transactions == 1203
    # What was written reads back as a capture, rotated pieces in order.
    result = sh(APISPY, "replay", "--quiet", "--transactions", "-", str(pcap) + ".2", str(pcap) + ".1", str(pcap))
    assert 0 < len(result.stdout.splitlines()) <= transactions


def test_sighup_reopens_the_transaction_log(veth, tmp_path: Path) -> None:
    namespace, inside, outside = veth
    log = tmp_path / "tx.jsonl"
    process = start_live(namespace, inside, "--transactions", str(log))
    sh("tcpreplay", "-q", "-i", outside, "--pps", "5000", str(PCAPS / "edge_pipelined.pcap"))
    time.sleep(0.5)
    log.rename(tmp_path / "tx.jsonl.1")
    process.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    sh("tcpreplay", "-q", "-i", outside, "--pps", "5000", str(PCAPS / "edge_bigendian.pcap"))
    time.sleep(0.5)
    stop(process)
    assert len((tmp_path / "tx.jsonl.1").read_text().splitlines()) == 3
    assert [json.loads(line)["uri"] for line in log.read_text().splitlines()] == ["/endian/big"]


def test_missing_interface_is_one_line_and_exit_2() -> None:
    result = subprocess.run([APISPY, "live", "-i", "apispy-nonexistent0"], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (2, "apispy: error: apispy-nonexistent0: no such network interface\n")


def test_missing_privilege_names_the_capability() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (util-linux) to run apispy without CAP_NET_RAW")
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all",
            APISPY,
            "live",
            "-i",
            "lo",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "CAP_NET_RAW" in result.stderr and result.stderr.count("\n") == 1


def test_user_option_drops_root_after_opening_the_socket(veth) -> None:
    namespace, inside, outside = veth
    # Outputs are opened after the switch, as the new user: a directory that user may write to.
    shared = Path(tempfile.mkdtemp(prefix="apispy-user-test-"))
    shared.chmod(0o777)
    log = shared / "tx.jsonl"
    process = start_live(namespace, inside, "--user", "nobody", "--transactions", str(log))
    owner = sh("ps", "-o", "user=", "-p", str(find_apispy_pid(process))).stdout.strip()
    sh("tcpreplay", "-q", "-i", outside, "--pps", "5000", str(PCAPS / "edge_pipelined.pcap"))
    time.sleep(0.5)
    stop(process)
    assert owner == "nobody"
    assert len(log.read_text().splitlines()) == 3
    assert log.stat().st_uid != 0
    shutil.rmtree(shared)


def find_apispy_pid(process: subprocess.Popen) -> int:
    """`ip netns exec` execs apispy in place, so the child's pid is apispy's."""
    return process.pid


def test_drops_are_counted_the_same_in_the_summary_and_the_time_series(veth, tmp_path: Path) -> None:
    """At a rate the pipeline cannot follow for long, whatever is dropped shows in both places alike."""
    namespace, inside, outside = veth
    points = tmp_path / "points.lp"
    process = start_live(namespace, inside, "--interval", "1", "--line-protocol", str(points))
    sh("tcpreplay", "-q", "-i", outside, "--pps", "100000", "--loop", "120", str(PCAPS / "attacks_rate_abuse.pcap"))
    _, stderr = stop(process)
    summary_dropped = int(stderr.split(" dropped=")[1].split()[0])
    series = [line for line in points.read_text().splitlines() if line.startswith("apispy_capture,")]
    series_dropped = sum(int(line.split("dropped=")[1].split("i")[0]) for line in series)
    assert series_dropped == summary_dropped
    if summary_dropped:
        assert "packets were dropped before apispy read them" in stderr


def copy_numba_cache_for_others(cache: Path) -> None:
    """The project's numba cache (the suite's runs filled it), copied into `cache` as numba lays out a
    NUMBA_CACHE_DIR, for a process of another user: `nobody` may not write the project's own `__pycache__`, so its
    numba would compile every kernel afresh at the warm-up, some 25 s of the suite."""
    from numba.core.caching import _CacheLocator

    for cached in numba_cache_files():
        source_dir = cached.parent.parent
        target = cache / _CacheLocator.get_suitable_cache_subpath(str(source_dir / "any.py"))
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(cached, target / cached.name)
    for path in [cache, *cache.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)


def test_cap_net_raw_alone_is_enough_to_capture(veth, request: pytest.FixtureRequest) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to run apispy as nobody with only CAP_NET_RAW")
    namespace, inside, outside = veth
    cache = Path(tempfile.mkdtemp(prefix="apispy-numba-"))  # tmp_path's parents are root's alone
    request.addfinalizer(lambda: shutil.rmtree(cache, ignore_errors=True))
    copy_numba_cache_for_others(cache)
    process = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            namespace,
            "env",
            f"NUMBA_CACHE_DIR={cache}",
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=+net_raw",
            "--ambient-caps=+net_raw",
            APISPY,
            "live",
            "-i",
            inside,
            "--transactions",
            "-",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr.readline().startswith("apispy: capturing on")
    sh("tcpreplay", "-q", "-i", outside, "--pps", "5000", str(PCAPS / "edge_pipelined.pcap"))
    time.sleep(0.5)
    stdout, _ = stop(process)
    assert [json.loads(line)["uri"] for line in stdout.splitlines()] == ["/pipe/1", "/pipe/2", "/pipe/3"]


def test_workers_share_connections_through_fanout_and_match_replay(veth, tmp_path: Path) -> None:
    """--workers 2: the kernel splits the traffic by connection between two sockets (PACKET_FANOUT); the merged
    transactions are those of a replay, each connection parsed by one process only."""
    namespace, inside, outside = veth
    log = tmp_path / "live.jsonl"
    points = tmp_path / "points.lp"
    process = start_live(namespace, inside, "--workers", "2", "--transactions", str(log),
                         "--line-protocol", str(points), "--interval", "1")
    sh("tcpreplay", "-q", "-i", outside, "--pps", "5000", str(PCAPS / "api_python_curl.pcap"))
    time.sleep(0.5)
    _, stderr = stop(process)
    live = keys([json.loads(line) for line in log.read_text().splitlines()])
    expected = keys(replay_records(PCAPS / "api_python_curl.pcap"))
    assert sum((live & expected).values()) >= 0.995 * sum(expected.values())
    assert sum(live.values()) == sum(expected.values()), "no connection was parsed twice"
    shares = [int(count) for count in re.findall(r"transactions_worker\d=(\d+)", stderr)]
    assert len(shares) == 2 and all(shares), stderr
    assert "workers=2" in stderr and "dropped=0" in stderr
    counted = sum(int(match) for match in re.findall(r"^api_requests,.* count=(\d+)i", points.read_text(), re.M))
    assert counted == sum(expected.values())


def test_workers_write_a_pcap_set_each_that_together_hold_the_capture(veth, tmp_path: Path) -> None:
    """--workers 2 --write-pcap: each process writes the frames it captured to PATH.workerK; replayed together,
    those files give the transactions of the original capture, and they hold every packet apispy counted."""
    import dpkt

    namespace, inside, outside = veth
    base = tmp_path / "live.pcap"
    process = start_live(namespace, inside, "--workers", "2", "--write-pcap", str(base))
    sh("tcpreplay", "-q", "-i", outside, "--pps", "5000", str(PCAPS / "api_python_curl.pcap"))
    time.sleep(0.5)
    _, stderr = stop(process)
    files = sorted(tmp_path.glob("live.pcap.worker*"))
    assert [path.name for path in files] == ["live.pcap.worker0", "live.pcap.worker1"]
    frames = [sum(1 for _ in dpkt.pcap.Reader(path.open("rb"))) for path in files]
    assert all(frames), frames  # the kernel gave each process some connections
    packets = int(re.search(r"\bpackets=(\d+)", stderr).group(1))
    assert sum(frames) == packets
    written = keys(json.loads(line) for line in sh(APISPY, "replay", "--quiet", "--transactions", "-",
                                                   *map(str, files)).stdout.splitlines())  # fmt: skip
    expected = keys(replay_records(PCAPS / "api_python_curl.pcap"))
    assert sum((written & expected).values()) >= 0.995 * sum(expected.values())


def test_sighup_reopens_every_workers_pcap_files(veth, tmp_path: Path) -> None:
    """After logrotate moved the files away, SIGHUP makes the parent and each worker continue in new files."""
    import dpkt

    namespace, inside, outside = veth
    base = tmp_path / "live.pcap"
    process = start_live(namespace, inside, "--workers", "2", "--write-pcap", str(base))
    sh("tcpreplay", "-q", "-i", outside, "--pps", "5000", str(PCAPS / "api_python_curl.pcap"))
    time.sleep(0.5)
    for worker in (0, 1):
        (tmp_path / f"live.pcap.worker{worker}").rename(tmp_path / f"old.worker{worker}")
    process.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    sh("tcpreplay", "-q", "-i", outside, "--pps", "5000", str(PCAPS / "api_python_curl.pcap"))
    time.sleep(0.5)
    _, stderr = stop(process)
    old = [sum(1 for _ in dpkt.pcap.Reader((tmp_path / f"old.worker{k}").open("rb"))) for k in (0, 1)]
    new = [sum(1 for _ in dpkt.pcap.Reader((tmp_path / f"live.pcap.worker{k}").open("rb"))) for k in (0, 1)]
    assert all(old) and all(new), (old, new)
    assert sum(old) + sum(new) == int(re.search(r"\bpackets=(\d+)", stderr).group(1))


def test_each_capture_gets_its_own_fanout_group_and_workers_join_it() -> None:
    """Two apispy instances on one interface must never split each other's traffic: the kernel picks a group
    id no one uses for each, and an instance's workers join the ids of its own group."""
    if os.geteuid() != 0:
        pytest.skip("opening capture sockets needs root (CAP_NET_RAW)")
    from sniffer.capture.live import LiveSource

    first, second = LiveSource(["lo"], fanout=[]), LiveSource(["lo"], fanout=[])
    worker = LiveSource(["lo"], fanout=first.fanout_groups, counts_interface_drops=False)
    try:
        assert first.fanout_groups != second.fanout_groups
        assert worker.fanout_groups == first.fanout_groups
    finally:
        for source in (first, second, worker):
            source.close()


def kernel_indexes(cache: Path) -> dict[str, int]:
    """numba's cache index files under `cache`, by path, with their modification times: an index is written
    whenever a kernel is compiled for argument types it had not seen."""
    return {str(path.relative_to(cache)): path.stat().st_mtime_ns for path in cache.rglob("*.nbi")}


def test_no_kernel_is_compiled_once_capture_has_started(veth, tmp_path: Path) -> None:
    """The warm-up loads (on a first run after installing: compiles) every kernel live capture runs, for the very
    argument types it runs them with: compiling one mid-capture takes a second or more, and the receive ring
    overflows meanwhile. An empty numba cache shows every kernel compiled after the start."""
    namespace, inside, outside = veth
    cache = tmp_path / "numba"
    process = start_live(namespace, inside, "--transactions", str(tmp_path / "t.jsonl"),
                         env={**os.environ, "NUMBA_CACHE_DIR": str(cache)})  # fmt: skip
    warmed = kernel_indexes(cache)
    assert len(warmed) > 10
    for name in ("attacks_rate_abuse.pcap", "attacks_payload.pcap", "api_nginx_wrk.pcap"):
        sh("tcpreplay", "-q", "-i", outside, "--pps", "20000", str(PCAPS / name))
    time.sleep(0.5)
    _, stderr = stop(process)
    assert "dropped=0" in stderr
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) > 1000
    compiled = {name for name, changed in kernel_indexes(cache).items() if warmed.get(name) != changed}
    assert not compiled, "compiled during capture"
