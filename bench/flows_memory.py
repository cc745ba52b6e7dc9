"""How much memory apispy needs with many TCP connections open at once: the goal is under 1 GB for 200k.

A capture is generated in which `--flows` connections are all open at the same time, each waiting for the answer
to one request: first every flow's handshake and request (`GET /items/<n>`, spread over `--span` seconds of
packet time, well inside the 120 s idle timeout), then every response (`200`, a 2-byte JSON body), then every
flow's FIN exchange. Clients are 10.1.x.y (100 source ports each), the server 10.0.0.1:80; checksums are right.
The whole file is built with numpy, one array per packet kind, so 200k flows (1.6M packets) take seconds.

apispy replays it end to end with the transaction log off and a config file raising `[flows] max_flows` above
`--flows` (the default, 100,000, would evict flows and so cap memory instead of measuring it). The run is timed
and its memory measured as in scaling.py (see captures.py): the peak RSS of the apispy process, and the peak
VmRSS sum of its process tree sampled every 50 ms, which is what counts with `--apispy-args "--workers N"`.
The transactions it reports (the `transactions=` counter of its stderr summary) must equal `--flows`, and its
`evictions=` and `timeouts=` counters must be 0, or the flows were not all open together; either is printed as
a WARNING.

A warm-up run on a small capture of the same shape fills numba's on-disk cache first; its time and memory are
reported apart, and the memory per flow is the difference between the two peaks divided by the flows.

    python bench/flows_memory.py [--flows 200000] [--span 20] [--keep FILE] [--apispy-args "--workers 2"]
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

from captures import MB, MeasuredRun, pcap_global_header, run_measured  # noqa: E402
from replay_vs_tshark import BenchError, find_apispy, raise_on_sigterm  # noqa: E402

DEFAULT_FLOWS = 200_000
DEFAULT_SPAN_S = 20.0
RESPONSE_SPAN_S = 5.0
CLOSE_SPAN_S = 5.0
IDLE_TIMEOUT_S = 120.0
MAX_FLOWS_HEADROOM = 1.25
WARMUP_FLOWS = 100
MEMORY_GOAL_BYTES = 1_000 * MB
START_US = 1_800_000_000 * 1_000_000

SERVER_IP = (10 << 24) | 1
SERVER_PORT = 80
CLIENT_NETWORK = (10 << 24) | (1 << 16)
PORTS_PER_CLIENT = 100
FIRST_CLIENT_PORT = 20_000
CLIENT_MAC = bytes.fromhex("020000000001")
SERVER_MAC = bytes.fromhex("020000000002")

RECORD_HEADER_LEN = 16
ETHERNET_LEN = 14
IPV4_LEN = 20
TCP_LEN = 20
HEADERS_LEN = ETHERNET_LEN + IPV4_LEN + TCP_LEN
IP_PROTO_TCP = 6
TTL = 64
WINDOW = 65535
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


@dataclass(frozen=True)
class Flows:
    """Per-flow columns: addresses, ports, initial sequence numbers and the request of each flow."""

    client_ip: np.ndarray
    client_port: np.ndarray
    client_isn: np.ndarray
    server_isn: np.ndarray
    requests: np.ndarray

    @property
    def count(self) -> int:
        return len(self.client_ip)


def request_payloads(count: int) -> np.ndarray:
    """One request per flow, all the same length: the item number is zero-padded to the widest one."""
    width = len(str(max(count - 1, 0)))
    template = np.frombuffer(f"GET /items/{'0' * width} HTTP/1.1\r\nHost: api\r\n\r\n".encode(), np.uint8)
    payloads = np.tile(template, (count, 1))
    first_digit = len("GET /items/")
    numbers = np.arange(count, dtype=np.int64)
    for digit in range(width):
        payloads[:, first_digit + digit] = ord("0") + numbers // 10 ** (width - 1 - digit) % 10
    return payloads


def make_flows(count: int) -> Flows:
    """Distinct 4-tuples: 100 source ports per client address; sequence numbers scattered over the 32-bit space."""
    index = np.arange(count, dtype=np.int64)
    return Flows(
        client_ip=CLIENT_NETWORK + 1 + index // PORTS_PER_CLIENT,
        client_port=FIRST_CLIENT_PORT + index % PORTS_PER_CLIENT,
        client_isn=(index * 2_654_435_761 + 12_345) % (1 << 32),
        server_isn=(index * 40_503 * 65_537 + 777) % (1 << 32),
        requests=request_payloads(count),
    )


def put(columns: np.ndarray, offset: int, values: np.ndarray | int, width: int, order: str = ">") -> None:
    """Writes integers of `width` bytes into the same columns of every row."""
    values = np.broadcast_to(np.asarray(values, dtype=np.int64), (len(columns),))
    columns[:, offset : offset + width] = values.astype(f"{order}u{width}").view(np.uint8).reshape(-1, width)


def ones_complement_sum(columns: np.ndarray) -> np.ndarray:
    """Per row, the 16-bit ones' complement sum of the columns (an even number of them), not yet inverted."""
    total = np.ascontiguousarray(columns).view(">u2").astype(np.int64).sum(axis=1)
    while (total >> 16).any():
        total = (total & 0xFFFF) + (total >> 16)
    return total


