"""Per-request telemetry of a deployment, buffered in memory and written in batches.

A background thread writes the buffer to the workspace's SQLite file every
``FLUSH_INTERVAL_S`` in one transaction, so a request only appends to a list.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("opml.serving.telemetry")

FLUSH_INTERVAL_S = 1.0
MAX_BUFFERED = 50_000
COLUMNS = ("at", "request_id", "status", "latency_ms", "rows", "payload_bytes", "model_version", "input_sample", "output_sample")


class TelemetryBuffer:
    def __init__(self, metadata_path: Path, deployment_id: str) -> None:
        self._metadata_path = metadata_path
        self._deployment_id = deployment_id
        self._records: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name="telemetry-flush", daemon=True)
        self._thread.start()

    def add(self, record: dict) -> None:
        with self._lock:
            if len(self._records) >= MAX_BUFFERED:
                self._dropped += 1
                return
            self._records.append(record)

    def flush(self) -> None:
        with self._lock:
            records, self._records = self._records, []
            dropped, self._dropped = self._dropped, 0
        if dropped:
            log.warning("Dropped %d telemetry records because the buffer was full", dropped)
        if not records:
            return
        placeholders = ", ".join("?" for _ in range(len(COLUMNS) + 1))
        try:
            connection = sqlite3.connect(self._metadata_path, timeout=30)
            with connection:
                connection.executemany(
                    f"INSERT INTO requests (deployment_id, {', '.join(COLUMNS)}) VALUES ({placeholders})",
                    [(self._deployment_id, *(record[column] for column in COLUMNS)) for record in records],
                )
            connection.close()
        except sqlite3.Error as error:
            log.error("Could not write %d telemetry records: %s", len(records), error)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            self.flush()
