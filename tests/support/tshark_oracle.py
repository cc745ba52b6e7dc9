"""tshark as the oracle: the (client, method, uri) and (client, status) multisets it finds in a capture.

`-E occurrence=a` prints every message of a frame that holds several (pipelined requests), comma-separated.
Interim 1xx answers (all but 101 Switching Protocols) are left out, as in expected.tsv.
"""

from __future__ import annotations

import csv
import shlex
import shutil
import subprocess
from collections import Counter
from pathlib import Path

PUBLIC = Path(__file__).resolve().parents[2] / ".." / "shared" / "pcaps-public"
EXPECTED = PUBLIC / "expected.tsv"


def tshark_available() -> bool:
    return shutil.which("tshark") is not None


def expected_rows() -> list[dict[str, str]]:
    with open(EXPECTED, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def options_of(cell: str) -> list[str]:
    """A table cell of tshark options (`-d tcp.port==8080,http -o ...`) as an argument list."""
    return shlex.split(cell)


def _fields(path: Path, display_filter: str, fields: list[str], options: list[str]) -> list[list[str]]:
    command = ["tshark", "-n", "-r", str(path), *options, "-Y", display_filter, "-T", "fields"]
    command += ["-E", "occurrence=a", "-E", "separator=\t", "-E", "aggregator=\x1f"]
    for field in fields:
        command += ["-e", field]
    output = subprocess.run(command, capture_output=True, check=True, text=True, errors="surrogateescape").stdout
    return [line.split("\t") for line in output.splitlines() if line]


def tshark_messages(path: Path, options: list[str] = ()) -> tuple[Counter, Counter]:
    """(Counter of (client ip, method, uri), Counter of (client ip, status)) as tshark decodes the capture. One
    tshark for both (each frame says whether it holds requests, responses or both): a tshark starts in half a
    second, and the differential tests run one per capture."""
    requests: Counter = Counter()
    responses: Counter = Counter()
    fields = ["http.request", "http.response", "ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "http.request.method",
              "http.request.uri", "http.response.code"]  # fmt: skip
    for is_request, is_response, src4, src6, dst4, dst6, methods, uris, codes in _fields(
        path, "http.request || http.response", fields, list(options)
    ):
        if is_request:
            client = src4 or src6
            for method, uri in zip(methods.split("\x1f"), uris.split("\x1f"), strict=False):
                requests[(client, method, uri)] += 1
        if is_response:
            client = dst4 or dst6
            for code in codes.split("\x1f"):
                # 101 is the final answer to an Upgrade; 100, 102 and 103 are interim.
                if code and (int(code) >= 200 or int(code) == 101):
                    responses[(client, int(code))] += 1
    return requests, responses


def apispy_messages(transactions: list[dict]) -> tuple[Counter, Counter]:
    requests: Counter = Counter()
    responses: Counter = Counter()
    for transaction in transactions:
        if transaction["method"]:
            requests[(transaction["src_ip"], transaction["method"], transaction["uri"])] += 1
        if transaction["status"] is not None:
            responses[(transaction["src_ip"], transaction["status"])] += 1
    return requests, responses


def matched(ours: Counter, theirs: Counter) -> int:
    """How many of tshark's messages apispy also found (multiset intersection)."""
    return sum((ours & theirs).values())
