"""Transaction log as JSON lines: one object per transaction, public fields only (no secrets, no bodies)."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from parsers.transaction import Transaction

# One encoder for every line: json.dumps with any non-default option builds a new encoder at each call.
encode_line = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class JsonLinesSink:
    def __init__(self, path: str) -> None:
        self.path = path
        self._handle: TextIO = sys.stdout if path == "-" else open(path, "w", encoding="utf-8")  # noqa: SIM115

    def write(self, transaction: Transaction) -> None:
        self._handle.write(encode_line(transaction.to_record()) + "\n")

    def reopen(self) -> None:
        """SIGHUP: after logrotate moved the file, continue in a new one at the same path."""
        if self._handle is not sys.stdout:
            self._handle.close()
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        if self._handle is sys.stdout:
            self._handle.flush()
        else:
            self._handle.close()
