"""The plain-Python body of a numba kernel, whether or not numba compiles.

With NUMBA_DISABLE_JIT=1 a decorated kernel is the Python function itself and has no `py_func`; the reference
tests must still run (and then compare the function with itself, which is what that setting asks for).
"""

from __future__ import annotations

from typing import Any


def python_body(kernel: Any) -> Any:
    """The function numba compiles from, or the kernel itself when numba does not compile."""
    return getattr(kernel, "py_func", kernel)
