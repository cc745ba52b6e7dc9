"""Detection over transactions: rate abuse, shadow endpoints, payload anomalies. No I/O here: detectors get
transactions and return alerts; the sinks in sniffer/ deliver them."""

import sniffer  # noqa: F401  (chooses a writable numba cache before any kernel is compiled)
