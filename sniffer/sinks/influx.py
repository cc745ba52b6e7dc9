"""Points to InfluxDB through influxdb-client's batching write API, with nothing lost when InfluxDB is not there.

influxdb-client batches points and retries failed writes with exponential backoff; it serves InfluxDB 2.x, 3.x,
Cloud and 1.8+ (token `user:password`, bucket `database/retention-policy`). Around it, this writer keeps the
promise that nothing is lost:
- at most `max_buffer_points` points are in the client's hands at once; past that bound, points spill to a
  local file (line protocol) instead of growing memory;
- a batch whose retries are exhausted spills too;
- once a write succeeds again, the spill file is sent again (by the caller's thread, at its next write or at
  close), and emptied;
- at close everything is flushed; whatever could still not be written stays in the spill file, and the
  message says where and how to load it.
Counters of points written, retried, spilled and dropped (past `spill_max_bytes`) go to the summary and to the
`apispy_capture` measurement.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sniffer.sinks.lineprotocol import Point

if TYPE_CHECKING:
    from influxdb_client.client.write_api import WriteApi


@dataclass
class InfluxSettings:
    """The `[influx]` section of the configuration; an empty url means no InfluxDB."""

    url: str = ""
    token: str = ""
    org: str = "-"
    bucket: str = "apispy"
    batch_size: int = 5000
    flush_interval_ms: int = 1000
    retry_interval_ms: int = 1000
    max_retries: int = 5
    max_retry_delay_ms: int = 10_000
    max_retry_time_ms: int = 30_000
    timeout_ms: int = 10_000
    max_buffer_points: int = 200_000
    spill_path: str = "apispy-spill.lp"
    spill_max_bytes: int = 1 << 30


def _lines(data: bytes | str) -> list[bytes]:
    raw = data.encode() if isinstance(data, str) else data
    return [line for line in raw.split(b"\n") if line]


class InfluxWriter:
    """Owns the client, the bounded hand-over and the spill file. `write` is called from one thread."""

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.in_flight = 0
        self.written = 0
        self.retried = 0
        self.spilled = 0
        self.dropped = 0
        self.spill_lines = 0
        self.write_succeeded_since_spill = False
        if os.path.exists(settings.spill_path):
            # A spill file left by an earlier run: its points go out once a write succeeds.
            with open(settings.spill_path, "rb") as spill:
                self.spill_lines = len(_lines(spill.read()))
        # The client logs every retry as a warning; the summary reports them instead.
        logging.getLogger("influxdb_client.client.write.retry").setLevel(logging.ERROR)
        logging.getLogger("influxdb_client.client.write_api").setLevel(logging.CRITICAL)
        # Imported here: a tenth of a second of start-up that runs without InfluxDB need not pay.
        from influxdb_client import InfluxDBClient

        self.client = InfluxDBClient(url=settings.url, token=settings.token, org=settings.org,
                                     timeout=settings.timeout_ms)
        self.write_api = self._new_write_api()

    def _new_write_api(self) -> WriteApi:
        from influxdb_client.client.write_api import WriteOptions

        settings = self.settings
        return self.client.write_api(
            write_options=WriteOptions(
                batch_size=settings.batch_size,
                flush_interval=settings.flush_interval_ms,
                retry_interval=settings.retry_interval_ms,
                max_retries=settings.max_retries,
                max_retry_delay=settings.max_retry_delay_ms,
                max_retry_time=settings.max_retry_time_ms,
                exponential_base=2,
                max_close_wait=settings.max_retry_time_ms + settings.timeout_ms + 5_000,
            ),
            success_callback=self._on_success,
            error_callback=self._on_error,
            retry_callback=self._on_retry,
        )

    # ---- callbacks, on the client's threads --------------------------------------------------------------------

    def _on_success(self, _conf, data: bytes | str) -> None:
        count = len(_lines(data))
        with self.lock:
            self.written += count
            self.in_flight -= count
            self.write_succeeded_since_spill = True

    def _on_error(self, _conf, data: bytes | str, _exception: Exception) -> None:
        lines = _lines(data)
        with self.lock:
            self.in_flight -= len(lines)
            self._spill(lines)

    def _on_retry(self, _conf, data: bytes | str, _exception: Exception) -> None:
        count = len(_lines(data))
        with self.lock:
            self.retried += count

    # ---- the writer's side -----------------------------------------------------------------------------------

    def write(self, points: list[Point]) -> None:
        self.write_lines([point.to_line().encode() for point in points])

    def write_lines(self, lines: list[bytes]) -> None:
        if not lines:
            return
        with self.lock:
            if self.in_flight + len(lines) > self.settings.max_buffer_points:
                self._spill(lines)
                return
            resend = self.spill_lines > 0 and self.write_succeeded_since_spill
        self._submit(lines)
        if resend:
            self.resend_spill()

    def _submit(self, lines: list[bytes]) -> None:
        with self.lock:
            self.in_flight += len(lines)
        self.write_api.write(bucket=self.settings.bucket, org=self.settings.org, record=b"\n".join(lines),
                             write_precision="ns")

    def _spill(self, lines: list[bytes]) -> None:
        """Appends lines to the spill file (caller holds the lock); past its size bound they are dropped."""
        payload = b"\n".join(lines) + b"\n"
        size = os.path.getsize(self.settings.spill_path) if os.path.exists(self.settings.spill_path) else 0
        if size + len(payload) > self.settings.spill_max_bytes:
            self.dropped += len(lines)
            return
        with open(self.settings.spill_path, "ab") as spill:
            spill.write(payload)
        self.spilled += len(lines)
        self.spill_lines += len(lines)
        self.write_succeeded_since_spill = False

    def resend_spill(self) -> None:
        """Hands as many spilled points to the client as the buffer bound allows; the rest stay spilled."""
        with self.lock:
            room = self.settings.max_buffer_points - self.in_flight
            if not self.spill_lines or room <= 0:
                return
            with open(self.settings.spill_path, "rb") as spill:
                lines = _lines(spill.read())
            send, keep = lines[:room], lines[room:]
            if keep:
                with open(self.settings.spill_path, "wb") as spill:
                    spill.write(b"\n".join(keep) + b"\n")
            else:
                os.remove(self.settings.spill_path)
            self.spill_lines = len(keep)
        for start in range(0, len(send), self.settings.batch_size):
            self._submit(send[start : start + self.settings.batch_size])

    def close(self) -> str | None:
        """Flushes everything; returns a message when points are left in the spill file, else None.

        Closing the batching API sends what it holds at once and waits for it (retries included, bounded by
        `max_retry_time_ms`). Spilled points then get more chances, in rounds bounded by the buffer, while each
        round makes progress: InfluxDB may be back by now. A round that writes nothing means it is still away.
        """
        self.write_api.close()
        while self.spill_lines:
            before = self.spill_lines
            self.write_api = self._new_write_api()
            self.resend_spill()
            self.write_api.close()
            if self.spill_lines >= before:
                break
        self.client.close()
        if not self.spill_lines:
            return None
        return (
            f"{self.spill_lines} points could not be written to {self.settings.url} and are kept in "
            f"{os.path.abspath(self.settings.spill_path)} (line protocol, ns precision); load them with "
            f"`influx write --bucket {self.settings.bucket} --precision ns --file {self.settings.spill_path}` "
            f"or POST the file to /api/v2/write?bucket={self.settings.bucket}&precision=ns"
        )

    def counters(self) -> dict[str, int]:
        with self.lock:
            return {
                "points_written": self.written,
                "points_retried": self.retried,
                "points_spilled": self.spilled,
                "points_dropped": self.dropped,
            }
