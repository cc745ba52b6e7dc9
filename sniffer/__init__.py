"""apispy capture, decoding, reassembly, pipeline, CLI and sinks."""
