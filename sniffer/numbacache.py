"""Where numba keeps its compiled kernels when apispy's own directory is not writable.

numba caches compiled kernels next to their source (`__pycache__`). Installed system-wide and run as an
unprivileged user (a service account, a container user), that directory is read-only and numba refuses to cache
at import. Then the cache goes to the user's cache directory instead (`NUMBA_CACHE_DIR`), unless the environment
already chose one. Must run before numba is imported.
"""

from __future__ import annotations

import os
from pathlib import Path


def ensure_writable_cache(package_directory: Path) -> None:
    if "NUMBA_CACHE_DIR" in os.environ or os.access(package_directory / "__pycache__", os.W_OK) or (
        not (package_directory / "__pycache__").exists() and os.access(package_directory, os.W_OK)
    ):
        return
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.access(os.path.dirname(base) if not os.path.exists(base) else base, os.W_OK):
        base = os.path.join("/tmp", f"apispy-{os.getuid()}")
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(base, "apispy", "numba")
