"""The local compute: runs execute in worker processes, at most ``max_nodes`` at once.

Each active run has two processes. A detached supervisor
(``opml.backends.local.supervisor``) starts the training worker, relays
cancellation and records how the worker ended, then starts the next queued
run. When both are gone without a result, ``reconcile`` marks the run
Failed, so no run stays Running after its processes die.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from opml.backends.local.processes import is_alive, spawn_python_module, start_ticks
from opml.backends.local.runs import LocalRunRepository
from opml.backends.local.store import MetadataStore

log = logging.getLogger(__name__)

SUPERVISOR_MODULE = "opml.backends.local.supervisor"


class LocalCompute:
    def __init__(self, store: MetadataStore, runs: LocalRunRepository, home: Path, max_nodes: int) -> None:
        self._store = store
        self._runs = runs
        self._home = home
        self.max_nodes = max_nodes

    def dispatch(self) -> None:
        """Start supervisors for queued runs while fewer than ``max_nodes`` runs are Running."""
        with self._store.write() as connection:
            running = connection.execute("SELECT COUNT(*) FROM runs WHERE status = 'Running'").fetchone()[0]
            free = self.max_nodes - running
            if free <= 0:
                return
            queued = connection.execute(
                "SELECT id FROM runs WHERE status = 'Queued' ORDER BY created_at LIMIT ?", (free,)
            ).fetchall()
            for (run_id,) in queued:
                process = spawn_python_module(
                    SUPERVISOR_MODULE, [str(self._home), run_id], self._runs.log_path(run_id), detached=True
                )
                self._runs.mark_dispatched(connection, run_id, process.pid, start_ticks(process.pid))
                log.info("Started run %s (supervisor pid %d)", run_id, process.pid)

    def reconcile(self) -> None:
        """Fail Running runs whose processes are gone, then start queued runs in free slots."""
        for row in self._runs.process_rows():
            if row["status"] != "Running":
                continue
            supervisor_alive = is_alive(row["supervisor_pid"], row["supervisor_start"])
            worker_alive = is_alive(row["worker_pid"], row["worker_start"])
            if supervisor_alive:
                continue
            if worker_alive and row["cancel_requested"]:
                # The supervisor would have stopped it; with the supervisor gone, stop it here.
                os.kill(row["worker_pid"], signal.SIGTERM)
                self._runs.finish(row["id"], "Canceled", error="Canceled by request")
            elif not worker_alive:
                ended = self._runs.finish(
                    row["id"],
                    "Failed",
                    error=(
                        f"The run's processes ended without recording a result (supervisor pid "
                        f"{row['supervisor_pid']}, worker pid {row['worker_pid']}); see the run log."
                    ),
                )
                if ended:
                    log.warning("Run %s failed: its processes are gone", row["id"])
        self.dispatch()
