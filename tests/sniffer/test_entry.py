"""The apispy command's entry point asks for one BLAS thread before numpy loads, and leaves a chosen count alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
CHECK = """
import os, sys
import sniffer.entry
assert "numpy" not in sys.modules, "importing the entry point loaded numpy"
sys.argv = ["apispy", "--version"]
try:
    sniffer.entry.main()
except SystemExit:
    pass
import numpy  # loaded by the command
print(os.environ["OPENBLAS_NUM_THREADS"])
"""


def run_entry(environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=environment,
                          cwd=PROJECT, timeout=120)  # fmt: skip


def test_the_command_asks_for_one_blas_thread_before_numpy_loads() -> None:
    environment = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    result = run_entry(environment)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "1"
    assert "apispy" in result.stdout.splitlines()[0]  # the version line: the command ran


def test_a_thread_count_the_environment_chose_is_kept() -> None:
    result = run_entry({**os.environ, "OPENBLAS_NUM_THREADS": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "3"


GC_CHECK = """
import gc, sys
import sniffer.entry
collections = []
gc.callbacks.append(lambda phase, info: collections.append(info["generation"]) if phase == "start" else None)
sys.argv = ["apispy", *sys.argv[1:]]
try:
    sniffer.entry.main()
except SystemExit:
    pass
tracked = len(gc.get_objects())  # what a collection at exit would traverse
print(len(collections), tracked)
"""


def collections_and_tracked(*arguments: str) -> tuple[int, int]:
    """How often the collector ran while apispy ran with `arguments` (through its entry point), and how many
    objects it would traverse once the command returned."""
    result = subprocess.run([sys.executable, "-c", GC_CHECK, *arguments], capture_output=True, text=True,
                            cwd=PROJECT, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    collections, tracked = result.stdout.splitlines()[-1].split()
    return int(collections), int(tracked)


def test_the_command_collects_no_garbage_while_it_imports() -> None:
    """numpy's and numba's imports make hundreds of thousands of objects, none of them garbage: at Python's
    default thresholds they are traversed in some 150 collections; the entry point imports with the collector
    off, and freezes what was imported."""
    collections, _ = collections_and_tracked("--version")
    assert collections == 0


def test_a_replay_leaves_nothing_for_collections_at_start_up_or_exit() -> None:
    """numba's first cache load makes as many objects as the imports: it is loaded with the collector off and
    frozen. And what the run made is frozen when the command returns, so the collection Python makes at exit
    traverses nothing. A first replay fills numba's on-disk cache, should it be cold (compiling makes garbage);
    the second, a process of its own, is measured."""
    replay = ("replay", "--quiet", str(PROJECT / "pcaps" / "api_python_curl.pcap"))
    collections_and_tracked(*replay)
    collections, tracked = collections_and_tracked(*replay)
    assert collections == 0
    assert tracked < 1_000  # not frozen when the command returns, this replay leaves some 4,700


LAZY_CHECK = """
import sys
import sniffer.cli
from sniffer.config import load_config
load_config(sys.argv[1])
lazy = ("yaml", "urllib.request", "http.client", "sniffer.sharded", "multiprocessing")
print(sorted(name for name in lazy if name in sys.modules))
"""


def test_what_only_yaml_or_webhooks_need_is_not_imported_at_start_up(tmp_path: Path) -> None:
    """PyYAML and urllib.request (with http.client and email) took 100 ms of a replay's start-up, which only a YAML
    file (a spec, a config, an inventory) or a webhook needs; they are imported when one is there. So is the
    merge of several processes (sniffer.sharded, with multiprocessing: 2% of a start-up), when --workers asks for it."""
    config = tmp_path / "apispy.toml"
    config.write_text("[flows]\nmax_flows = 1000\n")
    result = subprocess.run([sys.executable, "-c", LAZY_CHECK, str(config)], capture_output=True, text=True,
                            cwd=PROJECT, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "[]\n"
