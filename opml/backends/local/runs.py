"""Runs and child runs in the local workspace: rows in SQLite, logs and models under artifacts/runs/."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from opml.backends.local.activity import record_activity
from opml.backends.local.store import MetadataStore, utc_now
from opml.records import ACTIVE_STATUSES, ChildRun, Run, RunProgress


class LocalRunRepository:
    def __init__(self, store: MetadataStore, artifact_root: Path) -> None:
        self._store = store
        self.folder = artifact_root / "runs"
        self.folder.mkdir(parents=True, exist_ok=True)

    def run_folder(self, run_id: str) -> Path:
        return self.folder / run_id

    def log_path(self, run_id: str) -> Path:
        return self.run_folder(run_id) / "run.log"

    def insert(self, run_id: str, experiment: str, kind: str, dataset_name: str, dataset_version: int, settings: dict) -> None:
        with self._store.write() as connection:
            connection.execute(
                "INSERT INTO runs (id, experiment, kind, status, dataset_name, dataset_version, settings_json, created_at)"
                " VALUES (?, ?, ?, 'Queued', ?, ?, ?, ?)",
                (run_id, experiment, kind, dataset_name, dataset_version, json.dumps(settings), utc_now()),
            )
            record_activity(
                connection, "run", f"Submitted AutoML run {run_id} on {dataset_name}:{dataset_version}"
            )

    def get(self, run_id: str) -> Run | None:
        with self._store.read() as connection:
            row = connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            return None if row is None else _to_run(connection, row)

    def list(self, limit: int = 100) -> list[Run]:
        with self._store.read() as connection:
            rows = connection.execute("SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
            return [_to_run(connection, row) for row in rows]

    def count(self) -> int:
        with self._store.read() as connection:
            return connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def process_rows(self) -> list[sqlite3.Row]:
        """Return the id, status and process columns of every active run."""
        with self._store.read() as connection:
            return connection.execute(
                "SELECT id, status, supervisor_pid, supervisor_start, worker_pid, worker_start, cancel_requested"
                " FROM runs WHERE status IN ('Queued', 'Running') ORDER BY created_at"
            ).fetchall()

    def add_child(self, run_id: str, child: dict) -> None:
        with self._store.write() as connection:
            connection.execute(
                "INSERT INTO child_runs (run_id, iteration, algorithm, hyperparameters_json, status, duration_s,"
                " metrics_json, charts_json, created_at) VALUES (?, ?, ?, ?, 'Completed', ?, ?, ?, ?)",
                (
                    run_id,
                    child["iteration"],
                    child["algorithm"],
                    json.dumps(child["hyperparameters"]),
                    child["duration_s"],
                    json.dumps(child["metrics"]),
                    json.dumps(child["charts"]),
                    utc_now(),
                ),
            )

    def set_child_model(self, run_id: str, iteration: int, model_path: str, feature_importance: list[dict]) -> None:
        with self._store.write() as connection:
            connection.execute(
                "UPDATE child_runs SET model_path = ?, feature_importance_json = ? WHERE run_id = ? AND iteration = ?",
                (model_path, json.dumps(feature_importance), run_id, iteration),
            )

    def children(self, run_id: str) -> list[ChildRun]:
        with self._store.read() as connection:
            rows = connection.execute(
                "SELECT * FROM child_runs WHERE run_id = ? ORDER BY iteration", (run_id,)
            ).fetchall()
        return [_to_child(row) for row in rows]

    def child(self, run_id: str, iteration: int) -> ChildRun | None:
        with self._store.read() as connection:
            row = connection.execute(
                "SELECT * FROM child_runs WHERE run_id = ? AND iteration = ?", (run_id, iteration)
            ).fetchone()
        return None if row is None else _to_child(row)

    def child_model_path(self, run_id: str, iteration: int) -> Path | None:
        with self._store.read() as connection:
            row = connection.execute(
                "SELECT model_path FROM child_runs WHERE run_id = ? AND iteration = ?", (run_id, iteration)
            ).fetchone()
        if row is None or row["model_path"] is None:
            return None
        return self.folder.parent / row["model_path"]

    def mark_dispatched(self, connection: sqlite3.Connection, run_id: str, pid: int, ticks: int | None) -> None:
        connection.execute(
            "UPDATE runs SET status = 'Running', started_at = ?, supervisor_pid = ?, supervisor_start = ?"
            " WHERE id = ? AND status = 'Queued'",
            (utc_now(), pid, ticks, run_id),
        )

    def set_worker(self, run_id: str, pid: int, ticks: int | None) -> None:
        with self._store.write() as connection:
            connection.execute("UPDATE runs SET worker_pid = ?, worker_start = ? WHERE id = ?", (pid, ticks, run_id))

    def request_cancel(self, run_id: str) -> None:
        with self._store.write() as connection:
            connection.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ?", (run_id,))
            connection.execute(
                "UPDATE runs SET status = 'Canceled', ended_at = ?, error = 'Canceled before it started'"
                " WHERE id = ? AND status = 'Queued'",
                (utc_now(), run_id),
            )
            record_activity(connection, "run", f"Requested cancellation of run {run_id}")

    def finish(
        self,
        run_id: str,
        status: str,
        *,
        error: str | None = None,
        best_iteration: int | None = None,
        result: dict | None = None,
    ) -> bool:
        """Record the end of an active run; return False when it had already ended."""
        with self._store.write() as connection:
            updated = connection.execute(
                "UPDATE runs SET status = ?, ended_at = ?, error = ?, best_iteration = ?, result_json = ?"
                " WHERE id = ? AND status IN ('Queued', 'Running')",
                (status, utc_now(), error, best_iteration, json.dumps(result or {}), run_id),
            ).rowcount
            if updated:
                detail = f": {error}" if error else ""
                record_activity(connection, "run", f"Run {run_id} {status.lower()}{detail}")
        return bool(updated)


def _parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _to_run(connection: sqlite3.Connection, row: sqlite3.Row) -> Run:
    settings = json.loads(row["settings_json"])
    metric = settings["primary_metric"]
    children, best = connection.execute(
        "SELECT COUNT(*), MAX(json_extract(metrics_json, ?)) FROM child_runs WHERE run_id = ?",
        (f"$.{metric}", row["id"]),
    ).fetchone()

    started = _parse_time(row["started_at"])
    ended = _parse_time(row["ended_at"])
    if started is None:
        elapsed = 0.0
    else:
        elapsed = ((ended or datetime.now(timezone.utc)) - started).total_seconds()

    return Run(
        id=row["id"],
        experiment=row["experiment"],
        kind=row["kind"],
        status=row["status"],
        dataset_name=row["dataset_name"],
        dataset_version=row["dataset_version"],
        settings=settings,
        created_at=datetime.fromisoformat(row["created_at"]),
        started_at=started,
        ended_at=ended,
        error=row["error"],
        best_iteration=row["best_iteration"],
        progress=RunProgress(
            elapsed_s=elapsed,
            budget_s=float(settings["experiment_timeout_seconds"]),
            child_runs=children,
            best_metric=best,
        ),
        result=json.loads(row["result_json"] or "{}"),
    )


def _to_child(row: sqlite3.Row) -> ChildRun:
    importance = row["feature_importance_json"]
    return ChildRun(
        run_id=row["run_id"],
        iteration=row["iteration"],
        algorithm=row["algorithm"],
        hyperparameters=json.loads(row["hyperparameters_json"]),
        status=row["status"],
        duration_s=row["duration_s"],
        metrics=json.loads(row["metrics_json"]),
        charts=json.loads(row["charts_json"]),
        has_model=row["model_path"] is not None,
        feature_importance=None if importance is None else json.loads(importance),
        created_at=datetime.fromisoformat(row["created_at"]),
    )


__all__ = ["ACTIVE_STATUSES", "LocalRunRepository"]
