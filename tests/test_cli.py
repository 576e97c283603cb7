"""The ``opml`` command line, run as a user runs it: a separate process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_SHA256, FileServer, free_port


def run_opml(home: Path, *arguments: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "opml", *arguments],
        capture_output=True,
        text=True,
        input=stdin,
        env={"OPML_HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=timeout,
    )


def list_json(home: Path) -> list:
    result = run_opml(home, "datasets", "list", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_register_sample_then_list(tmp_path: Path) -> None:
    registered = run_opml(tmp_path, "datasets", "register-sample", "--json")

    listed = list_json(tmp_path)
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["ref"] == "bankmarketing:1"
    assert [item["name"] for item in listed] == ["bankmarketing"]
    assert listed[0]["latest"]["rows"] == 32950
    assert listed[0]["latest"]["columns"] == 21
    assert listed[0]["versions"] == [1]


def test_list_as_table(tmp_path: Path) -> None:
    run_opml(tmp_path, "datasets", "register-sample")

    result = run_opml(tmp_path, "datasets", "list")

    assert result.returncode == 0
    assert "bankmarketing" in result.stdout
    assert "32,950" in result.stdout


def test_show_json_has_profile(tmp_path: Path) -> None:
    run_opml(tmp_path, "datasets", "register-sample")

    result = run_opml(tmp_path, "datasets", "show", "bankmarketing:1", "--json")

    version = json.loads(result.stdout)
    assert version["sha256"] == SAMPLE_SHA256
    assert version["all_versions"] == [1]
    assert [column["name"] for column in version["profile"]["column_profiles"]][-1] == "y"


def test_show_text(tmp_path: Path) -> None:
    run_opml(tmp_path, "datasets", "register-sample")

    result = run_opml(tmp_path, "datasets", "show", "bankmarketing")

    assert result.returncode == 0
    assert "bankmarketing:1  (32,950 rows, 21 columns)" in result.stdout
    assert "admin. (8,339)" in result.stdout


def test_preview_json(tmp_path: Path) -> None:
    run_opml(tmp_path, "datasets", "register-sample")

    result = run_opml(tmp_path, "datasets", "preview", "bankmarketing", "--rows", "2", "--json")

    rows = json.loads(result.stdout)
    assert [row["age"] for row in rows] == [57, 55]


def test_register_url_twice(tmp_path: Path, file_server: FileServer) -> None:
    url = file_server.url("bankmarketing_train.csv")

    first = run_opml(tmp_path, "datasets", "register", "--name", "bm-url", "--url", url, "--json")
    second = run_opml(tmp_path, "datasets", "register", "--name", "bm-url", "--url", url, "--json")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    created, unchanged = json.loads(first.stdout), json.loads(second.stdout)
    assert created["sha256"] == SAMPLE_SHA256
    assert (created["created"], unchanged["created"]) == (True, False)
    assert unchanged["version"] == created["version"] == 1


def test_register_file_text_output(tmp_path: Path) -> None:
    data = tmp_path / "tiny.csv"
    data.write_text("a;b\n1;2\n")

    result = run_opml(tmp_path / "ws", "datasets", "register", "--name", "tiny", "--file", str(data))

    assert result.returncode == 0
    assert result.stdout.startswith("Registered tiny:1: 1 rows, 2 columns")


def test_delete_with_yes(tmp_path: Path) -> None:
    run_opml(tmp_path, "datasets", "register-sample")

    result = run_opml(tmp_path, "datasets", "delete", "bankmarketing:1", "--yes")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Deleted bankmarketing:1"
    assert list_json(tmp_path) == []


def test_workspace_json(tmp_path: Path) -> None:
    result = run_opml(tmp_path, "workspace", "--json")

    info = json.loads(result.stdout)
    assert info["home"] == str(tmp_path.resolve())
    assert info["backend"] == "local"
    assert info["schema_version"] >= 1


def bad_inputs(tmp_path: Path, server: FileServer) -> list[tuple[list[str], str]]:
    not_tabular = tmp_path / "notes.txt"
    not_tabular.write_text("just words\nno columns here\n")
    duplicated = tmp_path / "dup.csv"
    duplicated.write_text("id,id\n1,2\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    return [
        (["datasets", "register", "--name", "x", "--url", f"http://127.0.0.1:{free_port()}/a.csv"], "Could not connect"),
        (["datasets", "register", "--name", "x", "--url", server.url("status/404")], "HTTP 404"),
        (["datasets", "register", "--name", "x", "--file", str(empty)], "is empty"),
        (["datasets", "register", "--name", "x", "--file", str(not_tabular)], "not tabular"),
        (["datasets", "register", "--name", "x", "--file", str(duplicated)], "duplicate column names"),
        (["datasets", "register", "--name", "x", "--file", str(tmp_path / "missing.csv")], "File not found"),
        (["datasets", "register", "--name", "bad name", "--file", str(duplicated)], "Invalid dataset name"),
        (["datasets", "register", "--name", "x"], "exactly one of --url or --file"),
        (["datasets", "show", "nope"], "Dataset 'nope' not found"),
        (["datasets", "show", "bankmarketing:9"], "has no version 9"),
        (["datasets", "delete", "bankmarketing"], "Give the version to delete"),
        (["datasets", "delete", "bankmarketing:1"], "without confirmation; add --yes"),
        (["datasets", "delete", "nope:1", "--yes"], "Dataset 'nope' not found"),
    ]


def test_bad_input_one_line_error(tmp_path: Path, file_server: FileServer) -> None:
    home = tmp_path / "ws"
    run_opml(home, "datasets", "register-sample")
    before = list_json(home)

    for arguments, message in bad_inputs(tmp_path, file_server):
        result = run_opml(home, *arguments)

        assert result.returncode == 1, arguments
        assert result.stdout == "", arguments
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: "), result.stderr
        assert message in result.stderr, (arguments, result.stderr)
    assert list_json(home) == before


def test_size_limit_from_environment(tmp_path: Path, sample_csv: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "opml", "datasets", "register", "--name", "big", "--file", str(sample_csv)],
        capture_output=True,
        text=True,
        env={"OPML_HOME": str(tmp_path), "OPML_MAX_DATASET_MB": "1", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )

    assert result.returncode == 1
    assert "larger than the dataset size limit" in result.stderr


@pytest.mark.parametrize("arguments", [["datasets", "list", "--no-such-flag"], ["no-such-command"]])
def test_usage_errors_exit_two(tmp_path: Path, arguments: list[str]) -> None:
    result = run_opml(tmp_path, *arguments)

    assert result.returncode == 2
    assert result.stderr.startswith("error: ")


def test_delete_unknown_dataset_without_version(tmp_path: Path) -> None:
    result = run_opml(tmp_path, "datasets", "delete", "local", "--yes")

    assert result.returncode == 1
    assert "Dataset 'local' not found" in result.stderr


def test_unknown_command_points_to_help(tmp_path: Path) -> None:
    result = run_opml(tmp_path, "datasets", "bogus")

    assert result.returncode == 2
    assert "datasets --help' for usage." in result.stderr
