"""The bundled captures in pcaps/ match pcaps/MANIFEST.md, with tshark as the oracle for the HTTP counts."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.samples import PCAPS, TSHARK_UNREADABLE, manifest_rows

MAX_CAPTURE_BYTES = 1_000_000
CAPTURE_SUFFIXES = (".pcap", ".pcapng")


ROWS = manifest_rows()
TSHARK_ROWS = [name for name, row in ROWS.items() if row["tshark requests"] != TSHARK_UNREADABLE]


def capture_files() -> list[str]:
    return sorted(path.name for path in PCAPS.iterdir() if path.name.endswith(CAPTURE_SUFFIXES))


def test_manifest_lists_every_capture_and_only_those() -> None:
    assert sorted(ROWS) == capture_files()


@pytest.mark.parametrize("name", capture_files())
def test_capture_is_under_one_megabyte(name: str) -> None:
    assert (PCAPS / name).stat().st_size < MAX_CAPTURE_BYTES


def test_edge_case_script_rebuilds_identical_files(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(PCAPS / "make_edge_cases.py"), str(tmp_path)], check=True,
                   capture_output=True)
    rebuilt = sorted(path.name for path in tmp_path.iterdir())
    assert rebuilt == [name for name in capture_files() if name.startswith("edge_")]
    for name in rebuilt:
        assert (tmp_path / name).read_bytes() == (PCAPS / name).read_bytes(), name


def tshark_counts(name: str) -> tuple[int, int, int]:
    """(frames, requests, responses) tshark reads in the capture: the occurrences of http.request.method and of
    http.response.code, in one tshark (each starts in half a second)."""
    options = shlex.split(ROWS[name]["tshark options"])
    output = subprocess.run(
        ["tshark", "-n", "-r", str(PCAPS / name), *options, "-T", "fields", "-e", "frame.number",
         "-e", "http.request.method", "-e", "http.response.code", "-E", "occurrence=a", "-E", "separator=\t"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    frames = requests = responses = 0
    for line in output.splitlines():
        _, methods, codes = line.split("\t")
        frames += 1
        requests += len(methods.split(",")) if methods else 0
        responses += len(codes.split(",")) if codes else 0
    return frames, requests, responses


@pytest.mark.skipif(shutil.which("tshark") is None,
                    reason="tshark (Wireshark's CLI, Debian package tshark) is the oracle for these counts")
@pytest.mark.parametrize("name", TSHARK_ROWS)
def test_tshark_sees_the_manifest_counts(name: str) -> None:
    row = ROWS[name]
    assert tshark_counts(name) == (int(row["packets"]), int(row["tshark requests"]), int(row["tshark responses"]))
