"""The kernels' declarations for the compiled module (sniffer.aot): complete, and strict about argument types.

The compiled module itself is built and run by tests/test_compiled.py (a compiled build makes it): there every
output of the samples is compared with plain Python's, and a call it was not compiled for goes to numba."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from sniffer.aot import KERNEL_MODULES, ArgumentType, Kernel, kernel, source_digest

PROJECT = Path(__file__).resolve().parents[2]


def test_every_module_with_kernels_is_listed_and_none_imports_numba_itself() -> None:
    """The compiled module holds the kernels of KERNEL_MODULES, and its digest covers their sources: a module left
    out would run jitted, and an edit of it would not be noticed. A module that imported numba would load it in
    every run, which is what the compiled module is there to avoid."""
    declaring, importing = set(), set()
    for path in sorted([*PROJECT.glob("sniffer/**/*.py"), *PROJECT.glob("parsers/*.py"),
                        *PROJECT.glob("detectors/*.py")]):  # fmt: skip
        module = path.relative_to(PROJECT).with_suffix("").as_posix().replace("/", ".")
        source = path.read_text()
        if re.search(r"^@kernel\(", source, re.MULTILINE):
            declaring.add(module)
        if re.search(r"^(from numba|import numba)", source, re.MULTILINE):
            importing.add(module)
    assert declaring == set(KERNEL_MODULES)
    assert not importing


def test_argument_types_accept_only_what_the_kernel_was_compiled_for() -> None:
    int64s = np.zeros(4, np.int64)
    frozen = np.frombuffer(bytes(8), np.int64)
    assert ArgumentType("i8[::1]").accepts(int64s)
    assert not ArgumentType("i8[::1]").accepts(int64s.astype(np.int32))  # read past its end if compiled code took it
    assert not ArgumentType("i8[::1]").accepts(int64s[::2])  # not C order
    assert ArgumentType("i8[:]").accepts(int64s[::2])
    assert not ArgumentType("i8[::1]").accepts(int64s.reshape(2, 2))
    assert not ArgumentType("i8[::1]").accepts(frozen)  # a kernel that may write there
    assert ArgumentType("readonly i8[::1]").accepts(frozen)
    assert ArgumentType("readonly i8[::1]").accepts(int64s)
    assert not ArgumentType("i8[::1]").accepts(list(int64s))
    unaligned = np.frombuffer(bytearray(17), np.uint8)[1:].view(np.int64)
    assert not ArgumentType("i8[::1]").accepts(unaligned)
    assert ArgumentType("f8[:, ::1]").accepts(np.zeros((2, 3)))
    assert not ArgumentType("f8[:, ::1]").accepts(np.zeros((2, 3)).T)
    assert ArgumentType("f4[:, :, ::1]").accepts(np.zeros((1, 2, 3), np.float32))
    assert ArgumentType("u1[:, ::1]").ndim == 2 and ArgumentType("u1[::1]").ndim == 1
    assert ArgumentType("b1[::1]").accepts(np.zeros(2, bool))
    assert all(ArgumentType("i8").accepts(value) for value in (3, np.int64(3), np.int32(3)))
    assert not ArgumentType("i8").accepts(3.0)
    assert all(ArgumentType("f8").accepts(value) for value in (1.5, 2, np.float64(1.5)))
    assert ArgumentType("b1").accepts(True) and ArgumentType("b1").accepts(np.bool_(False))
    assert not ArgumentType("b1").accepts(1)
    for spec in ("i8[", "int64", "i8[::2]", "c16[::1]"):
        with pytest.raises(ValueError, match="not a kernel argument type"):
            ArgumentType(spec)


@kernel(inline=True)
def _twice(value):
    return 2 * value


@kernel("readonly i8[::1]", "i8[::1]")
def _doubled(values, out):
    for index in range(len(values)):
        out[index] = _twice(values[index])


def test_a_kernel_without_a_compiled_form_is_numbas() -> None:
    """Without the compiled module (this checkout is plain Python) a kernel is jitted by numba; the kernels it
    calls become dispatchers in its globals, so numba can compile the calls, and keep their Python bodies."""
    twice = _twice
    out = np.zeros(3, np.int64)
    _doubled(np.arange(3), out)
    assert out.tolist() == [0, 2, 4]
    assert not _doubled.ahead_of_time
    assert globals()["_twice"] is twice.dispatcher
    assert twice.dispatcher is twice.py_func or twice.dispatcher.py_func is twice.py_func  # NUMBA_DISABLE_JIT=1: as is
    assert isinstance(twice, Kernel) and _doubled.export_name == f"{__name__.replace('.', '_')}___doubled"


def test_the_digest_follows_every_kernel_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit of any kernel module changes the digest, so a compiled module built before it is not used."""
    import sniffer.aot

    for name in KERNEL_MODULES:
        copy = tmp_path / (name.replace(".", "/") + ".py")
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes((PROJECT / (name.replace(".", "/") + ".py")).read_bytes())
    (tmp_path / "sniffer" / "aot.py").write_text("")
    monkeypatch.setattr(sniffer.aot, "__file__", str(tmp_path / "sniffer" / "aot.py"))
    digest = source_digest()
    edited = tmp_path / "detectors" / "windows.py"
    edited.write_text(edited.read_text() + "# an edit\n")
    assert source_digest() != digest
    edited.write_text(edited.read_text().removesuffix("# an edit\n"))
    assert source_digest() == digest
