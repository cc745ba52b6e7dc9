"""The plain-Python body of a numba kernel, whether or not numba compiles; and the files of numba's cache of them.

With NUMBA_DISABLE_JIT=1 a decorated kernel is the Python function itself and has no `py_func`; the reference
tests must still run (and then compare the function with itself, which is what that setting asks for).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]


def numba_cache_files() -> Iterator[Path]:
    """The files of numba's on-disk cache of the project's kernels (index and code, in each module's
    `__pycache__`), as the suite's runs have filled it."""
    for package in ("sniffer", "parsers", "detectors"):
        yield from (PROJECT / package).glob("**/__pycache__/*.nb[ic]")


def python_body(kernel: Any) -> Any:
    """The function numba compiles from, or the kernel itself when numba does not compile."""
    return getattr(kernel, "py_func", kernel)


# The reference run (tests/sniffer/test_kernels_reference.py) runs the kernels' tests again with NUMBA_DISABLE_JIT=1.
# Their property tests already run each kernel's Python body beside the kernel, against the same oracle, in the
# suite's own run: there they draw the full number of examples, in the reference run a sixth (at least 100).
REFERENCE_RUN = os.environ.get("NUMBA_DISABLE_JIT") == "1"


def examples(full: int) -> int:
    """How many examples a property test of a kernel draws in this run."""
    return max(100, full // 6) if REFERENCE_RUN else full
