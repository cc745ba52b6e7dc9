"""The `apispy` command's entry point: the process's settings that must come before numpy is loaded.

numpy's bundled OpenBLAS starts a thread per core at load, and those threads spin waiting for work that apispy
never gives them (it does no linear algebra): about 0.1 s of a second core's time per process, on a sensor that
has its cores for capture. One BLAS thread is asked for, unless the environment chose otherwise. This module
imports nothing that loads numpy (tests/sniffer/test_entry.py checks), so the setting is read when numpy loads.

The garbage collector's thresholds are raised here too, before the imports (sniffer.cli sets them again and
freezes what was imported): numpy's and numba's imports make hundreds of thousands of objects, none of them
garbage, and at Python's default thresholds they would be traversed in some 160 collections before the first
packet is read, against 10 at apispy's.
"""

from __future__ import annotations

import gc
import os

# Every apispy process's collector thresholds (sniffer.cli, and the workers of sniffer.sharded and
# sniffer.live_sharded): the pipeline allocates many short-lived objects per packet and makes few cycles.
GC_THRESHOLDS = (50_000, 20, 100)


def main() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    gc.set_threshold(*GC_THRESHOLDS)
    from sniffer.cli import main as cli_main

    cli_main()
