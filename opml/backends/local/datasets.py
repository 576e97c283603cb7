"""Dataset versions in the local workspace: rows in SQLite, files under artifacts/.

A version's files live in ``artifacts/datasets/<version id>/``: the source
bytes as received and ``data.parquet``, the parsed table that loads fast.
They are written to a staging folder first and moved into place inside the
transaction that inserts the row, so a failed registration leaves neither.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import stat
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from opml.backends.local.activity import record_activity
from opml.backends.local.store import MetadataStore, utc_now
from opml.profiling import DatasetProfile
from opml.records import Dataset, DatasetVersion

log = logging.getLogger(__name__)

DATA_FILE = "data.parquet"
STALE_STAGING_S = 24 * 3600


@dataclass(frozen=True)
class StagedVersion:
    """A parsed, profiled version in a staging folder, not yet in the workspace."""

    id: str
    folder: Path
    name: str
    description: str
    origin: str
    origin_kind: str
    source_format: str
    delimiter: str | None
    sha256: str
    size_bytes: int
    profile: DatasetProfile


class LocalDatasetRepository:
    def __init__(self, store: MetadataStore, artifact_root: Path, staging_root: Path) -> None:
        self._store = store
        self._folder = artifact_root / "datasets"
        self._staging_root = staging_root
        self._folder.mkdir(parents=True, exist_ok=True)
        self._staging_root.mkdir(parents=True, exist_ok=True)

    def staging_folder(self, version_id: str) -> Path:
        folder = self._staging_root / f"dataset-{version_id}"
        folder.mkdir()
        return folder

    def data_path(self, version: DatasetVersion) -> Path:
        with self._store.read() as connection:
            row = connection.execute(
                "SELECT artifact_path FROM dataset_versions WHERE dataset_name = ? AND version = ?",
                (version.name, version.version),
            ).fetchone()
        if row is None:
            raise LookupError(version.ref)
        return self._folder.parent / row["artifact_path"] / DATA_FILE

    def get(self, name: str, version: int | None) -> DatasetVersion | None:
        """Return the given version, or the latest when ``version`` is None."""
        with self._store.read() as connection:
            return self._get(connection, name, version)

    def list_versions(self, name: str) -> list[DatasetVersion]:
        with self._store.read() as connection:
            rows = connection.execute(
                "SELECT * FROM dataset_versions WHERE dataset_name = ? ORDER BY version", (name,)
            ).fetchall()
        return [_to_version(row) for row in rows]

    def list_datasets(self) -> list[Dataset]:
        with self._store.read() as connection:
            rows = connection.execute(
                "SELECT d.created_at AS dataset_created_at, v.* FROM datasets AS d"
                " JOIN dataset_versions AS v ON v.dataset_name = d.name"
                " ORDER BY d.name, v.version"
            ).fetchall()

        grouped: dict[str, list[sqlite3.Row]] = {}
        for row in rows:
            grouped.setdefault(row["dataset_name"], []).append(row)
        return [
            Dataset(
                name=name,
                created_at=datetime.fromisoformat(versions[0]["dataset_created_at"]),
                versions=tuple(row["version"] for row in versions),
                latest=_to_version(versions[-1]),
            )
            for name, versions in grouped.items()
        ]

    def count(self) -> tuple[int, int]:
        """Return the number of datasets with at least one version, and of dataset versions."""
        with self._store.read() as connection:
            datasets = connection.execute("SELECT COUNT(DISTINCT dataset_name) FROM dataset_versions").fetchone()[0]
            versions = connection.execute("SELECT COUNT(*) FROM dataset_versions").fetchone()[0]
        return datasets, versions

    def add(self, staged: StagedVersion) -> tuple[DatasetVersion, bool]:
        """Move a staged version into the workspace as the next version of its name.

        Returns the new version and True, or, when the latest version already
        has the same sha256, that version and False (the staged files are
        dropped). The check runs under the write lock, so two processes
        registering the same file at once create one version.
        """
        final_folder = self._folder / staged.id
        try:
            with self._store.write() as connection:
                latest = self._get(connection, staged.name, None)
                if latest is not None and latest.sha256 == staged.sha256:
                    return latest, False

                version = self._next_version(connection, staged.name)
                connection.execute(
                    "INSERT INTO dataset_versions (id, dataset_name, version, description, origin, origin_kind,"
                    " source_format, delimiter, sha256, size_bytes, row_count, column_count, profile_json,"
                    " artifact_path, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        staged.id,
                        staged.name,
                        version,
                        staged.description,
                        staged.origin,
                        staged.origin_kind,
                        staged.source_format,
                        staged.delimiter,
                        staged.sha256,
                        staged.size_bytes,
                        staged.profile.rows,
                        staged.profile.columns,
                        json.dumps(staged.profile.to_dict()),
                        f"datasets/{staged.id}",
                        utc_now(),
                    ),
                )
                record_activity(
                    connection,
                    "dataset",
                    f"Registered dataset {staged.name}:{version} ({staged.profile.rows:,} rows) from {staged.origin}",
                )
                os.replace(staged.folder, final_folder)
                _make_read_only(final_folder)
                created = self._get(connection, staged.name, version)
        except BaseException:
            if final_folder.exists():
                shutil.rmtree(final_folder, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(staged.folder, ignore_errors=True)

        log.info("Registered dataset %s:%d (id %s)", staged.name, version, staged.id)
        return created, True

    def delete(self, name: str, version: int) -> bool:
        """Delete one version; return False when it does not exist."""
        with self._store.write() as connection:
            row = connection.execute(
                "SELECT id, artifact_path FROM dataset_versions WHERE dataset_name = ? AND version = ?",
                (name, version),
            ).fetchone()
            if row is None:
                return False
            # The datasets row stays, even without versions, so its version counter
            # keeps runs' and models' lineage unambiguous: a number is never reused.
            connection.execute("DELETE FROM dataset_versions WHERE id = ?", (row["id"],))
            record_activity(connection, "dataset", f"Deleted dataset version {name}:{version}")

        # Files go after the commit: a crash in between leaves an orphan
        # folder, which remove_orphans() clears, never a row without files.
        _remove_tree(self._folder.parent / row["artifact_path"])
        log.info("Deleted dataset %s:%d (id %s)", name, version, row["id"])
        return True

    def remove_orphans(self) -> None:
        """Remove version folders without a row, and staging folders older than a day."""
        with self._store.write() as connection:
            known = {row[0] for row in connection.execute("SELECT id FROM dataset_versions")}
            for folder in self._folder.iterdir():
                if folder.is_dir() and folder.name not in known:
                    log.warning("Removing dataset folder %s, which no dataset version refers to", folder)
                    _remove_tree(folder)

        cutoff = time.time() - STALE_STAGING_S
        for folder in self._staging_root.glob("dataset-*"):
            try:
                stale = folder.stat().st_mtime < cutoff
            except FileNotFoundError:
                continue  # its registration finished or failed meanwhile
            if stale:
                log.warning("Removing stale staging folder %s", folder)
                _remove_tree(folder)

    def _get(self, connection: sqlite3.Connection, name: str, version: int | None) -> DatasetVersion | None:
        if version is None:
            row = connection.execute(
                "SELECT * FROM dataset_versions WHERE dataset_name = ? ORDER BY version DESC LIMIT 1", (name,)
            ).fetchone()
        else:
            row = connection.execute(
                "SELECT * FROM dataset_versions WHERE dataset_name = ? AND version = ?", (name, version)
            ).fetchone()
        return None if row is None else _to_version(row)

    def _next_version(self, connection: sqlite3.Connection, name: str) -> int:
        # Version numbers are never reused, even after every version is deleted.
        connection.execute(
            "INSERT INTO datasets (name, created_at, last_version) VALUES (?, ?, 0) ON CONFLICT (name) DO NOTHING",
            (name, utc_now()),
        )
        connection.execute("UPDATE datasets SET last_version = last_version + 1 WHERE name = ?", (name,))
        return connection.execute("SELECT last_version FROM datasets WHERE name = ?", (name,)).fetchone()[0]


def _to_version(row: sqlite3.Row) -> DatasetVersion:
    return DatasetVersion(
        name=row["dataset_name"],
        version=row["version"],
        description=row["description"],
        origin=row["origin"],
        origin_kind=row["origin_kind"],
        source_format=row["source_format"],
        delimiter=row["delimiter"],
        sha256=row["sha256"],
        size_bytes=row["size_bytes"],
        rows=row["row_count"],
        columns=row["column_count"],
        created_at=datetime.fromisoformat(row["created_at"]),
        profile=DatasetProfile.from_dict(json.loads(row["profile_json"])),
    )


def _make_read_only(folder: Path) -> None:
    for path in folder.iterdir():
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def _remove_tree(folder: Path) -> None:
    # The files are read-only; their folder is not, so removal needs no chmod.
    shutil.rmtree(folder, ignore_errors=True)
