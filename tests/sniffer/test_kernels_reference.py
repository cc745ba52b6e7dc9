"""Every numba kernel gives the same result compiled and as plain Python (NUMBA_DISABLE_JIT=1).

A child process with NUMBA_DISABLE_JIT=1 runs the kernels' Python bodies on the bundled captures (and on the
public ones) and saves every output column; this process compares them with the compiled kernels' columns.
"""

from __future__ import annotations

import os
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
