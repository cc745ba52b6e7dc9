"""The compiled build (setup.py) writes exactly what plain Python writes, falls back to plain Python where it cannot
compile, and leaves a development checkout (an editable install, as the suite runs from) in plain Python."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from support.kernels import numba_cache_files
from support.samples import EVERY_STAGE_SAMPLES, PCAPS, replay_outputs
from support.tshark_oracle import PUBLIC as PUBLIC_CAPTURES

PROJECT = Path(__file__).resolve().parent.parent
SAMPLES = [*EVERY_STAGE_SAMPLES, "edge_upgrade_connect.pcap"]


class ExtensionType(NamedTuple):
    """A class a `.pxd` file declares: its attributes (those not `public` are C fields only, not seen from Python),
    and its methods made cpdef (C calls between them), each with its parameters as declared (`name=*`: one with a
    default)."""

    attributes: list[str]
    methods: dict[str, list[str]]
    private: set[str]


def extension_types() -> dict[str, dict[str, ExtensionType]]:
    """What the `.pxd` files beside the compiled modules declare, per module and class."""
    declared: dict[str, dict[str, ExtensionType]] = {}
    for pxd in sorted([*PROJECT.glob("sniffer/*.pxd"), *PROJECT.glob("parsers/*.pxd")]):
        module = pxd.relative_to(PROJECT).with_suffix("").as_posix().replace("/", ".")
        classes: dict[str, ExtensionType] = {}
        for line in pxd.read_text().splitlines():
            if match := re.fullmatch(r"cdef class (\w+)(\(\w+\))?:", line):
                declaring = classes[match[1]] = ExtensionType([], {}, set())
            elif match := re.fullmatch(r" {4}cdef (public )?[\w\[\]:]+ (.+)", line):  # a C type, a memoryview too
                names = [name.strip() for name in match[2].split(",")]
                declaring.attributes.extend(names)
                if not match[1]:
                    declaring.private.update(names)
            elif match := re.fullmatch(r" {4}cpdef (\w+)\(self(.*)\)", line):
                # A parameter may be typed ("MessageHead head"): its name is the last word.
                declaring.methods[match[1]] = [name.split()[-1] for name in match[2].split(",") if name.strip()]
            else:  # comments, cimports, forward declarations, the types of a function's locals (a locals list may go
                # on a line more, memoryviews and C types in quotes too), module-level cpdef and cdef functions, C
                # module variables
                local = r'\w+=([\w.\[\]:]+|"[\w *]+")'  # a name and its type: "const char *" is a pointer
                assert re.fullmatch(
                    r"(( {4})?#.*|cimport cython|from [\w.]+ cimport \w+(, \w+)*|cdef class \w+"
                    r"|( {4})?@cython\.locals\(.*[,)]"
                    rf"| {{8,}}({local}, )*{local}[,)]"
                    r"|cpdef \w+\(.*\)|cdef \w+ \w+\(.*\)( except -?\d+)?|cdef \w+ \w+(, \w+)*|)",
                    line,
                ), f"{pxd.name}: {line!r}"
        declared[module] = classes
    return declared


def outputs_of(root: Path, out: Path, captures: list[str], options: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every output of one replay of `captures` with the packages found first at `root` (also its working
    directory: `python -c` looks there first), with `options` of `apispy replay`."""
    apispy = "import sys; from sniffer.cli import main; sys.argv[0] = 'apispy'; main()"
    command = [sys.executable, "-c", apispy, "replay", *options]
    return replay_outputs(command, out, captures, env={**os.environ, "PYTHONPATH": str(root)}, cwd=root)


