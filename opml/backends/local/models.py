"""Registered models in the local workspace: rows in SQLite, files under artifacts/models/<id>/."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import uuid
from datetime import datetime
from pathlib import Path

from opml.backends.local.activity import record_activity
from opml.backends.local.store import MetadataStore, utc_now
from opml.records import Model

MODEL_FILE = "model.joblib"


class LocalModelRepository:
    def __init__(self, store: MetadataStore, artifact_root: Path) -> None:
        self._store = store
        self._root = artifact_root
        self.folder = artifact_root / "models"
        self.folder.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, description: str, source_file: Path, record: dict) -> Model:
        """Copy ``source_file`` into the workspace and register it as the next version of ``name``."""
        model_id = uuid.uuid4().hex
        staging = self.folder / f".staging-{model_id}"
        final = self.folder / model_id
        staging.mkdir()
        try:
            shutil.copyfile(source_file, staging / MODEL_FILE)
            digest = hashlib.sha256((staging / MODEL_FILE).read_bytes()).hexdigest()
            (staging / MODEL_FILE).chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            with self._store.write() as connection:
                connection.execute(
                    "INSERT INTO model_names (name, last_version) VALUES (?, 0) ON CONFLICT (name) DO NOTHING", (name,)
                )
                connection.execute("UPDATE model_names SET last_version = last_version + 1 WHERE name = ?", (name,))
                version = connection.execute("SELECT last_version FROM model_names WHERE name = ?", (name,)).fetchone()[0]
                connection.execute(
                    "INSERT INTO models (id, name, version, description, run_id, child_iteration, algorithm,"
                    " primary_metric, dataset_name, dataset_version, metrics_json, schema_json, charts_json,"
                    " feature_importance_json, artifact_path, sha256, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        model_id,
                        name,
                        version,
                        description,
                        record["run_id"],
                        record["child_iteration"],
                        record["algorithm"],
                        record["primary_metric"],
                        record["dataset_name"],
                        record["dataset_version"],
                        json.dumps(record["metrics"]),
                        json.dumps(record["schema"]),
                        json.dumps(record["charts"]),
                        json.dumps(record["feature_importance"]),
                        f"models/{model_id}",
                        digest,
                        utc_now(),
                    ),
                )
                record_activity(
                    connection,
                    "model",
                    f"Registered model {name}:{version} ({record['algorithm']}) from run {record['run_id']}",
                )
                os.replace(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.get(name, version)

    def get(self, name: str, version: int | None) -> Model | None:
        with self._store.read() as connection:
            if version is None:
                row = connection.execute(
                    "SELECT * FROM models WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
                ).fetchone()
            else:
                row = connection.execute("SELECT * FROM models WHERE name = ? AND version = ?", (name, version)).fetchone()
        return None if row is None else _to_model(row)

    def list(self, name: str | None = None) -> list[Model]:
        with self._store.read() as connection:
            if name is None:
                rows = connection.execute("SELECT * FROM models ORDER BY name, version").fetchall()
            else:
                rows = connection.execute("SELECT * FROM models WHERE name = ? ORDER BY version", (name,)).fetchall()
        return [_to_model(row) for row in rows]

    def count(self) -> int:
        with self._store.read() as connection:
            return connection.execute("SELECT COUNT(*) FROM models").fetchone()[0]

    def file_path(self, model: Model) -> Path:
        return self.folder / model.id / MODEL_FILE

    def delete(self, name: str, version: int) -> bool:
        with self._store.write() as connection:
            row = connection.execute("SELECT id FROM models WHERE name = ? AND version = ?", (name, version)).fetchone()
            if row is None:
                return False
            connection.execute("DELETE FROM models WHERE id = ?", (row["id"],))
            record_activity(connection, "model", f"Deleted model {name}:{version}")
        shutil.rmtree(self.folder / row["id"], ignore_errors=True)
        return True


def _to_model(row: sqlite3.Row) -> Model:
    return Model(
        id=row["id"],
        name=row["name"],
        version=row["version"],
        description=row["description"],
        run_id=row["run_id"],
        child_iteration=row["child_iteration"],
        algorithm=row["algorithm"],
        primary_metric=row["primary_metric"],
        dataset_name=row["dataset_name"],
        dataset_version=row["dataset_version"],
        metrics=json.loads(row["metrics_json"]),
        schema=json.loads(row["schema_json"]),
        charts=json.loads(row["charts_json"]),
        feature_importance=json.loads(row["feature_importance_json"]),
        sha256=row["sha256"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )
