"""Schema migrations of the metadata file, applied in order on open.

A migration, once released, never changes: a new schema is a new entry at
the end of ``MIGRATIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="datasets, dataset versions and the activity log",
        statements=(
            """
            CREATE TABLE datasets (
                name TEXT PRIMARY KEY,
                created_at TEXT NOT NULL,
                last_version INTEGER NOT NULL DEFAULT 0
            )
            """,
            """
            CREATE TABLE dataset_versions (
                id TEXT PRIMARY KEY,
                dataset_name TEXT NOT NULL REFERENCES datasets (name),
                version INTEGER NOT NULL,
                description TEXT NOT NULL,
                origin TEXT NOT NULL,
                origin_kind TEXT NOT NULL,
                source_format TEXT NOT NULL,
                delimiter TEXT,
                sha256 TEXT NOT NULL,
                size_bytes INTEGER NOT NULL,
                row_count INTEGER NOT NULL,
                column_count INTEGER NOT NULL,
                profile_json TEXT NOT NULL,
                artifact_path TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (dataset_name, version)
            )
            """,
            """
            CREATE TABLE activity (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at TEXT NOT NULL,
                kind TEXT NOT NULL,
                message TEXT NOT NULL
            )
            """,
        ),
    ),
    Migration(
        version=2,
        description="AutoML runs, child runs and the model registry",
        statements=(
            """
            CREATE TABLE runs (
                id TEXT PRIMARY KEY,
                experiment TEXT NOT NULL,
                kind TEXT NOT NULL,
                status TEXT NOT NULL,
                dataset_name TEXT NOT NULL,
                dataset_version INTEGER NOT NULL,
                settings_json TEXT NOT NULL,
                created_at TEXT NOT NULL,
                started_at TEXT,
                ended_at TEXT,
                error TEXT,
                supervisor_pid INTEGER,
                supervisor_start INTEGER,
                worker_pid INTEGER,
                worker_start INTEGER,
                cancel_requested INTEGER NOT NULL DEFAULT 0,
                best_iteration INTEGER,
                result_json TEXT
            )
            """,
            "CREATE INDEX runs_by_status ON runs (status, created_at)",
            """
            CREATE TABLE child_runs (
                run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                iteration INTEGER NOT NULL,
                algorithm TEXT NOT NULL,
                hyperparameters_json TEXT NOT NULL,
                status TEXT NOT NULL,
                duration_s REAL NOT NULL,
                metrics_json TEXT NOT NULL,
                charts_json TEXT NOT NULL,
                model_path TEXT,
                feature_importance_json TEXT,
                created_at TEXT NOT NULL,
                PRIMARY KEY (run_id, iteration)
            )
            """,
            """
            CREATE TABLE model_names (
                name TEXT PRIMARY KEY,
                last_version INTEGER NOT NULL DEFAULT 0
            )
            """,
            """
            CREATE TABLE models (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                version INTEGER NOT NULL,
                description TEXT NOT NULL,
                run_id TEXT NOT NULL,
                child_iteration INTEGER NOT NULL,
                algorithm TEXT NOT NULL,
                primary_metric TEXT NOT NULL,
                dataset_name TEXT NOT NULL,
                dataset_version INTEGER NOT NULL,
                metrics_json TEXT NOT NULL,
                schema_json TEXT NOT NULL,
                charts_json TEXT NOT NULL,
                feature_importance_json TEXT NOT NULL,
                artifact_path TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (name, version)
            )
            """,
        ),
    ),
    Migration(
        version=3,
        description="deployments and their request telemetry",
        statements=(
            """
            CREATE TABLE deployments (
                name TEXT PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                model_name TEXT NOT NULL,
                model_version INTEGER NOT NULL,
                host TEXT NOT NULL,
                port INTEGER,
                requested_port INTEGER,
                workers INTEGER NOT NULL,
                unknown_categories TEXT NOT NULL,
                state TEXT NOT NULL,
                error TEXT,
                pid INTEGER,
                process_start INTEGER,
                started_at TEXT,
                auth_enabled INTEGER NOT NULL,
                primary_key TEXT NOT NULL,
                secondary_key TEXT NOT NULL,
                insights_enabled INTEGER NOT NULL DEFAULT 0,
                insights_samples INTEGER NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE requests (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                deployment_id TEXT NOT NULL,
                at TEXT NOT NULL,
                request_id TEXT NOT NULL,
                status INTEGER NOT NULL,
                latency_ms REAL NOT NULL,
                rows INTEGER NOT NULL,
                payload_bytes INTEGER NOT NULL,
                model_version INTEGER NOT NULL,
                input_sample TEXT,
                output_sample TEXT
            )
            """,
            "CREATE INDEX requests_by_deployment ON requests (deployment_id, at)",
        ),
    ),
    Migration(
        version=4,
        description="benchmark results",
        statements=(
            """
            CREATE TABLE benchmarks (
                id TEXT PRIMARY KEY,
                created_at TEXT NOT NULL,
                tool TEXT NOT NULL,
                scoring_uri TEXT NOT NULL,
                deployment TEXT,
                model_version INTEGER,
                insights_enabled INTEGER,
                settings_json TEXT NOT NULL,
                summary_json TEXT NOT NULL,
                series_json TEXT NOT NULL,
                latencies_json TEXT NOT NULL,
                command TEXT NOT NULL
            )
            """,
        ),
    ),
    Migration(
        version=5,
        description="pipelines, pipeline runs and steps, published pipelines, API tokens, schedules, services",
        statements=(
            """
            CREATE TABLE pipelines (
                name TEXT NOT NULL,
                version INTEGER NOT NULL,
                description TEXT NOT NULL,
                definition_json TEXT NOT NULL,
                created_at TEXT NOT NULL,
                PRIMARY KEY (name, version)
            )
            """,
            """
            CREATE TABLE published_pipelines (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                pipeline_version INTEGER NOT NULL,
                description TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at TEXT NOT NULL,
                FOREIGN KEY (name, pipeline_version) REFERENCES pipelines (name, version)
            )
            """,
            """
            CREATE TABLE pipeline_runs (
                id TEXT PRIMARY KEY,
                pipeline_name TEXT NOT NULL,
                pipeline_version INTEGER NOT NULL,
                published_id TEXT,
                experiment TEXT NOT NULL,
                trigger TEXT NOT NULL,
                status TEXT NOT NULL,
                parameters_json TEXT NOT NULL,
                definition_json TEXT NOT NULL,
                created_at TEXT NOT NULL,
                started_at TEXT,
                ended_at TEXT,
                error TEXT,
                pid INTEGER,
                process_start INTEGER,
                cancel_requested INTEGER NOT NULL DEFAULT 0
            )
            """,
            """
            CREATE TABLE pipeline_steps (
                run_id TEXT NOT NULL REFERENCES pipeline_runs (id),
                position INTEGER NOT NULL,
                name TEXT NOT NULL,
                status TEXT NOT NULL,
                fingerprint TEXT,
                reused_from TEXT,
                started_at TEXT,
                ended_at TEXT,
                error TEXT,
                outputs_json TEXT NOT NULL DEFAULT '{}',
                PRIMARY KEY (run_id, position)
            )
            """,
            "CREATE INDEX pipeline_steps_by_fingerprint ON pipeline_steps (name, fingerprint)",
            """
            CREATE TABLE api_tokens (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                token_sha256 TEXT NOT NULL UNIQUE,
                created_at TEXT NOT NULL,
                revoked_at TEXT,
                last_used_at TEXT
            )
            """,
            """
            CREATE TABLE schedules (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                published_id TEXT NOT NULL REFERENCES published_pipelines (id),
                interval_s REAL,
                cron TEXT,
                experiment TEXT NOT NULL,
                parameters_json TEXT NOT NULL,
                status TEXT NOT NULL,
                next_run_at TEXT,
                last_run_at TEXT,
                last_run_id TEXT,
                last_error TEXT,
                created_at TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE services (
                name TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                port INTEGER,
                instance_id TEXT,
                pid INTEGER,
                process_start INTEGER,
                started_at TEXT,
                error TEXT
            )
            """,
        ),
    ),
    Migration(
        version=6,
        description="the default publication that a pipeline name's endpoint runs",
        statements=(
            """
            CREATE TABLE pipeline_endpoints (
                name TEXT PRIMARY KEY,
                default_published_id TEXT NOT NULL REFERENCES published_pipelines (id),
                updated_at TEXT NOT NULL
            )
            """,
        ),
    ),
)
