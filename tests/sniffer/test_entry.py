"""The apispy command's entry point asks for one BLAS thread before numpy loads, and leaves a chosen count alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
CHECK = """
import os, sys
import sniffer.entry
assert "numpy" not in sys.modules, "importing the entry point loaded numpy"
sys.argv = ["apispy", "--version"]
try:
    sniffer.entry.main()
except SystemExit:
    pass
import numpy  # loaded by the command
print(os.environ["OPENBLAS_NUM_THREADS"])
"""


def run_entry(environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=environment,
                          cwd=PROJECT, timeout=120)  # fmt: skip


def test_the_command_asks_for_one_blas_thread_before_numpy_loads() -> None:
    environment = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    result = run_entry(environment)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "1"
    assert "apispy" in result.stdout.splitlines()[0]  # the version line: the command ran


def test_a_thread_count_the_environment_chose_is_kept() -> None:
    result = run_entry({**os.environ, "OPENBLAS_NUM_THREADS": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "3"


GC_CHECK = """
import gc, sys
import sniffer.entry
before = gc.get_stats()[0]["collections"]
sys.argv = ["apispy", "--version"]
try:
    sniffer.entry.main()
except SystemExit:
    pass
print(gc.get_stats()[0]["collections"] - before)
"""


def test_the_command_collects_garbage_rarely_while_it_imports() -> None:
    """numpy's and numba's imports make hundreds of thousands of objects: at Python's default thresholds they are
    traversed in some 150 collections; the entry point raises the thresholds before it imports them."""
    result = subprocess.run([sys.executable, "-c", GC_CHECK], capture_output=True, text=True, cwd=PROJECT,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.splitlines()[-1]) < 40
