"""Optional compiled build: `APISPY_COMPILE=1 pip install .` compiles apispy's pure-Python hot modules with Cython.

The sources do not change and neither do the results (tests/test_compiled.py replays the samples both ways and
compares every output byte); a replay runs about 20% faster. Without APISPY_COMPILE=1, apispy installs as plain
Python. Modules with numba kernels stay Python whatever the setting: numba compiles their bytecode.
"""

import os

from setuptools import setup

# The per-segment, per-message and per-transaction path (flows, reassembly, HTTP, records, metrics) and the
# detectors' Python around their kernels.
COMPILED_MODULES = [
    "parsers/bodies.py", "parsers/correlate.py", "parsers/detect.py", "parsers/http1.py", "parsers/lenient.py",
    "parsers/memo.py", "parsers/messages.py", "parsers/redact.py", "parsers/templating.py", "parsers/transaction.py",
    "sniffer/flows.py", "sniffer/identity.py", "sniffer/metrics.py", "sniffer/pipeline.py", "sniffer/reassembly.py",
    "sniffer/records.py", "sniffer/replay.py", "sniffer/summary.py",
    "detectors/alert.py", "detectors/dedup.py", "detectors/engine.py", "detectors/exposure.py", "detectors/payload.py",
    "detectors/rate.py", "detectors/shadow.py", "detectors/signatures.py", "detectors/slots.py",
]  # fmt: skip


def compiled_modules() -> list:
    if os.environ.get("APISPY_COMPILE") != "1":
        return []
    from Cython.Build import cythonize

    # annotation_typing off: the annotations are hints, as in Python (a list subclass passes for a list).
    directives = {"language_level": 3, "annotation_typing": False}
    return cythonize(COMPILED_MODULES, compiler_directives=directives, quiet=True, nthreads=os.cpu_count() or 1)


# The C files are compiled side by side too: on two cores, about half the time.
setup(ext_modules=compiled_modules(), options={"build_ext": {"parallel": os.cpu_count() or 1}})
