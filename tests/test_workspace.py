"""The workspace: creation, WAL mode, schema versions and concurrent use."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import opml
from opml.backends.local.migrations import MIGRATIONS

ROOT = Path(__file__).resolve().parent.parent


def test_connect_creates_workspace(tmp_path: Path) -> None:
    home = tmp_path / "new" / "workspace"

    workspace = opml.connect(home)

    assert workspace.home == home.resolve()
    assert (home / "opml.db").is_file()
    assert (home / "artifacts").is_dir()
    assert workspace.backend == "local"


def test_connect_uses_opml_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPML_HOME", str(tmp_path / "from-env"))

    workspace = opml.connect()

    assert workspace.home == (tmp_path / "from-env").resolve()


def test_default_home_is_dot_opml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPML_HOME", raising=False)
    monkeypatch.chdir(tmp_path)

    workspace = opml.connect()

    assert workspace.home == (tmp_path / ".opml").resolve()


def test_metadata_in_wal_mode(workspace: opml.Workspace) -> None:
    with sqlite3.connect(workspace.metadata_path) as connection:
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]

    assert mode == "wal"


def test_schema_version_recorded(workspace: opml.Workspace) -> None:
    with sqlite3.connect(workspace.metadata_path) as connection:
        recorded = connection.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        user_version = connection.execute("PRAGMA user_version").fetchone()[0]

    assert [row[0] for row in recorded] == [migration.version for migration in MIGRATIONS]
    assert user_version == MIGRATIONS[-1].version
    assert workspace.schema_version == MIGRATIONS[-1].version


def test_reopen_applies_no_migration_twice(workspace: opml.Workspace) -> None:
    opml.connect(workspace.home)
    opml.connect(workspace.home)

    with sqlite3.connect(workspace.metadata_path) as connection:
        count = connection.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0]

    assert count == len(MIGRATIONS)


def test_newer_schema_is_rejected(workspace: opml.Workspace) -> None:
    with sqlite3.connect(workspace.metadata_path) as connection:
        connection.execute("INSERT INTO schema_version VALUES (999, 'from a newer opml', 'now')")

    with pytest.raises(opml.OpmlError, match="schema version 999.*upgrade opml"):
        opml.connect(workspace.home)


def test_unwritable_home_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    with pytest.raises(opml.OpmlError, match="OPML_HOME"):
        opml.connect(blocker / "workspace")


def test_summary_counts_datasets(workspace: opml.Workspace) -> None:
    workspace.datasets.register_sample()

    summary = workspace.summary()

    assert summary.datasets == 1
    assert summary.dataset_versions == 1


def test_activity_lists_newest_first(workspace: opml.Workspace, tmp_path: Path) -> None:
    data = tmp_path / "tiny.csv"
    data.write_text("a,b\n1,2\n")
    workspace.datasets.register_from_file("tiny", data)
    workspace.datasets.delete_version("tiny", 1)

    activity = workspace.recent_activity()

    assert [item.message for item in activity] == [
        "Deleted dataset version tiny:1",
        f"Registered dataset tiny:1 (1 rows) from {data.resolve()}",
    ]


def test_processes_write_concurrently(tmp_path: Path) -> None:
    home = str(tmp_path / "shared-workspace")
    opml.connect(home)
    per_worker = 15
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.concurrent_writer", home, str(worker), str(per_worker)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(3)
    ]

    errors = [process.communicate(timeout=120)[1] for process in workers]

    assert [process.returncode for process in workers] == [0, 0, 0], errors
    workspace = opml.connect(home)
    with sqlite3.connect(workspace.metadata_path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for worker in range(3):
        assert [version.version for version in workspace.datasets.versions(f"w{worker}")] == list(
            range(1, per_worker + 1)
        )
    shared_versions = [version.version for version in workspace.datasets.versions("shared")]
    assert shared_versions == list(range(1, 3 * per_worker + 1))
    folders = list((workspace.artifact_path / "datasets").iterdir())
    assert len(folders) == 6 * per_worker
