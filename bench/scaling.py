"""Does apispy's cost grow linearly with capture size, and does its memory stay bounded? Compared with tshark.

The base capture (the first `--packets` packets of `--capture`, 0 for all of it) is copied 4 and 16 times into
new captures. Copy k XORs the third octet of both IPv4 addresses of every packet with k (127.0.0.1 becomes
127.0.k.1), so each copy's connections are new flows rather than retransmissions of the first copy's, and its
timestamps are shifted by whole seconds past the previous copy's end. IPv4 header and TCP checksums are updated
incrementally (RFC 1624). Before writing, the address pairs of the copies are checked to be disjoint.

apispy replays each size once after a warm-up on the first packets (which fills numba's on-disk cache; its time
is reported apart). Each run is timed with `time.perf_counter` around the child and its memory measured twice
(see captures.py): the peak RSS of the apispy process (exact, from `os.wait4`, when it runs alone), and the peak
of the VmRSS sum over its process tree sampled every 50 ms, which is what counts when `--apispy-args
"--workers N"` starts workers; the goal is judged on the latter.
Runs keep apispy's end-of-run summary (no `--quiet`): `--quiet` only skips printing it, the counters are kept
either way, and its `transactions=` count shows whether a 4x capture really holds 4x the transactions.

Linear cost means equal packets/s at every size: the table ends with the 16x/1x ratio of packets/s (1.00 is
linear), by wall time and by CPU time (user + system of apispy and its workers, steadier on a shared machine).
tshark reads the same files (1x and 4x; 16x with `--tshark-16x`, slow) printing method and URI of each request
to /dev/null, for its packets/s at each size and apispy's speed-up over it (tshark seconds / apispy seconds).

Goal (transaction log off, end to end): peak RSS under 300 MB on the whole benchmark capture, which this script
checks at 1x when `--packets 0`.

    python bench/scaling.py --capture FILE [--packets 100000] [--multiples 1,4,16] [--keep DIR]
                            [--apispy-args "--workers 2"] [--tshark-16x]
"""

from __future__ import annotations

import argparse
import math
import shlex
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from captures import MB, MeasuredRun, Pcap, read_pcap, run_measured, write_pcap  # noqa: E402
from replay_vs_tshark import (  # noqa: E402
    DEFAULT_PACKETS,
    WARMUP_PACKETS,
    BenchError,
    apispy_build,
    find_apispy,
    raise_on_sigterm,
    record_capture,
    require_tools,
)

DEFAULT_BASE_PACKETS = 100_000
DEFAULT_MULTIPLES = (1, 4, 16)
MAX_MULTIPLE = 256  # copy k rewrites one address octet to octet ^ k
RSS_GOAL_BYTES = 300 * MB
COPY_GAP_S = 1

LINKTYPE_NETWORK_OFFSETS = {1: 14, 101: 0, 228: 0, 113: 16}  # ethernet, raw, raw IPv4, Linux cooked
VLAN_TPIDS = (0x8100, 0x88A8)
ETHERTYPE_IPV4 = 0x0800
IPV4_SRC_THIRD_OCTET = 14
IPV4_DST_THIRD_OCTET = 18
IPV4_CHECKSUM = 10
IPV4_MIN_HEADER = 20
IP_PROTO_TCP = 6
TCP_CHECKSUM = 16


@dataclass(frozen=True)
class Ipv4Packets:
    """Where the fields that copies rewrite sit in the base capture's records, for the IPv4 packets only.

    `network` is each IPv4 packet's header offset; `tcp_checksum` the offsets of the TCP checksums that are
    captured (first fragments only), so that every copy rewrites the same positions without looking again.
    """

    network: np.ndarray
    tcp_checksum: np.ndarray
    tcp_rows: np.ndarray
    other_packets: int


@dataclass(frozen=True)
class SizeResult:
    multiple: int
    packets: int
    apispy: MeasuredRun
    tshark: MeasuredRun | None


def be16(records: np.ndarray, positions: np.ndarray) -> np.ndarray:
    return (records[positions].astype(np.int64) << 8) | records[positions + 1]


def put_be16(records: np.ndarray, positions: np.ndarray, values: np.ndarray) -> None:
    records[positions] = values >> 8
    records[positions + 1] = values & 0xFF


def be32(records: np.ndarray, positions: np.ndarray) -> np.ndarray:
    return (be16(records, positions) << 16) | be16(records, positions + 2)


