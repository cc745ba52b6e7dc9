"""Detection over transaction batches (rate abuse, shadow endpoints, payload anomalies); filled in by a later issue."""
