"""Deployments in the local workspace: rows in SQLite, a folder and a server process each.

Each deployment has ``artifacts/deployments/<id>/`` with ``config.json``
(read by the server, rewritten atomically on every change) and
``server.log``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

from opml.backends.local.activity import record_activity
from opml.backends.local.store import MetadataStore, utc_now
from opml.records import Deployment

CONFIG_FILE = "config.json"
LOG_FILE = "server.log"


class LocalDeploymentRepository:
    def __init__(self, store: MetadataStore, artifact_root: Path) -> None:
        self._store = store
        self.folder = artifact_root / "deployments"
        self.folder.mkdir(parents=True, exist_ok=True)

    def deployment_folder(self, deployment: Deployment) -> Path:
        return self.folder / deployment.id

    def log_path(self, deployment: Deployment) -> Path:
        return self.deployment_folder(deployment) / LOG_FILE

    def insert(self, values: dict) -> None:
        columns = ", ".join(values)
        placeholders = ", ".join("?" for _ in values)
        with self._store.write() as connection:
            connection.execute(f"INSERT INTO deployments ({columns}) VALUES ({placeholders})", tuple(values.values()))
            record_activity(
                connection,
                "deployment",
                f"Deployed model {values['model_name']}:{values['model_version']} as {values['name']}",
            )

    def update(self, name: str, activity: str | None = None, **values) -> None:
        assignments = ", ".join(f"{column} = ?" for column in values)
        with self._store.write() as connection:
            connection.execute(f"UPDATE deployments SET {assignments} WHERE name = ?", (*values.values(), name))
            if activity:
                record_activity(connection, "deployment", activity)

    def get(self, name: str) -> Deployment | None:
        with self._store.read() as connection:
            row = connection.execute("SELECT * FROM deployments WHERE name = ?", (name,)).fetchone()
        return None if row is None else _to_deployment(row)

    def server_settings(self, name: str) -> dict:
        """Return the columns only the process management needs: ports, workers, process start."""
        with self._store.read() as connection:
            row = connection.execute(
                "SELECT requested_port, workers, unknown_categories, process_start FROM deployments WHERE name = ?",
                (name,),
            ).fetchone()
        return {} if row is None else dict(row)

    def list(self) -> list[Deployment]:
        with self._store.read() as connection:
            rows = connection.execute("SELECT * FROM deployments ORDER BY name").fetchall()
        return [_to_deployment(row) for row in rows]

    def count(self) -> int:
        with self._store.read() as connection:
            return connection.execute("SELECT COUNT(*) FROM deployments").fetchone()[0]

    def delete(self, deployment: Deployment) -> None:
        with self._store.write() as connection:
            connection.execute("DELETE FROM deployments WHERE name = ?", (deployment.name,))
            connection.execute("DELETE FROM requests WHERE deployment_id = ?", (deployment.id,))
            record_activity(connection, "deployment", f"Deleted deployment {deployment.name}")
        shutil.rmtree(self.deployment_folder(deployment), ignore_errors=True)

    def write_config(self, deployment: Deployment, config: dict) -> None:
        """Replace the server's config file in one step, so a reader never sees half of it."""
        folder = self.deployment_folder(deployment)
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{CONFIG_FILE}.{os.getpid()}"
        temporary.write_text(json.dumps(config))
        temporary.chmod(0o600)
        os.replace(temporary, folder / CONFIG_FILE)

    def requests(self, deployment: Deployment, limit: int) -> list[dict]:
        with self._store.read() as connection:
            rows = connection.execute(
                "SELECT at, request_id, status, latency_ms, rows, payload_bytes, model_version, input_sample, output_sample"
                " FROM requests WHERE deployment_id = ? ORDER BY id DESC LIMIT ?",
                (deployment.id, limit),
            ).fetchall()
        return [dict(row) for row in rows]


def _to_deployment(row: sqlite3.Row) -> Deployment:
    return Deployment(
        name=row["name"],
        id=row["id"],
        model_name=row["model_name"],
        model_version=row["model_version"],
        host=row["host"],
        port=row["port"],
        state=row["state"],
        error=row["error"],
        pid=row["pid"],
        started_at=None if row["started_at"] is None else datetime.fromisoformat(row["started_at"]),
        auth_enabled=bool(row["auth_enabled"]),
        primary_key=row["primary_key"],
        secondary_key=row["secondary_key"],
        insights_enabled=bool(row["insights_enabled"]),
        insights_samples=bool(row["insights_samples"]),
        created_at=datetime.fromisoformat(row["created_at"]),
    )


__all__ = ["LocalDeploymentRepository", "utc_now"]
