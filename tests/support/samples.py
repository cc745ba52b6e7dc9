"""The bundled captures of pcaps/ and their manifest, and a quick way to replay any capture in-process."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sniffer.capture.pcapfile import open_capture
from sniffer.config import Config, load_config
from sniffer.replay import ReplayResult, replay

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / "pcaps"
MANIFEST = PCAPS / "MANIFEST.md"
TSHARK_UNREADABLE = "—"
# Samples that exercise every stage at once: attacks (every detector and deduplication), many connections,
# fragments, pipelining, mid-stream pick-up, gaps.
EVERY_STAGE_SAMPLES = [
    "api_python_curl.pcap",
    "api_nginx_wrk.pcap",
    "attacks_bruteforce_injection.pcap",
    "attacks_enum_shadow.pcap",
    "attacks_payload.pcap",
    "attacks_rate_abuse.pcap",
    "edge_ipv4_fragments.pcap",
    "edge_pipelined.pcap",
    "edge_midstream.pcap",
    "edge_gap_body.pcap",
]


def manifest_rows() -> dict[str, dict[str, str]]:
    """The manifest's table, keyed by file name; cells have their backticks stripped."""
    lines = [line for line in MANIFEST.read_text().splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        row = dict(zip(header, cells, strict=True))
        rows[row["file"]] = row
    return rows


def run_replay(*paths: Path | str, config: Config | None = None) -> tuple[list[dict], ReplayResult]:
    """Replays captures through the library; returns the transaction records and the result."""
    records: list[dict] = []
    result = replay([open_capture(str(path)) for path in paths], config or load_config(),
                    lambda transaction: records.append(transaction.to_record()))
    return records, result


def exchanges(records: list[dict]) -> list[tuple]:
    return [(record["method"], record["uri"], record["status"]) for record in records]


def replay_outputs(command: list[str], out: Path, captures: list[str], **run: object) -> dict[str, bytes]:
    """Runs `command` (apispy up to and including `replay` and any options of its own) over `captures` with every
    output on, written into `out`; returns each output file's bytes. `run`: more arguments of subprocess.run."""
    out.mkdir()
    paths = {name: out / name for name in ("transactions.jsonl", "alerts.jsonl", "points.lp", "inventory.yaml")}
    result = subprocess.run(
        [*command, "--quiet", "--interval", "1", "--transactions", str(paths["transactions.jsonl"]),
         "--alerts", str(paths["alerts.jsonl"]), "--line-protocol", str(paths["points.lp"]),
         "--inventory", str(paths["inventory.yaml"]), *captures],
        capture_output=True, text=True, timeout=300, **run,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {name: path.read_bytes() for name, path in paths.items()}