def network_offsets(pcap: Pcap) -> tuple[np.ndarray, np.ndarray]:
    """Each packet's network-layer offset in `records` and whether it is a captured IPv4 header.

    Ethernet frames may carry up to two VLAN tags; other link types have a fixed header.
    """
    if pcap.linktype not in LINKTYPE_NETWORK_OFFSETS:
        raise BenchError(f"link type {pcap.linktype} is not supported (Ethernet, raw IP or Linux cooked only)")
    frames = pcap.starts + 16
    captured = pcap.field(2)
    end = frames + captured
    network = frames + LINKTYPE_NETWORK_OFFSETS[pcap.linktype]
    if pcap.linktype == 1:
        ethertype = np.where(captured >= 14, be16(pcap.records, np.minimum(network - 2, end - 2)), 0)
        for _ in range(2):
            tagged = np.isin(ethertype, VLAN_TPIDS) & (network + 6 <= end)
            network = np.where(tagged, network + 4, network)
            ethertype = np.where(tagged, be16(pcap.records, np.minimum(network - 2, end - 2)), ethertype)
        is_ipv4 = ethertype == ETHERTYPE_IPV4
    else:
        is_ipv4 = np.ones(pcap.packets, dtype=bool)
    is_ipv4 &= network + IPV4_MIN_HEADER <= end
    is_ipv4 &= (pcap.records[np.minimum(network, len(pcap.records) - 1)] >> 4) == 4
    return network, is_ipv4


def locate_ipv4(pcap: Pcap) -> Ipv4Packets:
    network, is_ipv4 = network_offsets(pcap)
    end = (pcap.starts + 16 + pcap.field(2))[is_ipv4]
    network = network[is_ipv4]
    header_len = (pcap.records[network] & 0x0F).astype(np.int64) * 4
    first_fragment = (be16(pcap.records, network + 6) & 0x1FFF) == 0
    is_tcp = (pcap.records[network + 9] == IP_PROTO_TCP) & first_fragment
    tcp_checksum = network + header_len + TCP_CHECKSUM
    has_checksum = is_tcp & (tcp_checksum + 2 <= end)
    return Ipv4Packets(network, tcp_checksum[has_checksum], np.flatnonzero(has_checksum),
                       int(pcap.packets - len(network)))


def check_copies_are_new_flows(pcap: Pcap, ipv4: Ipv4Packets, multiple: int) -> None:
    """Refuses a capture whose copies would share an address pair (in either direction) with another copy.

    Copies j and k collide exactly when XORing with j ^ k maps a pair of the base onto another; j ^ k takes every
    value below the next power of two, so checking those masks against the base covers every pair of copies.
    """
    src = be32(pcap.records, ipv4.network + 12).astype(np.uint64)
    dst = be32(pcap.records, ipv4.network + 16).astype(np.uint64)
    pairs = np.unique(np.concatenate([(src << np.uint64(32)) | dst, (dst << np.uint64(32)) | src]))
    for mask in range(1, 1 << math.ceil(math.log2(multiple))):
        shifted = np.uint64(mask << 8)
        if np.intersect1d(pairs ^ ((shifted << np.uint64(32)) | shifted), pairs).size:
            raise BenchError(f"copies {mask} apart would reuse address pairs of this capture; use another capture")


def ones_complement_update(
    checksum: np.ndarray, old_words: list[np.ndarray], new_words: list[np.ndarray]
) -> np.ndarray:
    """RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for every changed 16-bit word m."""
    total = ~checksum & 0xFFFF
    for old, new in zip(old_words, new_words, strict=True):
        total = total + (~old & 0xFFFF) + new
    for _ in range(2):
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def shift_seconds(records: np.ndarray, pcap: Pcap, seconds: int) -> None:
    """Adds whole seconds to every record's timestamp, in place, in the file's byte order."""
    positions = pcap.starts[:, None] + np.arange(4)
    shifted = (pcap.field(0) + seconds).astype(f"{pcap.byte_order}u4")
    records[positions] = shifted.view(np.uint8).reshape(-1, 4)


def copy_records(pcap: Pcap, ipv4: Ipv4Packets, copy: int, period_s: int) -> np.ndarray:
    """The base records as copy number `copy`: addresses' third octet XOR copy, timestamps + copy * period_s."""
    records = pcap.records.copy()
    shift_seconds(records, pcap, copy * period_s)
    words = [ipv4.network + IPV4_SRC_THIRD_OCTET, ipv4.network + IPV4_DST_THIRD_OCTET]
    old_words = [be16(records, position) for position in words]
    new_words = [word ^ (copy << 8) for word in old_words]
    checksum = ipv4.network + IPV4_CHECKSUM
    put_be16(records, checksum, ones_complement_update(be16(records, checksum), old_words, new_words))
    tcp_old = [word[ipv4.tcp_rows] for word in old_words]
    tcp_new = [word[ipv4.tcp_rows] for word in new_words]
    tcp_sum = be16(records, ipv4.tcp_checksum)
    put_be16(records, ipv4.tcp_checksum, ones_complement_update(tcp_sum, tcp_old, tcp_new))
    for position, word in zip(words, new_words, strict=True):
        put_be16(records, position, word)
    return records


