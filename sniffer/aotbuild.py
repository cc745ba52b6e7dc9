"""Builds the compiled kernel module (sniffer.aot) with numba's pycc: setup.py runs it in a compiled build.

Each kernel that declares its arguments is exported for exactly those types. Its return type is numba's own
inference, from jitting it once for them (numba's on-disk cache keeps that for the runs that fall back to it). The
module also exports the digest of the kernel modules' sources it was built from.

pycc targets a generic CPU of the build's architecture unless told otherwise (`APISPY_AOT_CPU`, a name LLVM
knows, or "host"), so a wheel built on one machine runs on another of the same architecture.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path

from sniffer.aot import COMPILED_MODULE, DIGEST_FUNCTION, KERNEL_MODULES, ArgumentType, Kernel, source_digest


def numba_type(argument: ArgumentType):  # noqa: ANN201  (a numba type: numba is imported only here)
    from numba import from_dtype, types

    if argument.scalar_kinds is not None:
        return {"i8": types.int64, "f8": types.float64, "b1": types.boolean}[argument.spec]
    layout = "C" if argument.contiguous else "A"
    return types.Array(from_dtype(argument.dtype), argument.ndim, layout, readonly=argument.readonly)


def exported_kernels() -> list[Kernel]:
    """Every kernel Python calls (one that declares its arguments), in KERNEL_MODULES' order."""
    kernels = []
    for name in KERNEL_MODULES:
        module = importlib.import_module(name)
        kernels += [
            value for value in vars(module).values()
            if isinstance(value, Kernel) and value.__module__ == name and value.arguments is not None
        ]  # fmt: skip
    return kernels


def _calling(dispatcher: object, kernel: Kernel) -> Callable:
    """A function that only calls the jitted kernel, for pycc to export: pycc types a function's body itself, apart
    from numba's dispatcher, and there the kernels it inlines fail to type (an int64 not unified with a literal);
    a call to the dispatcher compiles the body as a jitted call does, and LLVM inlines the call."""
    parameters = ", ".join(f"a{index}" for index in range(len(kernel.arguments)))
    namespace: dict = {"kernel": dispatcher}
    exec(f"def {kernel.__name__}({parameters}):\n    return kernel({parameters})\n", namespace)  # noqa: S102
    return namespace[kernel.__name__]


def build(output_dir: str | os.PathLike) -> Path:
    """Compiles the module into `output_dir`; returns its path."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pycc's pending deprecation, said on import
        from numba.pycc import CC

    cc = CC(COMPILED_MODULE.rpartition(".")[2])
    cc.output_dir = str(output_dir)
    cc.verbose = False
    cpu = os.environ.get("APISPY_AOT_CPU", "")
    if cpu:
        cc.target_cpu = cpu
    for kernel in exported_kernels():
        argument_types = tuple(numba_type(argument) for argument in kernel.arguments)
        dispatcher = kernel.dispatcher
        dispatcher.compile(argument_types)
        cc.export(kernel.export_name, dispatcher.overloads[argument_types].signature)(_calling(dispatcher, kernel))
    namespace: dict = {}
    exec(f"def {DIGEST_FUNCTION}():\n    return {source_digest()}\n", namespace)  # noqa: S102  (an int literal)
    cc.export(DIGEST_FUNCTION, "i8()")(namespace[DIGEST_FUNCTION])
    cc.compile()
    return Path(cc.output_file)
