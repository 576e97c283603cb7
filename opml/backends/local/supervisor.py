"""The supervisor of one run: ``python -m opml.backends.local.supervisor HOME RUN_ID``.

It starts the training worker, stops it when cancellation is requested,
and records a worker that dies (SIGKILL, out of memory) as Failed with the
reason, within a second of its death.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import opml
from opml.backends.local.processes import signal_name, spawn_python_module, start_ticks

log = logging.getLogger("opml.supervisor")

WORKER_MODULE = "opml.automl.worker"
POLL_S = 0.5
TERMINATE_GRACE_S = 10.0


def supervise(home: str, run_id: str) -> int:
    workspace = opml.connect(home)
    runs = workspace.runs.repository
    log_path = runs.log_path(run_id)
    worker = spawn_python_module(WORKER_MODULE, [home, run_id], log_path, detached=False)
    runs.set_worker(run_id, worker.pid, start_ticks(worker.pid))
    log.info("Run %s: worker pid %d started", run_id, worker.pid)

    canceled = False
    while (returncode := worker.poll()) is None:
        time.sleep(POLL_S)
        if not canceled and workspace.runs.cancel_requested(run_id):
            log.info("Run %s: cancel requested, stopping worker pid %d", run_id, worker.pid)
            canceled = True
            worker.terminate()
            try:
                worker.wait(TERMINATE_GRACE_S)
            except TimeoutError:
                worker.kill()
    if canceled:
        runs.finish(run_id, "Canceled", error="Canceled by request")
    elif returncode != 0:
        reason = f"The worker process ended with {signal_name(returncode)}"
        if runs.finish(run_id, "Failed", error=f"{reason}; see the run log."):
            log.error("Run %s: %s", run_id, reason)
    else:
        runs.finish(run_id, "Failed", error="The worker process exited without recording a result; see the run log.")

    workspace.compute.dispatch()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    home_argument, run_argument = sys.argv[1:3]
    sys.exit(supervise(str(Path(home_argument)), run_argument))