def test_the_compiled_build_writes_what_plain_python_writes(tmp_path: Path) -> None:
    tree = tmp_path / "compiled"
    tree.mkdir()
    for package in ("sniffer", "parsers", "detectors"):
        shutil.copytree(PROJECT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(PROJECT / name, tree / name)
    copy_numba_cache(tree)
    command = [sys.executable, "setup.py", "-q", "build_ext", "--inplace", "-j", "2"]
    plain = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "APISPY_COMPILE": "0"})  # fmt: skip
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert not [*tree.glob("*/*.so"), *tree.glob("*/*.c")], "APISPY_COMPILE=0: not even translated"
    # Without a working compiler, every module stays Python and the build still succeeds, saying why.
    no_compiler = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=900,
                                 env={**os.environ, "APISPY_COMPILE": "1", "CC": "false"})  # fmt: skip
    assert no_compiler.returncode == 0, no_compiler.stderr[-2000:]
    assert not list(tree.glob("*/*.so"))
    assert 'building extension "parsers.http1" failed' in no_compiler.stderr
    assert "the numba kernels stay jitted: compiling them ahead of time failed" in no_compiler.stderr
    # Where one module does not compile, those that cimport its extension types stay Python too (they would not
    # import), and apispy runs: a compiler that fails on parsers/http1.c only. So does a module Cython cannot
    # translate (another Cython release might not take one): sniffer/summary.pxd declaring a method it lacks.
    failing_compiler = tmp_path / "cc-failing-on-http1"
    failing_compiler.write_text('#!/bin/sh\ncase "$*" in *http1.c*) exit 1;; esac\nexec cc "$@"\n')
    failing_compiler.chmod(0o755)
    summary_pxd = tree / "sniffer" / "summary.pxd"
    declarations = summary_pxd.read_text()
    declared = "    cpdef add(self, transaction)\n"
    summary_pxd.write_text(declarations.replace(declared, declared + "    cpdef not_defined(self)\n"))
    # Unoptimised (-O0 comes after Python's -O3), as what this step checks is which modules stay Python; the
    # modules it compiles stay so for the rest of the test, and the final build compiles the others as installs
    # do. That costs the suite a minute less (gcc takes some 80 s for all of them at -O3 on two cores, 14 s at -O0).
    unoptimised = f"{os.environ.get('CFLAGS', '')} -O0"
    partial = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=900,
                             env={**os.environ, "APISPY_COMPILE": "1", "CC": str(failing_compiler),
                                  "CFLAGS": unoptimised, "APISPY_AOT": "0"})  # fmt: skip
    summary_pxd.write_text(declarations)
    assert partial.returncode == 0, partial.stderr[-2000:]
    compiled = {path.relative_to(tree).as_posix().split(".")[0] for path in tree.glob("*/*.so")}
    assert {"sniffer/reassembly", "parsers/correlate", "sniffer/metrics"} <= compiled
    assert not {"parsers/http1", "sniffer/flows", "sniffer/records", "sniffer/pipeline", "sniffer/summary",
                "sniffer/replay"} & compiled  # fmt: skip
    assert "sniffer.flows stays Python: it cimports parsers.http1, which did not compile" in partial.stderr
    assert "sniffer.summary stays Python: Cython cannot translate it" in partial.stderr
    assert "sniffer.replay stays Python: it cimports sniffer.summary, which did not compile" in partial.stderr
    sample = [str(PCAPS / "api_python_curl.pcap")]
    assert outputs_of(tree, tmp_path / "partial", sample) == outputs_of(PROJECT, tmp_path / "partial-plain", sample)
    # At -O1: what is compared here is what Cython made of the sources, which gcc's level does not change (it only
    # would where the C had undefined behaviour); installs build at Python's -O3. gcc then takes some 37 s for the
    # modules on two cores, where -O3 took 80 to 110 s, and the suite must stay under ten minutes. The numba
    # kernels are compiled ahead of time meanwhile (sniffer/aot.py): some 45 s of one core, 15 s with the kernels
    # the suite has compiled by now in numba's cache.
    build = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=900,
                           env={**os.environ, "APISPY_COMPILE": "1",
                                "CFLAGS": f"{os.environ.get('CFLAGS', '')} -O1"})  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    compiled = {path.relative_to(tree).as_posix().split(".")[0] for path in tree.glob("*/*.so")}
    with_extension_types = {module.replace(".", "/") for module in extension_types()}
    assert {"sniffer/records", "parsers/headread"} | with_extension_types <= compiled
    assert not {"parsers/headparse", "detectors/kernels", "detectors/batchkeys"} & compiled  # numba stays Python
    where = "import sniffer.flows, parsers.http1; print(sniffer.flows.__file__, parsers.http1.__file__)"
    loaded = subprocess.run(
        [sys.executable, "-c", where],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree, check=True,
    ).stdout.split()  # fmt: skip
    assert all(path.startswith(str(tree)) and path.endswith(".so") for path in loaded)
    version = subprocess.run(
        [sys.executable, "-c", "import sys; from sniffer.cli import main; sys.argv[0] = 'apispy'; main()", "--version"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree, check=True,
    ).stdout  # fmt: skip
    assert version.endswith("(compiled with Cython, kernels compiled ahead of time)\n")
    # The classes the .pxd files declare are extension types there: their public attributes are C fields that
    # Python reads through descriptors (the others, C fields only, are not seen from Python).
    declared = {module: {name: [attribute for attribute in declaration.attributes
                                if attribute not in declaration.private] for name, declaration in classes.items()}
                for module, classes in extension_types().items()}  # fmt: skip
    check = "; ".join((
        "import importlib",
        f"declared = {declared!r}",
        "print(sorted({type(getattr(getattr(importlib.import_module(module), name), attribute)).__name__"
        " for module, classes in declared.items() for name, attributes in classes.items()"
        " for attribute in attributes}))",
    ))  # fmt: skip
    kinds = subprocess.run(
        [sys.executable, "-c", check],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree, check=True,
    ).stdout  # fmt: skip
    assert kinds == "['getset_descriptor']\n"

    public = PUBLIC_CAPTURES / "zeek-1000-requests-one-dropped-response.pcap"
    assert public.exists(), f"{public} is missing: the public captures sit beside the project"
    captures = [str(PCAPS / sample) for sample in SAMPLES] + [str(public)]
    plain = outputs_of(PROJECT, tmp_path / "plain", captures)
    assert plain["transactions.jsonl"].count(b"\n") > 3000 and plain["alerts.jsonl"]
    assert outputs_of(tree, tmp_path / "built", captures) == plain
    # The merge of several workers is compiled too (sniffer/sharded.py), and writes what one process writes.
    assert outputs_of(tree, tmp_path / "built-workers", captures, ("--workers", "2")) == plain
    # Past a full latency reservoir, the metrics draw which latencies to keep (sniffer.metrics._sample), compiled on
    # C doubles: the samples hold too few per series and interval for that, unless the reservoir is this small.
    small_reservoir = tmp_path / "small-reservoir.toml"
    small_reservoir.write_text("[metrics]\nmax_latency_samples = 3\n")
    options = ("--config", str(small_reservoir))
    plain = outputs_of(PROJECT, tmp_path / "plain-small-reservoir", [str(public)], options)
    assert outputs_of(tree, tmp_path / "built-small-reservoir", [str(public)], options) == plain
    check_kernels_run_compiled(tree, captures)


# Runs in the built tree: a replay, the live warm-up and the ring's kernel leave numba unloaded (every kernel they
# call ran from the compiled module); a call with another dtype than compiled for goes to numba, and is right. Nor
# does the replay, with its time series and every detector, load what start-up leaves out (numba would: it imports
# PyYAML, and its typing of arrays numpy.ma): numpy.ma, which np.unique and np.percentile import in numpy 2.4,
# PyYAML and urllib.request, which only a YAML file or a webhook needs.
KERNELS_CHECK = """
import sys
import numpy as np
from sniffer.cli import main
from sniffer.config import Config
from sniffer.warmup import warm_up
from sniffer.capture.live import LiveSettings, load_ring_kernel
from detectors.windows import window_counts
try:
    main(["replay", "--quiet", "--line-protocol", "points.lp", *sys.argv[1:]])
except SystemExit as exit:
    assert exit.code in (0, None), exit.code
print(sorted(name for name in ("numpy.ma", "yaml", "urllib.request") if name in sys.modules))
assert warm_up(Config()) == 1
load_ring_kernel(LiveSettings())
print("numba" in sys.modules)
totals = np.zeros(3, np.int64)
window_counts(np.zeros(3, np.int32), np.zeros(3, np.int64), np.ones(3, np.int64), np.zeros((1, 4), np.int64),
              np.zeros((1, 4), np.int64), totals)
print(totals.tolist(), "numba" in sys.modules)
"""


def check_kernels_run_compiled(tree: Path, captures: list[str]) -> None:
    assert list((tree / "sniffer").glob("_aot_kernels.*.so"))
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    result = subprocess.run([sys.executable, "-c", KERNELS_CHECK, *captures], capture_output=True, text=True,
                            env=environment, cwd=tree, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["[]", "False", "[1, 2, 3] True"]
    assert "latency_p99_ms=" in (tree / "points.lp").read_text()
    # A kernel module edited after the build: the compiled module is not used (it would run the old code).
    edited = tree / "detectors" / "windows.py"
    edited.write_text(edited.read_text() + "\n# edited after the build\n")
    version = subprocess.run([sys.executable, "-c", "from sniffer.cli import main; main()", "--version"],
                             capture_output=True, text=True, env=environment, cwd=tree, check=True).stdout  # fmt: skip
    assert version.endswith("(compiled with Cython)\n")


def copy_numba_cache(tree: Path) -> None:
    """numba's on-disk cache of the project's kernels, into the copy `tree`: an entry is keyed by the kernel's
    name, line and argument types and holds a digest of its module's source, all the same in the copy, so neither
    the replays of the partly compiled tree (whose kernels are jitted) nor the ahead-of-time build compile again
    what the suite's runs already compiled (the types it is built for are those runs' types). Compiling them
    afresh took the first replay some 25 s."""
    for cached in numba_cache_files():
        target = tree / cached.relative_to(PROJECT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(cached, target)


def test_the_suite_runs_the_plain_python_sources() -> None:
    """The suite installs apispy editable (`pip install -e`), which stays plain Python: a compiled module beside
    its source would hide every later edit of it."""
    import detectors.payload
    import parsers.http1
    import sniffer.flows

    assert all(module.__file__.endswith(".py") for module in (parsers.http1, sniffer.flows, detectors.payload))


def test_each_extension_type_declares_exactly_its_class_slots_and_methods() -> None:
    """A `.pxd` class that lacks an attribute of its Python class breaks the compiled build only (setting it
    raises AttributeError there), and plain Python, which the suite runs, never reads the .pxd: the two lists
    must be the same. `__slots__` keeps plain Python to them too (a dataclass's fields stand for them). A cpdef
    method is declared with the parameters of its Python definition, defaults where it has them."""
    declared = extension_types()
    assert {"Http1DirectionParser", "Flow", "StreamReassembler", "Pipeline"} <= {
        name for classes in declared.values() for name in classes
    }
    for module, classes in declared.items():
        for name, declaration in classes.items():
            python_class = getattr(importlib.import_module(module), name)
            if dataclasses.is_dataclass(python_class):  # a Cython dataclass compiled (parsers.transaction)
                attributes = [field.name for field in dataclasses.fields(python_class)]
            else:
                attributes = list(python_class.__slots__)
            assert declaration.attributes == attributes, f"{module}.{name}"
            for method, parameters in declaration.methods.items():
                signature = inspect.signature(vars(python_class)[method])
                defined = [parameter.name + ("=*" if parameter.default is not parameter.empty else "")
                           for parameter in list(signature.parameters.values())[1:]]  # fmt: skip
                assert parameters == defined, f"{module}.{name}.{method}"
