"""Pipelines in the local workspace: definitions, published pipelines, runs and their steps,
API tokens, schedules and the API server's process record, all rows in SQLite.

Each pipeline run logs to ``artifacts/pipeline_runs/<run id>/``: ``run.log``
for the runner process and ``<step>.log`` for each step.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

from opml.backends.local.activity import record_activity
from opml.backends.local.store import MetadataStore, utc_now
from opml.records import ApiToken, Pipeline, PipelineRun, PipelineStep, PublishedPipeline, Schedule


class LocalPipelineRepository:
    def __init__(self, store: MetadataStore, artifact_root: Path) -> None:
        self._store = store
        self.folder = artifact_root / "pipeline_runs"
        self.folder.mkdir(parents=True, exist_ok=True)

    def run_folder(self, run_id: str) -> Path:
        return self.folder / run_id

    def log_path(self, run_id: str, step: str | None = None) -> Path:
        return self.run_folder(run_id) / f"{step or 'run'}.log"

    # Definitions

    def add_pipeline(self, name: str, description: str, definition: dict) -> tuple[Pipeline, bool]:
        """Save a new version, unless the latest one is the same; return it and whether it is new."""
        encoded = json.dumps(definition, sort_keys=True)
        with self._store.write() as connection:
            latest = connection.execute(
                "SELECT * FROM pipelines WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
            ).fetchone()
            if latest is not None and latest["definition_json"] == encoded and latest["description"] == description:
                return _to_pipeline(latest), False
            version = 1 if latest is None else latest["version"] + 1
            connection.execute(
                "INSERT INTO pipelines (name, version, description, definition_json, created_at) VALUES (?, ?, ?, ?, ?)",
                (name, version, description, encoded, utc_now()),
            )
            record_activity(connection, "pipeline", f"Saved pipeline {name}:{version}")
            row = connection.execute("SELECT * FROM pipelines WHERE name = ? AND version = ?", (name, version)).fetchone()
        return _to_pipeline(row), True

    def get_pipeline(self, name: str, version: int | None) -> Pipeline | None:
        with self._store.read() as connection:
            if version is None:
                row = connection.execute(
                    "SELECT * FROM pipelines WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
                ).fetchone()
            else:
                row = connection.execute(
                    "SELECT * FROM pipelines WHERE name = ? AND version = ?", (name, version)
                ).fetchone()
        return None if row is None else _to_pipeline(row)

    def list_pipelines(self) -> list[Pipeline]:
        """Return the latest version of each pipeline, by name."""
        with self._store.read() as connection:
            rows = connection.execute(
                "SELECT * FROM pipelines p WHERE version = (SELECT MAX(version) FROM pipelines WHERE name = p.name)"
                " ORDER BY name"
            ).fetchall()
        return [_to_pipeline(row) for row in rows]

    def pipeline_versions(self, name: str) -> list[Pipeline]:
        with self._store.read() as connection:
            rows = connection.execute("SELECT * FROM pipelines WHERE name = ? ORDER BY version", (name,)).fetchall()
        return [_to_pipeline(row) for row in rows]

    # Published pipelines

    def add_published(self, published_id: str, name: str, version: int, description: str) -> None:
        with self._store.write() as connection:
            connection.execute(
                "INSERT INTO published_pipelines (id, name, pipeline_version, description, status, created_at)"
                " VALUES (?, ?, ?, ?, 'Active', ?)",
                (published_id, name, version, description, utc_now()),
            )
            record_activity(connection, "pipeline", f"Published pipeline {name}:{version} as {published_id}")

    def get_published(self, published_id: str) -> sqlite3.Row | None:
        with self._store.read() as connection:
            return connection.execute(f"{PUBLISHED_QUERY} WHERE published.id = ?", (published_id,)).fetchone()

    def list_published(self) -> list[sqlite3.Row]:
        with self._store.read() as connection:
            return connection.execute(f"{PUBLISHED_QUERY} ORDER BY published.created_at DESC").fetchall()

    def set_default_published(self, name: str, published_id: str | None) -> None:
        """Make ``published_id`` the publication that the by-name endpoint of ``name`` runs, or clear the default when it is None."""
        with self._store.write() as connection:
            if published_id is None:
                connection.execute("DELETE FROM pipeline_endpoints WHERE name = ?", (name,))
                record_activity(connection, "pipeline", f"The endpoint of {name} runs its newest Active publication")
                return
            connection.execute(
                "INSERT INTO pipeline_endpoints (name, default_published_id, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET default_published_id = excluded.default_published_id,"
                " updated_at = excluded.updated_at",
                (name, published_id, utc_now()),
            )
            record_activity(connection, "pipeline", f"The endpoint of {name} runs published pipeline {published_id}")

    def set_published_status(self, published_id: str, status: str) -> None:
        with self._store.write() as connection:
            connection.execute("UPDATE published_pipelines SET status = ? WHERE id = ?", (status, published_id))
            record_activity(connection, "pipeline", f"Set published pipeline {published_id} to {status}")

    # Runs and steps

    def insert_run(self, values: dict, step_names: tuple[str, ...]) -> None:
        with self._store.write() as connection:
            columns = ", ".join(values)
            placeholders = ", ".join("?" for _ in values)
            connection.execute(
                f"INSERT INTO pipeline_runs ({columns}) VALUES ({placeholders})", tuple(values.values())
            )
            connection.executemany(
                "INSERT INTO pipeline_steps (run_id, position, name, status) VALUES (?, ?, ?, 'NotStarted')",
                [(values["id"], position, name) for position, name in enumerate(step_names)],
            )
            record_activity(
                connection,
                "pipeline",
                f"Submitted pipeline run {values['id']} of {values['pipeline_name']}:{values['pipeline_version']}"
                f" ({values['trigger']})",
            )

    def get_run(self, run_id: str) -> PipelineRun | None:
        with self._store.read() as connection:
            row = connection.execute("SELECT * FROM pipeline_runs WHERE id = ?", (run_id,)).fetchone()
            return None if row is None else _to_run(connection, row)

    def list_runs(self, limit: int, pipeline_name: str | None = None) -> list[PipelineRun]:
        with self._store.read() as connection:
            if pipeline_name is None:
                rows = connection.execute(
                    "SELECT * FROM pipeline_runs ORDER BY created_at DESC LIMIT ?", (limit,)
                ).fetchall()
            else:
                rows = connection.execute(
                    "SELECT * FROM pipeline_runs WHERE pipeline_name = ? ORDER BY created_at DESC LIMIT ?",
                    (pipeline_name, limit),
                ).fetchall()
            return [_to_run(connection, row) for row in rows]

    def count_runs(self) -> int:
        with self._store.read() as connection:
            return connection.execute("SELECT COUNT(*) FROM pipeline_runs").fetchone()[0]

    def active_run_rows(self) -> list[sqlite3.Row]:
        with self._store.read() as connection:
            return connection.execute(
                "SELECT id, status, pid, process_start, cancel_requested FROM pipeline_runs"
                " WHERE status IN ('Queued', 'Running') ORDER BY created_at"
            ).fetchall()

    def set_run_process(self, run_id: str, pid: int, ticks: int | None) -> None:
        with self._store.write() as connection:
            connection.execute(
                "UPDATE pipeline_runs SET pid = ?, process_start = ? WHERE id = ?", (pid, ticks, run_id)
            )

    def mark_run_started(self, run_id: str) -> bool:
        with self._store.write() as connection:
            return bool(
                connection.execute(
                    "UPDATE pipeline_runs SET status = 'Running', started_at = ? WHERE id = ? AND status = 'Queued'",
                    (utc_now(), run_id),
                ).rowcount
            )

    def cancel_requested(self, run_id: str) -> bool:
        with self._store.read() as connection:
            row = connection.execute("SELECT cancel_requested FROM pipeline_runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row["cancel_requested"])

    def request_cancel(self, run_id: str) -> None:
        with self._store.write() as connection:
            connection.execute("UPDATE pipeline_runs SET cancel_requested = 1 WHERE id = ?", (run_id,))
            record_activity(connection, "pipeline", f"Requested cancellation of pipeline run {run_id}")

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> bool:
        """End an active run; its Running step becomes Failed and the steps after it Skipped (both Canceled on cancel).

        Return False when the run had already ended.
        """
        now = utc_now()
        leftover = "Canceled" if status == "Canceled" else "Skipped"
        interrupted = "Canceled" if status == "Canceled" else "Failed"
        with self._store.write() as connection:
            updated = connection.execute(
                "UPDATE pipeline_runs SET status = ?, ended_at = ?, error = ?"
                " WHERE id = ? AND status IN ('Queued', 'Running')",
                (status, now, error, run_id),
            ).rowcount
            if not updated:
                return False
            # A step still Running here was cut off with the run, so it takes the run's error.
            connection.execute(
                "UPDATE pipeline_steps SET status = ?, ended_at = ?, error = ? WHERE run_id = ? AND status = 'Running'",
                (interrupted, now, error, run_id),
            )
            connection.execute(
                "UPDATE pipeline_steps SET status = ? WHERE run_id = ? AND status = 'NotStarted'", (leftover, run_id)
            )
            detail = f": {error}" if error else ""
            record_activity(connection, "pipeline", f"Pipeline run {run_id} {status.lower()}{detail}")
        return True

    def start_step(self, run_id: str, position: int, fingerprint: str | None) -> None:
        with self._store.write() as connection:
            connection.execute(
                "UPDATE pipeline_steps SET status = 'Running', started_at = ?, fingerprint = ?"
                " WHERE run_id = ? AND position = ?",
                (utc_now(), fingerprint, run_id, position),
            )

    def finish_step(
        self,
        run_id: str,
        position: int,
        status: str,
        *,
        outputs: dict | None = None,
        error: str | None = None,
        reused_from: str | None = None,
    ) -> None:
        with self._store.write() as connection:
            connection.execute(
                "UPDATE pipeline_steps SET status = ?, ended_at = ?, outputs_json = COALESCE(?, outputs_json),"
                " error = ?, reused_from = ? WHERE run_id = ? AND position = ?",
                (status, utc_now(), None if outputs is None else json.dumps(outputs), error, reused_from, run_id, position),
            )

    def set_step_outputs(self, run_id: str, position: int, outputs: dict) -> None:
        """Record outputs known before the step ends, such as the AutoML run it started; a failed step keeps them."""
        with self._store.write() as connection:
            connection.execute(
                "UPDATE pipeline_steps SET outputs_json = ? WHERE run_id = ? AND position = ?",
                (json.dumps(outputs), run_id, position),
            )

    def reusable_step(self, name: str, fingerprint: str) -> tuple[str, dict] | None:
        """Return the run and outputs of the newest Completed step with this name and fingerprint."""
        with self._store.read() as connection:
            row = connection.execute(
                "SELECT run_id, reused_from, outputs_json FROM pipeline_steps"
                " WHERE name = ? AND fingerprint = ? AND status IN ('Completed', 'Reused')"
                " ORDER BY ended_at DESC LIMIT 1",
                (name, fingerprint),
            ).fetchone()
        if row is None:
            return None
        return row["reused_from"] or row["run_id"], json.loads(row["outputs_json"])

    # API tokens

    def add_token(self, token_id: str, name: str, token_sha256: str) -> None:
        with self._store.write() as connection:
            connection.execute(
                "INSERT INTO api_tokens (id, name, token_sha256, created_at) VALUES (?, ?, ?, ?)",
                (token_id, name, token_sha256, utc_now()),
            )
            record_activity(connection, "api", f"Created API token {name} ({token_id})")

    def list_tokens(self) -> list[ApiToken]:
        with self._store.read() as connection:
            rows = connection.execute("SELECT * FROM api_tokens ORDER BY created_at").fetchall()
        return [_to_token(row) for row in rows]

    def revoke_token(self, token_id: str) -> bool:
        with self._store.write() as connection:
            updated = connection.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (utc_now(), token_id)
            ).rowcount
            if updated:
                record_activity(connection, "api", f"Revoked API token {token_id}")
        return bool(updated)

    def use_token(self, token_sha256: str) -> ApiToken | None:
        """Return the unrevoked token with this hash, recording its use, or None."""
        with self._store.write() as connection:
            row = connection.execute(
                "SELECT * FROM api_tokens WHERE token_sha256 = ? AND revoked_at IS NULL", (token_sha256,)
            ).fetchone()
            if row is None:
                return None
            connection.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (utc_now(), row["id"]))
        return _to_token(row)

    # Schedules

    def add_schedule(self, values: dict) -> None:
        with self._store.write() as connection:
            columns = ", ".join(values)
            placeholders = ", ".join("?" for _ in values)
            connection.execute(f"INSERT INTO schedules ({columns}) VALUES ({placeholders})", tuple(values.values()))
            record_activity(connection, "pipeline", f"Created schedule {values['name']}")

    def get_schedule(self, name: str) -> Schedule | None:
        with self._store.read() as connection:
            row = connection.execute("SELECT * FROM schedules WHERE name = ?", (name,)).fetchone()
        return None if row is None else _to_schedule(row)

    def list_schedules(self) -> list[Schedule]:
        with self._store.read() as connection:
            rows = connection.execute("SELECT * FROM schedules ORDER BY name").fetchall()
        return [_to_schedule(row) for row in rows]

    def update_schedule(self, name: str, activity: str | None = None, **values) -> None:
        assignments = ", ".join(f"{column} = ?" for column in values)
        with self._store.write() as connection:
            connection.execute(f"UPDATE schedules SET {assignments} WHERE name = ?", (*values.values(), name))
            if activity:
                record_activity(connection, "pipeline", activity)

    def delete_schedule(self, name: str) -> None:
        with self._store.write() as connection:
            connection.execute("DELETE FROM schedules WHERE name = ?", (name,))
            record_activity(connection, "pipeline", f"Deleted schedule {name}")

    def claim_schedule(self, name: str, expected_next: str, new_next: str) -> bool:
        """Move a due schedule to its next time, unless another process did so first."""
        with self._store.write() as connection:
            return bool(
                connection.execute(
                    "UPDATE schedules SET next_run_at = ?, last_run_at = ?"
                    " WHERE name = ? AND next_run_at = ? AND status = 'Active'",
                    (new_next, utc_now(), name, expected_next),
                ).rowcount
            )

    # The API server's process record

    def service(self, name: str) -> sqlite3.Row | None:
        with self._store.read() as connection:
            return connection.execute("SELECT * FROM services WHERE name = ?", (name,)).fetchone()

    def save_service(self, name: str, activity: str | None = None, **values) -> None:
        with self._store.write() as connection:
            connection.execute("INSERT OR IGNORE INTO services (name, host) VALUES (?, ?)", (name, values.get("host", "127.0.0.1")))
            assignments = ", ".join(f"{column} = ?" for column in values)
            connection.execute(f"UPDATE services SET {assignments} WHERE name = ?", (*values.values(), name))
            if activity:
                record_activity(connection, "api", activity)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _to_pipeline(row: sqlite3.Row) -> Pipeline:
    return Pipeline(
        name=row["name"],
        version=row["version"],
        description=row["description"],
        definition=json.loads(row["definition_json"]),
        created_at=datetime.fromisoformat(row["created_at"]),
    )


PUBLISHED_QUERY = (
    "SELECT published.*, endpoints.name IS NOT NULL AS is_default FROM published_pipelines AS published"
    " LEFT JOIN pipeline_endpoints AS endpoints ON endpoints.default_published_id = published.id"
)


def to_published(row: sqlite3.Row, endpoint: str | None) -> PublishedPipeline:
    return PublishedPipeline(
        id=row["id"],
        name=row["name"],
        pipeline_version=row["pipeline_version"],
        description=row["description"],
        status=row["status"],
        created_at=datetime.fromisoformat(row["created_at"]),
        endpoint=endpoint,
        is_default=bool(row["is_default"]),
    )


def _to_step(row: sqlite3.Row) -> PipelineStep:
    return PipelineStep(
        run_id=row["run_id"],
        position=row["position"],
        name=row["name"],
        status=row["status"],
        reused_from=row["reused_from"],
        started_at=_time(row["started_at"]),
        ended_at=_time(row["ended_at"]),
        error=row["error"],
        outputs=json.loads(row["outputs_json"]),
    )


def _to_run(connection: sqlite3.Connection, row: sqlite3.Row) -> PipelineRun:
    steps = connection.execute(
        "SELECT * FROM pipeline_steps WHERE run_id = ? ORDER BY position", (row["id"],)
    ).fetchall()
    return PipelineRun(
        id=row["id"],
        pipeline_name=row["pipeline_name"],
        pipeline_version=row["pipeline_version"],
        published_id=row["published_id"],
        experiment=row["experiment"],
        trigger=row["trigger"],
        status=row["status"],
        parameters=json.loads(row["parameters_json"]),
        definition=json.loads(row["definition_json"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        started_at=_time(row["started_at"]),
        ended_at=_time(row["ended_at"]),
        error=row["error"],
        steps=tuple(_to_step(step) for step in steps),
    )


def _to_token(row: sqlite3.Row) -> ApiToken:
    return ApiToken(
        id=row["id"],
        name=row["name"],
        created_at=datetime.fromisoformat(row["created_at"]),
        revoked_at=_time(row["revoked_at"]),
        last_used_at=_time(row["last_used_at"]),
    )


def _to_schedule(row: sqlite3.Row) -> Schedule:
    return Schedule(
        id=row["id"],
        name=row["name"],
        published_id=row["published_id"],
        interval_s=row["interval_s"],
        cron=row["cron"],
        experiment=row["experiment"],
        parameters=json.loads(row["parameters_json"]),
        status=row["status"],
        next_run_at=_time(row["next_run_at"]),
        last_run_at=_time(row["last_run_at"]),
        last_run_id=row["last_run_id"],
        last_error=row["last_error"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )
