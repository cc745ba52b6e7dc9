"""Writing whole documents (the OpenAPI inventory) to files: atomically, YAML or JSON by the file name."""

from __future__ import annotations

import json
import os
import tempfile


def write_document(document: dict, path: str) -> None:
    """Write atomically: YAML if `path` ends in .yaml/.yml, else JSON; readable by other users (0644)."""
    if path.lower().endswith((".yaml", ".yml")):
        import yaml  # here, not at the top: a run that writes no YAML is spared 30 ms of start-up

        text = yaml.safe_dump(document, sort_keys=True, allow_unicode=True, default_flow_style=False)
    else:
        text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".apispy-inventory-", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as output:
            output.write(text)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the inventory from dashboards and other users
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
