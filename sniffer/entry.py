"""The `apispy` command's entry point: the process's settings that must come before numpy is loaded.

numpy's bundled OpenBLAS starts a thread per core at load, and those threads spin waiting for work that apispy
never gives them (it does no linear algebra): about 0.1 s of a second core's time per process, on a sensor that
has its cores for capture. One BLAS thread is asked for, unless the environment chose otherwise. This module
imports nothing that loads numpy (tests/sniffer/test_entry.py checks), so the setting is read when numpy loads.
"""

from __future__ import annotations

import os


def main() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from sniffer.cli import main as cli_main

    cli_main()
