"""The compiled build (setup.py) writes exactly what plain Python writes, falls back to plain Python where it cannot
compile, and leaves a development checkout (an editable install, as the suite runs from) in plain Python."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from support.samples import EVERY_STAGE_SAMPLES, PCAPS, replay_outputs
from support.tshark_oracle import PUBLIC as PUBLIC_CAPTURES

PROJECT = Path(__file__).resolve().parent.parent
SAMPLES = [*EVERY_STAGE_SAMPLES, "edge_upgrade_connect.pcap"]


def extension_types() -> dict[str, dict[str, list[str]]]:
    """What the `.pxd` files beside the compiled modules declare: per module, each class made an extension type
    and its attributes."""
    declared: dict[str, dict[str, list[str]]] = {}
    for pxd in sorted([*PROJECT.glob("sniffer/*.pxd"), *PROJECT.glob("parsers/*.pxd")]):
        module = pxd.relative_to(PROJECT).with_suffix("").as_posix().replace("/", ".")
        classes: dict[str, list[str]] = {}
        for line in pxd.read_text().splitlines():
            if match := re.fullmatch(r"cdef class (\w+):", line):
                attributes = classes[match[1]] = []
            elif match := re.fullmatch(r" {4}cdef public object (.+)", line):
                attributes += [name.strip() for name in match[1].split(",")]
            else:
                assert not line.strip() or line.startswith("#"), f"{pxd.name}: {line!r}"
        declared[module] = classes
    return declared


def outputs_of(root: Path, out: Path, captures: list[str]) -> dict[str, bytes]:
    """Every output of one replay of `captures` with the packages found first at `root` (also its working
    directory: `python -c` looks there first)."""
    apispy = "import sys; from sniffer.cli import main; sys.argv[0] = 'apispy'; main()"
    command = [sys.executable, "-c", apispy, "replay"]
    return replay_outputs(command, out, captures, env={**os.environ, "PYTHONPATH": str(root)}, cwd=root)


def test_the_compiled_build_writes_what_plain_python_writes(tmp_path: Path) -> None:
    tree = tmp_path / "compiled"
    tree.mkdir()
    for package in ("sniffer", "parsers", "detectors"):
        shutil.copytree(PROJECT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(PROJECT / name, tree / name)
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
    build = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=900,
                           env={**os.environ, "APISPY_COMPILE": "1"})  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    compiled = {path.relative_to(tree).as_posix().split(".")[0] for path in tree.glob("*/*.so")}
    assert {"sniffer/flows", "parsers/http1", "sniffer/records", "sniffer/metrics"} <= compiled
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
    assert version.endswith("(compiled with Cython)\n")
    # The classes the .pxd files declare are extension types there: their attributes are C fields.
    declared = extension_types()
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


def test_the_suite_runs_the_plain_python_sources() -> None:
    """The suite installs apispy editable (`pip install -e`), which stays plain Python: a compiled module beside
    its source would hide every later edit of it."""
    import detectors.payload
    import parsers.http1
    import sniffer.flows

    assert all(module.__file__.endswith(".py") for module in (parsers.http1, sniffer.flows, detectors.payload))


def test_each_extension_type_declares_exactly_its_class_slots() -> None:
    """A `.pxd` class that lacks an attribute of its Python class breaks the compiled build only (setting it
    raises AttributeError there), and plain Python, which the suite runs, never reads the .pxd: the two lists
    must be the same. `__slots__` keeps plain Python to them too."""
    declared = extension_types()
    assert {"Http1DirectionParser", "Flow", "StreamReassembler", "Pipeline"} <= {
        name for classes in declared.values() for name in classes
    }
    for module, classes in declared.items():
        for name, attributes in classes.items():
            assert attributes == list(getattr(importlib.import_module(module), name).__slots__), f"{module}.{name}"
