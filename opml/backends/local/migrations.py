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
)
