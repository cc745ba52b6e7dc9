"""The `apispy` command's entry point: the process's settings that must come before numpy is loaded.

numpy's bundled OpenBLAS starts a thread per core at load, and those threads spin waiting for work that apispy
never gives them (it does no linear algebra): about 0.1 s of a second core's time per process, on a sensor that
has its cores for capture. One BLAS thread is asked for, unless the environment chose otherwise. This module
imports nothing that loads numpy (tests/sniffer/test_entry.py checks), so the setting is read when numpy loads.

The garbage collector is kept out of start-up and shut-down, where it finds nothing to free but costs a tenth of
a second, a few per cent of a replay of 300k packets:
- numpy's and numba's imports, and numba's first cache load (its typing and lowering registries), make hundreds
  of thousands of objects, none of them garbage. At Python's default thresholds they were traversed in some 160
  collections before the first packet was read, and still in 3 at apispy's raised ones, each some 30 ms on this
  VM. So the collector is off while the command is imported; sniffer.cli freezes what was imported (the
  collector leaves frozen objects alone) and turns it back on, and the commands load numba's registries with it
  off (`load_numba_registries`) and freeze them too.
- At exit, Python collects the whole heap once more (50 ms after a replay of 120k packets) only for the OS to
  take the memory back. What the run made is frozen when the command returns, so that last collection has
  nothing to traverse. Every output has been closed by then: nothing waits on a collection to be flushed.
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
    gc.disable()  # turned back on by the command group (sniffer.cli.main), once the imports are frozen
    from sniffer.cli import main as cli_main

    try:
        cli_main()
    finally:
        gc.freeze()


def load_numba_registries() -> None:
    """Imports numba and loads its typing and lowering registries, which its first kernel call would (some 0.3 s,
    and hundreds of thousands of objects), with the collector off, and freezes them with everything else made so
    far. Not where the kernels run from the compiled module (sniffer.aot): numba is then not loaded at all."""
    from sniffer.aot import compiled_module

    if compiled_module() is not None:
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