def fill_checksums(frames: np.ndarray, tcp_length: int) -> None:
    """IPv4 header and TCP checksums, the TCP one over the pseudo-header, header and payload."""
    ip_start, tcp_start = ETHERNET_LEN, ETHERNET_LEN + IPV4_LEN
    put(frames, ip_start + 10, 0xFFFF - ones_complement_sum(frames[:, ip_start:tcp_start]), 2)
    segment = frames[:, tcp_start:]
    if tcp_length % 2:
        segment = np.hstack([segment, np.zeros((len(frames), 1), np.uint8)])
    pseudo = ones_complement_sum(frames[:, ip_start + 12 : ip_start + 20]) + IP_PROTO_TCP + tcp_length
    total = pseudo + ones_complement_sum(segment)
    while (total >> 16).any():
        total = (total & 0xFFFF) + (total >> 16)
    put(frames, tcp_start + 16, 0xFFFF - total, 2)


def fill_headers(frames: np.ndarray, flows: Flows, from_client: bool, flags: int, seq: np.ndarray,
                 ack: np.ndarray | int, payload_len: int) -> None:
    """Ethernet, IPv4 (don't fragment, no options) and TCP (no options) headers, checksums left at 0."""
    client, server = (flows.client_ip, flows.client_port), (SERVER_IP, SERVER_PORT)
    (source, source_port), (destination, destination_port) = (client, server) if from_client else (server, client)
    source_mac, destination_mac = (CLIENT_MAC, SERVER_MAC) if from_client else (SERVER_MAC, CLIENT_MAC)
    frames[:, :ETHERNET_LEN] = np.frombuffer(destination_mac + source_mac + b"\x08\x00", np.uint8)
    ip, tcp = ETHERNET_LEN, ETHERNET_LEN + IPV4_LEN
    put(frames, ip, 0x4500, 2)
    put(frames, ip + 2, IPV4_LEN + TCP_LEN + payload_len, 2)
    put(frames, ip + 6, 0x4000, 2)
    put(frames, ip + 8, (TTL << 8) | IP_PROTO_TCP, 2)
    put(frames, ip + 12, source, 4)
    put(frames, ip + 16, destination, 4)
    put(frames, tcp, source_port, 2)
    put(frames, tcp + 2, destination_port, 2)
    put(frames, tcp + 4, seq % (1 << 32), 4)
    put(frames, tcp + 8, ack % (1 << 32) if flags & ACK else 0, 4)
    put(frames, tcp + 12, (5 << 12) | flags, 2)
    put(frames, tcp + 14, WINDOW, 2)


