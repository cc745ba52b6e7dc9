"""Loads every compiled kernel before live capture starts, by running one synthetic exchange through a
throwaway pipeline with the detectors on (the ring's own kernel: sniffer.capture.live.load_ring_kernel).

Two reasons: the first real packets are not delayed by loading numba's cache (on a first run after installing:
by compiling, seconds in which a receive ring overflows) or building the Hyperscan database, and everything the
process needs from disk is read while it still runs as the user who started it (`--user` drops to an account
that may not read the Python installation's lazily imported modules). A kernel is compiled for the types of its
arguments, so the warm-up passes it what a capture does (tests/sniffer/capture/test_live.py checks that no kernel
is compiled once capture has started).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from sniffer.alerting import AlertOutputs
from sniffer.batch import PacketBatch
from sniffer.config import Config
from sniffer.decode.link import LINKTYPE_ETHERNET

CLIENT, SERVER = ("10.255.0.1", 40000), ("10.255.0.2", 80)
# Given, not looked up: scapy would look for a route to each address (and warn where there is none).
MACS = {CLIENT: "02:00:00:00:00:01", SERVER: "02:00:00:00:00:02"}
REQUEST_BODY, RESPONSE_BODY = b'{"a": "b c"}', b'{"ok": "yes 42"}'
REQUEST = (b"POST /warm/1 HTTP/1.1\r\nHost: warm\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(REQUEST_BODY), REQUEST_BODY))
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(RESPONSE_BODY), RESPONSE_BODY))


def _frames() -> list[bytes]:
    def segment(source, destination, flags, seq, ack, payload=b""):
        packet = Ether(src=MACS[source], dst=MACS[destination]) / IP(src=source[0], dst=destination[0]) / TCP(
            sport=source[1], dport=destination[1], flags=flags, seq=seq, ack=ack) / payload
        return bytes(packet)

    return [
        segment(CLIENT, SERVER, "S", 100, 0),
        segment(SERVER, CLIENT, "SA", 500, 101),
        segment(CLIENT, SERVER, "PA", 101, 501, REQUEST),
        segment(SERVER, CLIENT, "PA", 501, 101 + len(REQUEST), RESPONSE),
        segment(CLIENT, SERVER, "FA", 101 + len(REQUEST), 501 + len(RESPONSE)),
        segment(SERVER, CLIENT, "FA", 501 + len(RESPONSE), 102 + len(REQUEST)),
    ]


def warm_up(config: Config) -> int:
    """Runs the synthetic exchange; returns how many transactions came out (one, when everything works).

    The rate detector runs with its limits at their lowest, so that its alerts are raised and the kernels behind
    them run too (kernels are typed by their arguments, not by the limits). The frames are writable, as a live
    capture's are: numba compiles a kernel apart for read-only arrays."""
    from sniffer.replay import Run

    config = _rate_alerts_raised(config)
    frames = _frames()
    lengths = np.array([len(frame) for frame in frames], np.int32)
    batch = PacketBatch(
        frames=np.frombuffer(bytearray(b"".join(frames)), np.uint8),
        frame_offsets=np.concatenate([[0], np.cumsum(lengths[:-1])]).astype(np.int64),
        captured_lengths=lengths,
        wire_lengths=lengths.copy(),
        ts_ns=np.arange(len(frames), dtype=np.int64) * 1_000_000 + 1_000_000_000_000_000_000,
        link_types=np.full(len(frames), LINKTYPE_ETHERNET, np.int32),
    )
    transactions = []
    run = Run(config, transactions.append, alerting=AlertOutputs(config, None, None))
    run.feed(batch)
    run.finish([])
    return len(transactions)


def _rate_alerts_raised(config: Config) -> Config:
    rate = replace(
        config.detectors.rate, client_limit=1, client_endpoint_limit=1, min_population=1, population_floor=0,
        auth_failure_limit=1, failed_login_limit=1, enumeration_distinct_limit=1,
    )  # fmt: skip
    return replace(config, detectors=replace(config.detectors, enabled=True, rate=rate))
