"""apispy's build: its pure-Python hot modules are compiled with Cython wherever a C compiler is at hand.

`pip install .` (and `pipx install .`) compiles them: a replay takes about 45% less time, and every output is the
same (tests/test_compiled.py replays the samples both ways and compares each byte). Where compiling fails (no compiler,
no Python headers), apispy installs as plain Python and the build says why. `APISPY_COMPILE=0` installs plain
Python. An editable install (`pip install -e .`, a development checkout) is plain Python unless
`APISPY_COMPILE=1`: compiled modules beside their sources would hide every later edit of them. Modules with numba
kernels stay Python whatever the setting: numba compiles their bytecode. A compiled build also compiles those
kernels ahead of time with numba's pycc (sniffer/aot.py), so a run does not load numba (`APISPY_AOT=0`: not).

A module's `.pxd` file, where there is one, makes the classes it names extension types when compiled: their
attributes (each class's `__slots__`) become C fields, read without a dictionary lookup, and the methods it
declares cpdef are called as C functions. That saves about a fifth of a replay's time over compiling the same
classes as ordinary ones. Plain Python never reads the `.pxd` files.
"""

import os
import re
import sys
import threading

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# The per-segment, per-message and per-transaction path: flows, reassembly, HTTP, records, metrics, and the parent's
# merge of several workers' transactions (sharded: the parent is the busier process with `--workers 2`; compiled, with
# its collector's threshold raised, its own instructions after start-up on bench_s went from about 1,360M to 1,253M,
# while timed runs of the bench capture on this VM moved by more than that from one run to the next). Not the
# detectors: their time goes to numpy, Hyperscan, their kernels and attribute reads, which compiled code does no
# faster (the detection engine over the bench capture's transactions: 0.56-0.74 s compiled, 0.56-0.66 s plain),
# while compiling them took 22 of the build's 48 s.
COMPILED_MODULES = [
    "parsers/bodies.py", "parsers/correlate.py", "parsers/detect.py", "parsers/headread.py", "parsers/http1.py",
    "parsers/lenient.py", "parsers/memo.py", "parsers/messages.py", "parsers/redact.py", "parsers/templating.py",
    "parsers/transaction.py",
    "sniffer/flows.py", "sniffer/identity.py", "sniffer/metrics.py", "sniffer/pipeline.py", "sniffer/reassembly.py",
    "sniffer/records.py", "sniffer/replay.py", "sniffer/sharded.py", "sniffer/shipping.py", "sniffer/summary.py",
]  # fmt: skip


class CompileWherePossible(build_ext):
    """Translates the modules with Cython only when they are to be compiled (not for a plain or editable
    install), on every core, and lets each one that Cython cannot translate or the compiler cannot compile
    (`optional`) stay plain Python."""

    def run(self) -> None:
        choice = os.environ.get("APISPY_COMPILE", "")
        if choice == "0" or (getattr(self, "editable_mode", False) and choice != "1"):
            self.extensions = []
            return
        try:
            from Cython.Build import cythonize
        except ImportError:
            self.warn("Cython is not installed: apispy installs as plain Python")
            self.extensions = []
            return
        cores = os.cpu_count() or 1
        # annotation_typing off: the annotations are hints, as in Python (a list subclass passes for a list).
        directives = {"language_level": 3, "annotation_typing": False}
        try:
            translated = cythonize(self.extensions, compiler_directives=directives, quiet=True, nthreads=cores)
        except Exception:  # Cython's CompileError (another Cython release, say): which modules it cannot translate
            translated = self._translate_each(cythonize, directives)
        c_sources = {extension.name: extension.sources for extension in translated}
        self.extensions = [extension for extension in self.extensions if extension.name in c_sources]
        for extension in self.extensions:  # the ones setuptools prepared, now built from C
            extension.sources = c_sources[extension.name]
            extension.optional = True  # a module that does not compile stays Python
        self.parallel = self.parallel or cores  # the C files are compiled side by side too
        # The kernels meanwhile, in a thread (numba's compile takes one core; gcc runs in processes of its own).
        kernels = threading.Thread(target=self._compile_kernels, name="numba kernels")
        kernels.start()
        try:
            super().run()
            self._keep_python_where_a_cimport_failed()
        finally:
            kernels.join()

    def _compile_kernels(self) -> None:
        """Compiles the numba kernels ahead of time into sniffer._aot_kernels (sniffer/aot.py says why). Where that
        fails, they stay kernels that numba compiles when first called, as in a plain install."""
        if os.environ.get("APISPY_AOT") == "0":
            return
        output = os.path.dirname(self.get_ext_fullpath("sniffer._aot_kernels"))
        sys.path.insert(0, os.path.abspath("."))  # the sources being built, not an installed apispy
        try:
            from sniffer.aotbuild import build

            os.makedirs(output, exist_ok=True)
            build(output)
        except Exception as error:  # noqa: BLE001  (no numba, no compiler: the build goes on, saying why)
            self.warn(f"the numba kernels stay jitted: compiling them ahead of time failed ({type(error).__name__}: "
                      f"{str(error).splitlines()[0] if str(error) else ''})")  # fmt: skip

    def _translate_each(self, cythonize, directives: dict) -> list[Extension]:
        """The modules Cython translates, one at a time: one it cannot translate stays Python (and so do those that
        cimport it, see below), instead of failing the whole install."""
        translated = []
        for extension in self.extensions:
            source = extension.name.replace(".", "/") + ".py"
            try:
                translated += cythonize([Extension(extension.name, [source])], compiler_directives=directives,
                                        quiet=True)  # fmt: skip
            except Exception as error:
                self.warn(f"{extension.name} stays Python: Cython cannot translate it ({type(error).__name__})")
        return translated

    def _keep_python_where_a_cimport_failed(self) -> None:
        """A module whose .pxd cimports another's extension type checks that type when it is imported: where the
        other stayed Python, it would not import at all, so it stays Python too."""
        built = {name for name in (extension.name for extension in self.extensions)
                 if os.path.exists(self.get_ext_fullpath(name))}  # fmt: skip
        needs = {name: cimported_modules(name) for name in built}
        while missing := {name: sorted(needs[name] - built) for name in built if needs[name] - built}:
            for name, absent in missing.items():
                os.remove(self.get_ext_fullpath(name))
                built.discard(name)
                self.warn(f"{name} stays Python: it cimports {', '.join(absent)}, which did not compile")


def cimported_modules(name: str) -> set[str]:
    """The modules of ours whose extension types the .pxd of module `name` cimports."""
    pxd = name.replace(".", "/") + ".pxd"
    if not os.path.exists(pxd):
        return set()
    with open(pxd) as declarations:
        return set(re.findall(r"^from ((?:sniffer|parsers)\.\w+) cimport", declarations.read(), re.MULTILINE))


setup(
    ext_modules=[Extension(path[:-3].replace("/", "."), [path]) for path in COMPILED_MODULES],
    cmdclass={"build_ext": CompileWherePossible},
)
