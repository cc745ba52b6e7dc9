"""Bad input is counted and skipped, never fatal: arbitrary bytes into the HTTP parsers, damaged captures into
the whole pipeline (with detectors on)."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.samples import PCAPS
from support.tshark_oracle import PUBLIC

from detectors.engine import DetectionEngine, default_detectors
from parsers.correlate import TransactionCorrelator
from parsers.http1 import Http1DirectionParser, ParserLimits
from parsers.messages import ROLE_REQUESTS, ROLE_RESPONSES, ROLE_UNKNOWN, MessageSink
from sniffer.capture.pcapfile import CaptureError, open_capture
from sniffer.config import load_config
from sniffer.replay import Run

HTTPISH = st.sampled_from(
    [
        b"GET / HTTP/1.1\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"Content-Length: 5\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
        b"Host: x\r\n",
        b"Upgrade: websocket\r\n",
        b"HTTP/1.1 101 S\r\n",
        b"CONNECT a:1 HTTP/1.1\r\n",
        b"HEAD / HTTP/1.0\r\n",
        b"HTTP/1.1 100 Continue\r\n",
        b"\x16\x03\x01",
        b"GET /x\r\n",
    ]
)
CHUNKS = st.lists(st.one_of(HTTPISH, st.binary(max_size=40)), max_size=30)


class Sink(MessageSink):
    def __init__(self) -> None:
        self.correlator = TransactionCorrelator(lambda exchange: None, lambda switched: None)

    def on_head(self, role, head):
        self.correlator.on_head(role, head)

    def on_interim(self, head):
        self.correlator.on_interim(head)

    def on_end(self, role, end):
        self.correlator.on_end(role, end)

    def on_role(self, role):
        pass

    def on_verdict(self, looks_like_http):
        pass

    def response_context(self):
        return self.correlator.response_context()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    role=st.sampled_from([ROLE_REQUESTS, ROLE_RESPONSES, ROLE_UNKNOWN]),
    start=st.booleans(),
    chunks=CHUNKS,
    gaps=st.lists(st.integers(0, 30), max_size=3),
)
def test_parser_survives_any_bytes_gaps_and_fin(role, start, chunks, gaps) -> None:
    parser = Http1DirectionParser(role, Sink(), ParserLimits(max_header_bytes=256), start)
    for index, chunk in enumerate(chunks):
        parser.feed(index, chunk)
        if index < len(gaps):
            parser.gap(gaps[index] + 1)
    parser.fin()
    parser.feed(99, b"GET / HTTP/1.1\r\n\r\n")


def damaged(data: bytes, seed: int) -> bytes:
    generator = random.Random(seed)
    data = bytearray(data)
    for _ in range(max(1, len(data) // 200)):
        data[generator.randrange(24, len(data))] = generator.randrange(256)
    return bytes(data[: generator.randrange(len(data) // 2, len(data) + 1)])


def test_damaged_captures_never_crash_the_pipeline(tmp_path) -> None:
    config = load_config()
    sources = sorted(PUBLIC.glob("*.pcap*")) + sorted(PCAPS.glob("api_*.pcap")) + sorted(PCAPS.glob("attacks_*.pcap"))
    runs = 0
    for seed, source in enumerate(sources):
        path = tmp_path / f"damaged{seed}{source.suffix}"
        path.write_bytes(damaged(source.read_bytes(), seed))
        try:
            reader = open_capture(str(path))
        except CaptureError:
            continue
        engine = DetectionEngine(default_detectors(config.detectors), config.detectors, lambda alert: None)
        run = Run(config, engine.observe)
        for batch in reader.batches():
            run.feed(batch)
        run.finish(reader.warnings)
        engine.finish()
        runs += 1
    assert runs >= 40