def segments(
    flows: Flows, from_client: bool, flags: int, seq: np.ndarray, ack: np.ndarray | int, payload: np.ndarray,
    ts_us: np.ndarray,
) -> np.ndarray:
    """One pcap record per flow (record header, Ethernet, IPv4, TCP, payload), as rows of a uint8 array."""
    count, payload_len = payload.shape
    frame_len = HEADERS_LEN + payload_len
    records = np.zeros((count, RECORD_HEADER_LEN + frame_len), np.uint8)
    put(records, 0, ts_us // 1_000_000, 4, "<")
    put(records, 4, ts_us % 1_000_000, 4, "<")
    put(records, 8, frame_len, 4, "<")
    put(records, 12, frame_len, 4, "<")
    frames = records[:, RECORD_HEADER_LEN:]
    fill_headers(frames, flows, from_client, flags, seq, ack, payload_len)
    frames[:, HEADERS_LEN:] = payload
    fill_checksums(frames, TCP_LEN + payload_len)
    return records


def spread(count: int, start_us: int, span_s: float) -> np.ndarray:
    """`count` increasing timestamps in microseconds from start_us over span_s seconds."""
    return start_us + np.arange(count, dtype=np.int64) * int(span_s * 1_000_000) // max(count, 1)


def open_phase(flows: Flows, span_s: float) -> np.ndarray:
    """Handshake and request of every flow, flow after flow: each row is SYN, SYN-ACK, ACK, request."""
    ts = spread(4 * flows.count, START_US, span_s).reshape(-1, 4)
    none = np.zeros((flows.count, 0), np.uint8)
    client_next, server_next = flows.client_isn + 1, flows.server_isn + 1
    return np.hstack([
        segments(flows, True, SYN, flows.client_isn, 0, none, ts[:, 0]),
        segments(flows, False, SYN | ACK, flows.server_isn, client_next, none, ts[:, 1]),
        segments(flows, True, ACK, client_next, server_next, none, ts[:, 2]),
        segments(flows, True, PSH | ACK, client_next, server_next, flows.requests, ts[:, 3]),
    ])


def response_phase(flows: Flows, start_us: int) -> np.ndarray:
    ts = spread(flows.count, start_us, RESPONSE_SPAN_S)
    payload = np.tile(np.frombuffer(RESPONSE, np.uint8), (flows.count, 1))
    client_next = flows.client_isn + 1 + flows.requests.shape[1]
    return segments(flows, False, PSH | ACK, flows.server_isn + 1, client_next, payload, ts)


def close_phase(flows: Flows, start_us: int) -> np.ndarray:
    """Each row: the client's FIN, the server's FIN, the client's last ACK."""
    ts = spread(3 * flows.count, start_us, CLOSE_SPAN_S).reshape(-1, 3)
    none = np.zeros((flows.count, 0), np.uint8)
    client_fin = flows.client_isn + 1 + flows.requests.shape[1]
    server_fin = flows.server_isn + 1 + len(RESPONSE)
    return np.hstack([
        segments(flows, True, FIN | ACK, client_fin, server_fin, none, ts[:, 0]),
        segments(flows, False, FIN | ACK, server_fin, client_fin + 1, none, ts[:, 1]),
        segments(flows, True, ACK, client_fin + 1, server_fin + 1, none, ts[:, 2]),
    ])


def write_flows_capture(path: Path, flow_count: int, span_s: float) -> int:
    """Writes the capture phase by phase (one phase in memory at a time); returns its packet count."""
    flows = make_flows(flow_count)
    responses_start = START_US + int(span_s * 1_000_000)
    with path.open("wb") as file:
        file.write(pcap_global_header())
        open_phase(flows, span_s).tofile(file)
        response_phase(flows, responses_start).tofile(file)
        close_phase(flows, responses_start + int(RESPONSE_SPAN_S * 1_000_000)).tofile(file)
    return 8 * flow_count


def apispy_command(apispy: str, config: Path, extra: list[str], capture: Path) -> list[str]:
    """Transaction log off; the summary stays on for its counters (`--quiet` would only skip printing it)."""
    return [apispy, "replay", "--config", str(config), *extra, str(capture)]


def check_run(run: MeasuredRun, flows: int) -> list[str]:
    """Warnings when apispy did not see every flow open at once or did not report every transaction."""
    warnings = []
    transactions = run.counter("transactions")
    if transactions is None:
        warnings.append("apispy printed no transactions= counter (is --quiet among --apispy-args?)")
    elif transactions != flows:
        warnings.append(f"apispy reported {transactions:,} transactions, expected {flows:,}")
    for name in ("evictions", "timeouts"):
        value = run.counter(name)
        if value:
            warnings.append(f"apispy counted {value:,} {name}: the flows were not all open at the same time")
    warnings.extend(line.strip() for line in run.stderr.splitlines() if "warning" in line)
    return warnings


def print_report(flows: int, packets: int, generate_s: float, warmup: MeasuredRun, run: MeasuredRun,
                 max_flows: int, extra: list[str]) -> None:
    print(f"capture: {flows:,} concurrent flows, {packets:,} packets, generated in {generate_s:.1f} s; "
          f"config [flows] max_flows = {max_flows:,}; apispy args: {extra or '-'}")
    print(f"apispy warm-up ({WARMUP_FLOWS} flows; numba cache): {warmup.seconds:.2f} s, "
          f"peak RSS {warmup.peak_rss_tree / MB:,.0f} MB")
    print()
    print(f"{'flows':>10}{'packets':>12}{'transactions':>14}{'seconds':>10}{'cpu s':>9}{'packets/s':>12}"
          f"{'RSS main MB':>13}{'RSS tree MB':>13}{'bytes/flow':>12}")
    transactions = run.counter("transactions")
    peak = run.peak_rss_tree
    per_flow = (peak - warmup.peak_rss_tree) / flows
    print(f"{flows:>10,}{packets:>12,}{'?' if transactions is None else f'{transactions:,}':>14}"
          f"{run.seconds:>10.2f}{run.cpu_seconds:>9.2f}{packets / run.seconds:>12,.0f}{run.peak_rss_main / MB:>13,.0f}"
          f"{run.peak_rss_tree / MB:>13,.0f}{per_flow:>12,.0f}")
    for warning in check_run(run, flows):
        print(f"WARNING: {warning}")
    verdict = "met" if peak < MEMORY_GOAL_BYTES else "NOT MET"
    print(f"memory goal (< 1 GB with {flows:,} open flows): {verdict} ({peak / MB:,.0f} MB)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--flows", type=int, default=DEFAULT_FLOWS, metavar="N",
                        help=f"connections open at the same time (default {DEFAULT_FLOWS:_})")
    parser.add_argument("--span", type=float, default=DEFAULT_SPAN_S, metavar="SECONDS",
                        help="packet time over which the flows open and send their requests "
                        f"(default {DEFAULT_SPAN_S:g})")
    parser.add_argument("--max-flows", type=int, metavar="N",
                        help=f"apispy's [flows] max_flows (default {MAX_FLOWS_HEADROOM:g} x --flows)")
    parser.add_argument("--keep", type=Path, metavar="FILE", help="write the generated capture here and keep it")
    parser.add_argument("--apispy", metavar="PATH", help="apispy command (default: next to this python, or on PATH)")
    parser.add_argument("--apispy-args", type=shlex.split, default=[], metavar="ARGS",
                        help='extra arguments for `apispy replay`, one string, e.g. "--workers 2"')
    args = parser.parse_args(argv)
    if args.flows <= 0:
        parser.error("--flows must be positive")
    if not 0 < args.span < IDLE_TIMEOUT_S - RESPONSE_SPAN_S:
        parser.error(f"--span must be positive and well under the {IDLE_TIMEOUT_S:g} s idle timeout")
    args.max_flows = args.max_flows or math.ceil(args.flows * MAX_FLOWS_HEADROOM)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    try:
        apispy = find_apispy(args.apispy)
        with tempfile.TemporaryDirectory(prefix="apispy-flows-") as tmp:
            workdir = Path(tmp)
            config = workdir / "flows.toml"
            config.write_text(f"[flows]\nmax_flows = {args.max_flows}\n")
            warmup_capture = workdir / "warmup.pcap"
            write_flows_capture(warmup_capture, WARMUP_FLOWS, 1.0)
            warmup = run_measured(apispy_command(apispy, config, args.apispy_args, warmup_capture))

            capture = args.keep or workdir / "flows.pcap"
            started = time.perf_counter()
            packets = write_flows_capture(capture, args.flows, args.span)
            generate_s = time.perf_counter() - started
            run = run_measured(apispy_command(apispy, config, args.apispy_args, capture))
            print_report(args.flows, packets, generate_s, warmup, run, args.max_flows, args.apispy_args)
            if args.keep:
                print(f"capture kept: {args.keep}")
    except BenchError as error:
        print(f"flows_memory: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