def build_multiple(pcap: Pcap, ipv4: Ipv4Packets, multiple: int, path: Path) -> Path:
    """Writes `multiple` copies of the base one after the other, each starting a whole second after the last."""
    seconds = pcap.field(0)
    period_s = int(seconds.max() - seconds.min()) + 1 + COPY_GAP_S
    with path.open("wb") as file:
        file.write(pcap.header)
        for copy in range(multiple):
            (copy_records(pcap, ipv4, copy, period_s) if copy else pcap.records).tofile(file)
    return path


def obtain_capture(args: argparse.Namespace, workdir: Path) -> Path:
    """The capture to scale: --capture, else one recorded the way replay_vs_tshark.py records it (needs root)."""
    if args.capture:
        if not args.capture.is_file():
            raise BenchError(f"no such capture: {args.capture}")
        return args.capture
    capture = workdir / "api_traffic.pcap"
    print("no --capture: recording one like bench/replay_vs_tshark.py (root, nginx, wrk, tcpdump)", file=sys.stderr)
    try:
        record_capture(capture, workdir, max(args.packets, DEFAULT_PACKETS))
    except BenchError as error:
        raise BenchError(f"{error}\npass --capture FILE, e.g. one kept by "
                         "`python bench/replay_vs_tshark.py --keep PATH`") from None
    return capture


