"""The highest packet rate at which `apispy live` drops nothing, beside tcpdump's on the same setup.

Makes its own hosts: a network namespace and a veth pair (MTU 1500, offloads off). `apispy live` (or tcpdump)
captures inside the namespace; tcpreplay sends a capture into the other end at increasing rates, each for about
`--seconds`; after each run the capturer's own drop counters (apispy: kernel PACKET_STATISTICS plus packets
missing from what tcpreplay sent; tcpdump: "dropped by kernel") decide whether the rate was kept up with.
Only loopback and the test's own namespace are used. Each run also prints the CPU seconds the capturer took
and those tcpreplay took: sending into a veth runs the receiving kernel path in the sender's time, so on a
small machine the sender's share bounds what is left for the capturer.

    python bench/live_rate.py [--capture FILE] [--rates 20000,50000,100000,200000] [--seconds 3]
                              [--apispy-args '--workers 2']
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CAPTURE = HERE.parent / "pcaps" / "attacks_rate_abuse.pcap"


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=check)


def make_hosts() -> tuple[str, str, str]:
    suffix = os.getpid() % 100_000
    namespace, inside, outside = f"apispy-b{suffix}", f"abn{suffix}", f"abh{suffix}"
    sh("ip", "netns", "add", namespace)
    sh("ip", "link", "add", outside, "mtu", "65535", "type", "veth", "peer", "name", inside, "mtu", "65535")
    sh("ip", "link", "set", inside, "netns", namespace)
    sh("ip", "link", "set", outside, "up")
    sh("ip", "netns", "exec", namespace, "ip", "link", "set", inside, "up")
    for command in (["ethtool", "-K", outside, "tso", "off", "gso", "off", "gro", "off"],
                    ["ip", "netns", "exec", namespace, "ethtool", "-K", inside, "tso", "off", "gso", "off", "gro",
                     "off"]):
        subprocess.run(command, capture_output=True)
    return namespace, inside, outside


def remove_hosts(namespace: str, outside: str) -> None:
    sh("ip", "link", "del", outside, check=False)
    sh("ip", "netns", "del", namespace, check=False)


def children_cpu_s() -> float:
    """CPU seconds (user and system) of every child process reaped so far, and of their reaped descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def replay_at(outside: str, capture: Path, rate: int, packets_in_capture: int, seconds: float) -> tuple[int, float]:
    """(packets tcpreplay sent, CPU seconds it took: sending into a veth also runs the receiving side's kernel
    path, capture sockets included, in the sender's time)."""
    loops = max(1, round(rate * seconds / packets_in_capture))
    before = children_cpu_s()
    # --timer=nano: tcpreplay's default timer (gtod) spins between packets and takes a whole core at any rate
    # (5.0 CPU seconds in 5 s at 100k packets/s on this bench's machine, against 1.9 with nano, at the same
    # achieved rate); a mirror port's traffic costs the sensor no such core.
    result = sh("tcpreplay", "--timer=nano", "-i", outside, f"--pps={rate}", f"--loop={loops}", str(capture))
    sent = re.search(r"Actual: (\d+) packets", result.stdout)
    return (int(sent.group(1)) if sent else 0), children_cpu_s() - before


def run_apispy(apispy: str, namespace: str, inside: str, outside: str, capture: Path, rate: int, count: int,
               seconds: float, extra: list[str]) -> tuple[int, int, int, float, float]:
    """(packets sent, packets apispy counted, kernel drops, apispy's CPU seconds, the sender's CPU seconds)."""
    before = children_cpu_s()
    process = subprocess.Popen(["ip", "netns", "exec", namespace, apispy, "live", "-i", inside, *extra],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    process.stderr.readline()
    sent, sender_cpu = replay_at(outside, capture, rate, count, seconds)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    summary = process.communicate(timeout=120)[1]
    packets = int(re.search(r"\bpackets=(\d+)", summary).group(1))
    dropped = int(re.search(r"\bdropped=(\d+)", summary).group(1))
    return sent, packets, dropped, children_cpu_s() - before - sender_cpu, sender_cpu


def run_tcpdump(namespace: str, inside: str, outside: str, capture: Path, rate: int, count: int,
                seconds: float) -> tuple[int, int, int, float, float]:
    before = children_cpu_s()
    process = subprocess.Popen(["ip", "netns", "exec", namespace, "tcpdump", "-i", inside, "-w", "/dev/null",
                                "-s", "0", "-B", "65536"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    time.sleep(1.0)
    sent, sender_cpu = replay_at(outside, capture, rate, count, seconds)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    stats = process.communicate(timeout=60)[1]
    captured = int(re.search(r"(\d+) packets captured", stats).group(1))
    dropped = int(re.search(r"(\d+) packets dropped by kernel", stats).group(1))
    return sent, captured, dropped, children_cpu_s() - before - sender_cpu, sender_cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, default=DEFAULT_CAPTURE)
    parser.add_argument("--rates", default="10000,25000,50000,100000,200000")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--apispy", default=str(Path(sys.executable).with_name("apispy")))
    parser.add_argument("--apispy-args", default="", metavar="ARGS",
                        help="extra options for apispy live, e.g. '--workers 2'")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("live_rate: needs root to make a network namespace", file=sys.stderr)
        return 1
    count = int(sh("capinfos", "-c", "-M", str(args.capture)).stdout.split()[-1])
    namespace, inside, outside = make_hosts()
    best = {"apispy": 0, "tcpdump": 0}
    try:
        print(f"capture: {args.capture} ({count} packets), ~{args.seconds:g} s per rate")
        print(f"{'rate pps':>10} {'tool':<8} {'sent':>9} {'counted':>9} {'dropped':>8} {'cpu s':>6} "
              f"{'sender cpu s':>12}  verdict")
        for rate in (int(value) for value in args.rates.split(",")):
            for tool in ("apispy", "tcpdump"):
                if tool == "apispy":
                    sent, counted, dropped, cpu, sender_cpu = run_apispy(
                        args.apispy, namespace, inside, outside, args.capture, rate, count, args.seconds,
                        args.apispy_args.split(),
                    )
                else:
                    sent, counted, dropped, cpu, sender_cpu = run_tcpdump(
                        namespace, inside, outside, args.capture, rate, count, args.seconds
                    )
                kept_up = dropped == 0 and counted >= sent
                if kept_up:
                    best[tool] = max(best[tool], rate)
                print(f"{rate:>10,} {tool:<8} {sent:>9,} {counted:>9,} {dropped:>8,} {cpu:>6.1f} {sender_cpu:>12.1f}  "
                      f"{'no drops' if kept_up else 'DROPS'}")
    finally:
        remove_hosts(namespace, outside)
    print(f"highest rate without drops: apispy {best['apispy']:,} pps, tcpdump {best['tcpdump']:,} pps "
          "(rates tcpreplay could actually send; see the sent column)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
