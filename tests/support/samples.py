"""The bundled captures of pcaps/ and their manifest, and a quick way to replay any capture in-process."""

from __future__ import annotations

from pathlib import Path

from sniffer.capture.pcapfile import open_capture
from sniffer.config import Config, load_config
from sniffer.replay import ReplayResult, replay

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / "pcaps"
MANIFEST = PCAPS / "MANIFEST.md"
TSHARK_UNREADABLE = "—"


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
