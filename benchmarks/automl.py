"""Benchmark a full-size AutoML run on the bundled Bank Marketing sample.

Runs the real path (service, supervisor, worker process) in a temporary
workspace and prints the best model's AUC_weighted under 5-fold
cross-validation, the wall time of the whole run and the worker's peak
resident memory.

    python benchmarks/automl.py [--budget 120] [--folds 5]
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import tempfile
import time
from pathlib import Path

import opml
from opml.automl.settings import AutoMLSettings


def peak_rss_mib(pid: int) -> float | None:
    """Return the process's peak resident set (VmHWM) in MiB, or None once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=120.0, help="time budget in seconds")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        workspace = opml.connect(home)
        dataset = workspace.datasets.register_sample().version
        settings = AutoMLSettings(
            label_column_name="y", experiment_timeout_seconds=arguments.budget, n_cross_validations=arguments.folds
        )

        started = time.monotonic()
        run = workspace.runs.submit_automl_run(dataset.name, settings)
        peak = 0.0
        while (state := workspace.runs.get(run.id)).is_active:
            with sqlite3.connect(workspace.metadata_path) as connection:
                pid = connection.execute("SELECT worker_pid FROM runs WHERE id = ?", (run.id,)).fetchone()[0]
            if pid is not None:
                peak = max(peak, peak_rss_mib(pid) or 0.0)
            time.sleep(0.5)
        wall = time.monotonic() - started

        children = workspace.runs.children(run.id)
        best = workspace.runs.child(run.id) if state.status == "Completed" else None
        print(f"machine: {platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, Python {platform.python_version()}")
        print(f"data: {dataset.ref}, {dataset.rows:,} rows; budget {arguments.budget:g} s; {arguments.folds}-fold CV")
        print(f"status: {state.status}{' (' + state.error + ')' if state.error else ''}")
        print(f"child runs: {len(children)}")
        if best is not None:
            print(f"best: child run {best.iteration}, {best.algorithm}")
            print(f"AUC_weighted: {best.metrics['AUC_weighted']:.4f}")
            print(f"accuracy: {best.metrics['accuracy']:.4f}")
            single = max((child for child in children if child.algorithm != "VotingEnsemble"), key=lambda c: c.metrics["AUC_weighted"])
            print(f"best single model: {single.algorithm}, AUC_weighted {single.metrics['AUC_weighted']:.4f}")
        print(f"wall time (submit to Completed): {wall:.1f} s")
        print(f"worker peak memory (VmHWM): {peak:.0f} MiB")


if __name__ == "__main__":
    main()
