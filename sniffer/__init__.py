"""apispy capture, decoding, reassembly, pipeline, CLI and sinks."""

from pathlib import Path

from sniffer.numbacache import ensure_writable_cache

ensure_writable_cache(Path(__file__).resolve().parent.parent)