def build_captures(capture: Path, args: argparse.Namespace, workdir: Path) -> tuple[dict[int, Path], Path, int]:
    """Files for each multiple, the warm-up file, and the base's packet count."""
    full = read_pcap(capture)
    base = full.first(args.packets)
    if args.packets > full.packets:
        print(f"warning: the capture has only {full.packets:,} packets; using all of them", file=sys.stderr)
    ipv4 = locate_ipv4(base)
    if ipv4.other_packets:
        print(f"warning: {ipv4.other_packets:,} packets are not IPv4; their copies repeat the base", file=sys.stderr)
    check_copies_are_new_flows(base, ipv4, max(args.multiples))
    files = {}
    for multiple in args.multiples:
        started = time.perf_counter()
        if multiple == 1:
            files[1] = capture if base is full else write_pcap(workdir / "1x.pcap", base)
        else:
            files[multiple] = build_multiple(base, ipv4, multiple, workdir / f"{multiple}x.pcap")
        print(f"built {multiple}x: {files[multiple].stat().st_size / MB:,.0f} MB in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    warmup = write_pcap(workdir / "warmup.pcap", base.first(WARMUP_PACKETS))
    return files, warmup, base.packets


def tshark_command(capture: Path) -> list[str]:
    """Full HTTP dissection with TCP reassembly (8080 is one of tshark's HTTP ports), output discarded."""
    return ["tshark", "-n", "-r", str(capture), "-Y", "http.request",
            "-T", "fields", "-e", "http.request.method", "-e", "http.request.uri"]


def apispy_command(apispy: str, extra: list[str], capture: Path) -> list[str]:
    return [apispy, "replay", *extra, str(capture)]


def measure_sizes(args: argparse.Namespace, apispy: str, files: dict[int, Path], base_packets: int) -> list[SizeResult]:
    results = []
    for multiple, path in files.items():
        run = run_measured(apispy_command(apispy, args.apispy_args, path))
        report_stderr(f"apispy {multiple}x", run)
        tshark = None
        if multiple <= 4 or args.tshark_16x:
            tshark = run_measured(tshark_command(path))
        results.append(SizeResult(multiple, base_packets * multiple, run, tshark))
    return results


def report_stderr(name: str, run: MeasuredRun) -> None:
    """Passes on apispy's warnings; the summary itself is only read for its counters."""
    for line in run.stderr.splitlines():
        if "warning" in line:
            print(f"{name}: {line.strip()}", file=sys.stderr)


def print_table(results: list[SizeResult], warmup: MeasuredRun) -> None:
    print(f"apispy warm-up ({WARMUP_PACKETS:,} packets; numba cache): {warmup.seconds:.2f} s, "
          f"peak RSS {warmup.peak_rss_tree / MB:,.0f} MB")
    print()
    print(f"{'multiple':>8}{'packets':>12}{'transactions':>14}{'seconds':>10}{'cpu s':>9}{'packets/s':>12}"
          f"{'RSS main MB':>13}{'RSS tree MB':>13}{'tshark s':>10}{'tshark p/s':>12}{'speed-up':>10}")
    for result in results:
        run = result.apispy
        transactions = run.counter("transactions")
        shown = "?" if transactions is None else f"{transactions:,}"
        row = (f"{result.multiple:>7}x{result.packets:>12,}{shown:>14}"
               f"{run.seconds:>10.2f}{run.cpu_seconds:>9.2f}{result.packets / run.seconds:>12,.0f}"
               f"{run.peak_rss_main / MB:>13,.0f}{run.peak_rss_tree / MB:>13,.0f}")
        if result.tshark is not None:
            tshark_s = result.tshark.seconds
            row += f"{tshark_s:>10.2f}{result.packets / tshark_s:>12,.0f}{tshark_s / run.seconds:>9.2f}x"
        print(row)


def print_verdicts(results: list[SizeResult], whole_capture: bool) -> None:
    by_multiple = {result.multiple: result for result in results}
    rate = {m: r.packets / r.apispy.seconds for m, r in by_multiple.items()}
    cpu_rate = {m: r.packets / r.apispy.cpu_seconds for m, r in by_multiple.items()}
    if 1 in rate:
        for multiple in sorted(rate):
            if multiple != 1:
                print(f"linearity: packets/s at {multiple}x / 1x = {rate[multiple] / rate[1]:.2f} wall, "
                      f"{cpu_rate[multiple] / cpu_rate[1]:.2f} per CPU second (1.00 = linear)")
        base_transactions = by_multiple[1].apispy.counter("transactions")
        for multiple, result in sorted(by_multiple.items()):
            got = result.apispy.counter("transactions")
            if base_transactions is not None and got is not None and got != multiple * base_transactions:
                print(f"WARNING: {multiple}x gave {got:,} transactions, not {multiple} x {base_transactions:,}")
    if 1 not in by_multiple or not whole_capture:
        print("RSS goal (< 300 MB on the whole capture): not measured; run with --packets 0 --multiples 1")
        return
    peak = by_multiple[1].apispy.peak_rss_tree
    verdict = "met" if peak < RSS_GOAL_BYTES else "NOT MET"
    print(f"RSS goal (< 300 MB on the whole capture, 1x): {verdict} ({peak / MB:,.0f} MB)")


def parse_multiples(text: str) -> tuple[int, ...]:
    try:
        multiples = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not multiples or multiples[0] < 1 or multiples[-1] > MAX_MULTIPLE:
        raise argparse.ArgumentTypeError(f"multiples must be between 1 and {MAX_MULTIPLE}")
    return multiples


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--capture", type=Path, metavar="FILE",
                        help="classic pcap to scale (without it one is recorded as replay_vs_tshark.py does; root)")
    parser.add_argument("--packets", type=int, default=DEFAULT_BASE_PACKETS, metavar="N",
                        help=f"the 1x base is the first N packets (default {DEFAULT_BASE_PACKETS:_}; 0 = all)")
    parser.add_argument("--multiples", type=parse_multiples, default=DEFAULT_MULTIPLES, metavar="LIST",
                        help="sizes to run, as multiples of the base (default 1,4,16)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="write the built captures here and keep them")
    parser.add_argument("--apispy", metavar="PATH", help="apispy command (default: next to this python, or on PATH)")
    parser.add_argument("--apispy-args", type=shlex.split, default=[], metavar="ARGS",
                        help='extra arguments for `apispy replay`, one string, e.g. "--workers 2"')
    parser.add_argument("--tshark-16x", action="store_true", help="also run tshark at 16x (slow)")
    args = parser.parse_args(argv)
    if args.packets < 0:
        parser.error("--packets must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    try:
        apispy = find_apispy(args.apispy)
        require_tools(["tshark"])
        with tempfile.TemporaryDirectory(prefix="apispy-scaling-") as tmp:
            workdir = Path(tmp)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
            capture = obtain_capture(args, workdir)
            files, warmup_file, base_packets = build_captures(capture, args, args.keep or workdir)
            warmup = run_measured(apispy_command(apispy, args.apispy_args, warmup_file))
            results = measure_sizes(args, apispy, files, base_packets)
            print(f"apispy: {apispy} ({apispy_build(apispy)})")
            print(f"capture: {capture}, base {base_packets:,} packets"
                  f"{' (whole capture)' if files.get(1) == capture else ''}; apispy args: {args.apispy_args or '-'}")
            print_table(results, warmup)
            print_verdicts(results, whole_capture=files.get(1) == capture)
            if args.keep:
                print(f"captures kept in {args.keep}")
    except BenchError as error:
        print(f"scaling: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
