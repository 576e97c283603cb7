"""The SQLite metadata file of a local workspace: connections and migrations.

Each call opens its own connection, so Streamlit's script threads, run
workers and CLI commands never share one. The file is in WAL mode, so readers
never block the single writer. Every write transaction starts with
``BEGIN IMMEDIATE``, so a writer waits for the lock up front (up to
``BUSY_TIMEOUT_S``). A deferred transaction would instead fail with
"database is locked" when it tries to upgrade its read lock.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from opml.backends.local.migrations import MIGRATIONS
from opml.errors import OpmlError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0


def utc_now() -> str:
    """Return the current UTC time as an ISO 8601 string, the stored format."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class MetadataStore:
    """One SQLite file with the schema brought to the newest version on open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._enable_wal()
        self.schema_version = self._migrate()

    @property
    def latest_schema_version(self) -> int:
        return MIGRATIONS[-1].version

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA synchronous = NORMAL")
        return connection

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Yield a connection for queries, outside any transaction."""
        connection = self._connect()
        try:
            yield connection
        finally:
            connection.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """Yield a connection inside one write transaction, committed on success."""
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    def _enable_wal(self) -> None:
        # The journal mode is stored in the file, so this matters only the
        # first time; later opens find WAL already set.
        with self.read() as connection:
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise OpmlError(
                f"The metadata file {self.path} could not be switched to WAL mode "
                f"(SQLite reported {mode!r}); put OPML_HOME on a local disk."
            )

    def _migrate(self) -> int:
        """Apply the migrations this file has not seen and return its schema version."""
        with self.write() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY,"
                " description TEXT NOT NULL,"
                " applied_at TEXT NOT NULL)"
            )
            current = connection.execute(
                "SELECT COALESCE(MAX(version), 0) FROM schema_version"
            ).fetchone()[0]
            if current > self.latest_schema_version:
                raise OpmlError(
                    f"The workspace metadata at {self.path} has schema version {current}, "
                    f"newer than this opml supports ({self.latest_schema_version}); "
                    "upgrade opml to open it."
                )

            for migration in MIGRATIONS:
                if migration.version <= current:
                    continue
                for statement in migration.statements:
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.description, utc_now()),
                )
                connection.execute(f"PRAGMA user_version = {migration.version}")
                log.info("Applied migration %d (%s) to %s", migration.version, migration.description, self.path)
                current = migration.version
        return current
