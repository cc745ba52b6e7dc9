"""numba kernels that run from an ahead-of-time compiled module where the build made one, so numba is not loaded.

A replay's start-up was about one second on this VM, half of it or more numba's: importing it (0.4 s), loading
its typing and lowering registries (0.25 s) and each kernel's on-disk cache. That is a tenth or more of a replay
of the bench's 300k packets, and most of a small capture's. The compiled build (setup.py, sniffer/aotbuild.py) therefore
compiles every kernel that Python calls, for the argument types apispy passes it, into one extension module with
numba's pycc; it needs only numpy at run time.

`kernel` wraps a kernel's Python function. A call runs the ahead-of-time form when:
- the module was built from these very sources (a digest of every kernel module, compared once per process: an
  edited kernel falls back to numba rather than running stale code),
- and every argument has the type it was compiled for (dtype, dimensions, C order; writable unless declared
  `readonly`). A compiled function trusts its arguments: an int32 array where it expects int64 would read past
  the end. The types declared are those apispy's own calls pass (a replay's frames are read-only, the rest are
  arrays it made), so a build finds them in numba's cache where runs have already jitted them.
Otherwise the call goes to numba's jit (`njit(cache=True)`), loaded then, as before. `NUMBA_DISABLE_JIT=1` (the
reference runs) and `APISPY_AOT=0` never use the compiled module.

Kernels that only other kernels call (no `arguments`) are jitted as numba dispatchers when a kernel that calls
them is, which numba needs to compile the call: the caller's globals then name the dispatcher.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Every module that defines kernels, in import order; the compiled module holds their kernels and the digest of
# their sources (tests/sniffer/test_aot.py checks the list is complete).
KERNEL_MODULES = (
    "sniffer.capture.kernels", "sniffer.capture.ring", "sniffer.decode.decoder", "sniffer.shardsplit",
    "parsers.headparse", "detectors.batchkeys", "detectors.ids", "detectors.jsonkeys", "detectors.kernels",
    "detectors.windows",
)  # fmt: skip
COMPILED_MODULE = "sniffer._aot_kernels"
DIGEST_FUNCTION = "source_digest"

_SCALARS: dict[str, tuple[type, ...]] = {
    "i8": (int, np.integer),  # a bool is an int too: numba would type it apart, with the same results
    "f8": (float, int, np.floating, np.integer),
    "b1": (bool, np.bool_),
}
_ARRAY = re.compile(r"(readonly )?(u1|u2|u4|u8|i1|i2|i4|i8|f4|f8|b1)\[(?::, ?)*(?::|::1)\]")


class ArgumentType:
    """One argument's type as the compiled module expects it: a numpy array (dtype, dimensions, C order; writable
    unless `readonly`) or a scalar ("i8", "f8", "b1")."""

    __slots__ = ("spec", "dtype", "ndim", "contiguous", "readonly", "scalar_kinds")

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.scalar_kinds = _SCALARS.get(spec)
        self.dtype: np.dtype | None = None
        self.ndim = self.contiguous = self.readonly = 0
        if self.scalar_kinds is not None:
            return
        match = _ARRAY.fullmatch(spec)
        if match is None:
            raise ValueError(f"not a kernel argument type: {spec!r}")
        self.readonly = match[1] is not None
        self.dtype = np.dtype(match[2].replace("b1", "?"))
        self.ndim = spec.count(":") - spec.count("::")
        self.contiguous = spec.endswith("::1]")

    def accepts(self, value: Any) -> bool:
        if self.scalar_kinds is not None:
            return isinstance(value, self.scalar_kinds)
        if type(value) is not np.ndarray or value.dtype != self.dtype or value.ndim != self.ndim:
            return False
        flags = value.flags
        return flags.aligned and (flags.c_contiguous or not self.contiguous) and (flags.writeable or self.readonly)


class Kernel:
    """A numba kernel (see module doc). `py_func` is its Python body, as on a numba dispatcher."""

    def __init__(self, py_func: Callable, arguments: tuple[str, ...] | None, inline: bool) -> None:
        self.py_func = py_func
        self.__name__ = py_func.__name__
        self.__qualname__ = py_func.__qualname__
        self.__module__ = py_func.__module__
        self.__doc__ = py_func.__doc__
        self.__wrapped__ = py_func
        self.arguments = None if arguments is None else tuple(ArgumentType(spec) for spec in arguments)
        self.inline = inline
        self._compiled: Callable | None = None
        self._resolved = False
        self._dispatcher: Any = None

    @property
    def export_name(self) -> str:
        """The kernel's name in the compiled module."""
        return f"{self.__module__.replace('.', '_')}__{self.__name__}"

    def __call__(self, *args: Any) -> Any:
        if not self._resolved:
            self._resolve()
        compiled = self._compiled
        if compiled is not None and len(args) == len(self.arguments):
            for value, argument in zip(args, self.arguments, strict=True):
                if not argument.accepts(value):
                    break
            else:
                return compiled(*args)
        return self.dispatcher(*args)

    def _resolve(self) -> None:
        self._resolved = True
        if self.arguments is not None:
            module = compiled_module()
            self._compiled = None if module is None else getattr(module, self.export_name, None)

    @property
    def ahead_of_time(self) -> bool:
        """Whether calls with the declared argument types run the compiled module's form."""
        if not self._resolved:
            self._resolve()
        return self._compiled is not None

    @property
    def dispatcher(self) -> Any:
        """numba's jitted kernel (loading numba), with the kernels it calls made dispatchers in its globals."""
        if self._dispatcher is None:
            from numba import njit

            _jit_callees(self.py_func)
            options = {"cache": True, **({"inline": "always"} if self.inline else {})}
            self._dispatcher = njit(**options)(self.py_func)
        return self._dispatcher


def _jit_callees(function: Callable) -> None:
    """Makes every Kernel that `function` names a numba dispatcher in its globals (numba compiles a call to a
    global only if it is one); the callees' own callees first."""
    names = set(function.__code__.co_names)
    for constant in function.__code__.co_consts:  # nested functions and comprehensions
        if hasattr(constant, "co_names"):
            names.update(constant.co_names)
    namespace = function.__globals__
    for name in names:
        value = namespace.get(name)
        if isinstance(value, Kernel):
            namespace[name] = value.dispatcher


def kernel(*arguments: str, inline: bool = False) -> Callable[[Callable], Kernel]:
    """Declares a numba kernel. `arguments`: the type of each argument Python passes, for the compiled module
    (none for a kernel only other kernels call); `inline`: numba inlines it into its callers."""

    def declare(function: Callable) -> Kernel:
        return Kernel(function, arguments or None, inline)

    return declare


def source_digest() -> int:
    """A digest of every kernel module's source, as a signed 64-bit integer (what the compiled module returns)."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for name in KERNEL_MODULES:
        digest.update(name.encode() + b"\0")
        digest.update((root / (name.replace(".", "/") + ".py")).read_bytes())
    return int.from_bytes(digest.digest()[:8], "little", signed=True)


@functools.cache
def compiled_module() -> Any:
    """The compiled module when it exists, matches these sources and may be used (see module doc); else None."""
    if os.environ.get("NUMBA_DISABLE_JIT") == "1" or os.environ.get("APISPY_AOT") == "0":
        return None
    try:
        module = importlib.import_module(COMPILED_MODULE)
    except ImportError:
        return None
    if getattr(module, DIGEST_FUNCTION)() != source_digest():
        return None
    return module
