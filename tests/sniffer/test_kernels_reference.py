"""Every numba kernel gives the same result compiled and as plain Python (NUMBA_DISABLE_JIT=1).

A child process with NUMBA_DISABLE_JIT=1 runs the kernels' Python bodies on the bundled captures (and on the
public ones) and saves every output column; this process compares them with the compiled kernels' columns.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from support.samples import PCAPS
from support.tshark_oracle import PUBLIC

CAPTURES = sorted(
    [path for path in PCAPS.iterdir() if path.suffix in (".pcap", ".pcapng") and "truncated_header" not in path.name
     and "not_a_capture" not in path.name]
    + [path for path in PUBLIC.iterdir() if path.suffix in (".pcap", ".pcapng")]
)

DUMP = """
import sys
import numpy as np
from sniffer.capture.pcapfile import open_capture
from sniffer.decode.decoder import decode_batch

columns = {}
for index, path in enumerate(sys.argv[2:]):
    for number, batch in enumerate(open_capture(path, block_bytes=65536).batches()):
        decoded = decode_batch(batch)
        prefix = f"{index}_{number}_"
        for name in ("frame_offsets", "captured_lengths", "wire_lengths", "ts_ns", "link_types"):
            columns[prefix + name] = getattr(batch, name)
        for name in decoded.__slots__:
            columns[prefix + name] = getattr(decoded, name)
np.savez(sys.argv[1], **columns)
"""


def dump(path: Path, jit: bool) -> dict[str, np.ndarray]:
    environment = dict(os.environ)
    if jit:
        environment.pop("NUMBA_DISABLE_JIT", None)
    else:
        environment["NUMBA_DISABLE_JIT"] = "1"
    subprocess.run([sys.executable, "-c", DUMP, str(path), *map(str, CAPTURES)], env=environment, check=True)
    with np.load(path) as columns:
        return {name: columns[name] for name in columns.files}


def test_kernels_match_their_plain_python_reference(tmp_path: Path) -> None:
    compiled = dump(tmp_path / "compiled.npz", jit=True)
    reference = dump(tmp_path / "reference.npz", jit=False)
    assert len(compiled) > 500
    assert sorted(compiled) == sorted(reference)
    for name, column in compiled.items():
        np.testing.assert_array_equal(column, reference[name], err_msg=name)


# Every test module that compares a kernel with its Python body (support.kernels.python_body).
IMPORTS_PYTHON_BODY = re.compile(r"^from support\.kernels import (\w+, )*python_body\b", re.MULTILINE)
KERNEL_TEST_MODULES = (
    "tests/detectors/test_batchkeys.py",
    "tests/detectors/test_ids.py",
    "tests/detectors/test_jsonkeys.py",
    "tests/detectors/test_kernels.py",
    "tests/detectors/test_windows.py",
    "tests/parsers/test_headparse.py",
    "tests/sniffer/capture/test_ring.py",
    "tests/sniffer/test_decoder.py",
    "tests/sniffer/test_shardsplit.py",
)


def test_kernel_tests_pass_with_numba_disabled() -> None:
    """With NUMBA_DISABLE_JIT=1 every kernel is its plain Python body: the kernels' tests must still pass (they
    then check the Python bodies against their expected results)."""
    root = Path(__file__).resolve().parents[2]
    users = {str(path.relative_to(root)) for path in (root / "tests").rglob("test_*.py")
             if IMPORTS_PYTHON_BODY.search(path.read_text(encoding="utf-8"))}  # fmt: skip
    assert users == set(KERNEL_TEST_MODULES), "a module comparing kernels with their Python bodies is not listed"
    environment = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:warnings", *KERNEL_TEST_MODULES],
        cwd=root, env=environment, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
