"""Detection over transactions: rate abuse, shadow endpoints, payload anomalies. No I/O here: detectors get
transactions and return alerts; the sinks in sniffer/ deliver them."""
