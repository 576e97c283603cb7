"""The datasets service on a real workspace: formats, versions, profiles and bad input."""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import opml
from opml.datasets import parse_dataset_ref
from tests.conftest import SAMPLE_SHA256


def snapshot(workspace: opml.Workspace) -> tuple:
    """Everything a failed registration must leave as it was: rows and files."""
    with sqlite3.connect(workspace.metadata_path) as connection:
        versions = connection.execute("SELECT id, dataset_name, version FROM dataset_versions ORDER BY id").fetchall()
        datasets = connection.execute("SELECT * FROM datasets ORDER BY name").fetchall()
    folders = sorted(path.name for path in (workspace.artifact_path / "datasets").iterdir())
    staging = sorted(path.name for path in (workspace.home / "staging").iterdir())
    return versions, datasets, folders, staging


def test_sample_registers_with_profile(workspace: opml.Workspace) -> None:
    registration = workspace.datasets.register_sample()

    version = registration.version
    assert registration.created
    assert version.ref == "bankmarketing:1"
    assert (version.rows, version.columns) == (32950, 21)
    assert version.sha256 == SAMPLE_SHA256
    assert version.origin_kind == "sample"
    assert "Bank Marketing" in version.description
    label = version.profile.column("y")
    assert label.kind == "categorical"
    assert {item.value: item.count for item in label.top_values} == {"no": 29258, "yes": 3692}
    age = version.profile.column("age")
    assert age.kind == "numeric"
    assert (age.min, age.max, age.missing) == (17.0, 98.0, 0)
    assert sum(bin.count for bin in age.histogram) == 32950


def test_sample_twice_returns_same_version(workspace: opml.Workspace) -> None:
    first = workspace.datasets.register_sample()

    second = workspace.datasets.register_sample()

    assert not second.created
    assert second.version == first.version
    assert workspace.datasets.versions("bankmarketing") == [first.version]


def test_file_registers_and_loads(workspace: opml.Workspace, sample_csv: Path) -> None:
    registration = workspace.datasets.register_from_file("bm", sample_csv, description="local copy")

    frame = workspace.datasets.load("bm")
    assert registration.version.sha256 == hashlib.sha256(sample_csv.read_bytes()).hexdigest()
    assert registration.version.origin == str(sample_csv.resolve())
    assert frame.shape == (32950, 21)
    pd.testing.assert_frame_equal(frame, pd.read_csv(sample_csv), check_dtype=False)


def test_semicolon_quoted_csv(workspace: opml.Workspace, tmp_path: Path) -> None:
    uci_style = tmp_path / "bank-additional.csv"
    uci_style.write_text(
        '"age";"job";"marital";"y"\n'
        '56;"housemaid";"married";"no"\n'
        '57;"services";"married; separated";"no"\n'
        '37;"admin.";"single";"yes"\n'
    )

    version = workspace.datasets.register_from_file("uci", uci_style).version

    frame = workspace.datasets.load("uci")
    assert version.delimiter == ";"
    assert list(frame.columns) == ["age", "job", "marital", "y"]
    assert frame["marital"].tolist() == ["married", "married; separated", "single"]
    assert frame["age"].dtype.kind == "i"


@pytest.mark.parametrize("delimiter", ["\t", "|"])
def test_other_delimiters_detected(workspace: opml.Workspace, tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "data.txt"
    path.write_text(delimiter.join(["x", "y", "label"]) + "\n" + delimiter.join(["1", "2.5", "a"]) + "\n")

    version = workspace.datasets.register_from_file("delimited", path).version

    assert version.delimiter == delimiter
    assert version.columns == 3


def test_parquet_registers(workspace: opml.Workspace, tmp_path: Path) -> None:
    frame = pd.DataFrame({"amount": [1.5, None, 3.0], "city": ["Lisbon", "Porto", None]})
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)

    version = workspace.datasets.register_from_file("pq", path).version

    assert version.source_format == "parquet"
    assert version.delimiter is None
    assert version.profile.column("amount").missing == 1
    assert version.profile.column("city").missing == 1
    pd.testing.assert_frame_equal(workspace.datasets.load("pq"), frame, check_dtype=False)


def test_gzipped_csv_registers(workspace: opml.Workspace, tmp_path: Path) -> None:
    path = tmp_path / "data.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n1,x\n2,y\n"))

    version = workspace.datasets.register_from_file("gz", path).version

    assert version.rows == 2
    assert version.source_format == "csv"


def test_latin1_csv_registers(workspace: opml.Workspace, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("city,population\nSão Paulo,12\n".encode("latin-1"))

    workspace.datasets.register_from_file("latin", path)

    assert workspace.datasets.load("latin")["city"].tolist() == ["São Paulo"]


def test_profile_statistics(workspace: opml.Workspace) -> None:
    content = b"score,grade,passed\n1,a,true\n2,b,false\n3,a,true\n,a,\n"

    profile = workspace.datasets.register_from_bytes("stats", content, filename="stats.csv").version.profile

    score = profile.column("score")
    assert (score.min, score.max, score.mean, score.missing, score.distinct) == (1.0, 3.0, 2.0, 1, 3)
    assert score.std == pytest.approx(1.0)
    grade = profile.column("grade")
    assert [(item.value, item.count) for item in grade.top_values] == [("a", 3), ("b", 1)]
    assert grade.std is None
    assert profile.column("passed").kind == "categorical"


def test_new_content_creates_version(workspace: opml.Workspace) -> None:
    service = workspace.datasets
    first = service.register_from_bytes("evolving", b"a,b\n1,2\n", filename="v1.csv").version

    second = service.register_from_bytes("evolving", b"a,b\n1,2\n3,4\n", filename="v2.csv").version

    assert (first.version, second.version) == (1, 2)
    assert service.get("evolving").version == 2
    assert service.get("evolving", 1).rows == 1
    assert [item.version for item in service.versions("evolving")] == [1, 2]
    assert service.list()[0].versions == (1, 2)


def test_content_equal_to_older_version_is_new(workspace: opml.Workspace) -> None:
    service = workspace.datasets
    service.register_from_bytes("flip", b"a,b\n1,2\n", filename="one.csv")
    service.register_from_bytes("flip", b"a,b\n3,4\n", filename="two.csv")

    third = service.register_from_bytes("flip", b"a,b\n1,2\n", filename="one-again.csv")

    assert third.created
    assert third.version.version == 3


def test_versions_are_not_reused(workspace: opml.Workspace) -> None:
    service = workspace.datasets
    service.register_from_bytes("numbered", b"a,b\n1,2\n", filename="1.csv")
    service.register_from_bytes("numbered", b"a,b\n3,4\n", filename="2.csv")
    service.delete_version("numbered", 2)

    third = service.register_from_bytes("numbered", b"a,b\n5,6\n", filename="3.csv").version

    assert third.version == 3


def test_preview_returns_first_rows(workspace: opml.Workspace) -> None:
    workspace.datasets.register_sample()

    preview = workspace.datasets.preview("bankmarketing", rows=5)

    assert len(preview) == 5
    assert preview.iloc[0]["age"] == 57
    assert preview.iloc[1]["job"] == "unknown"


def test_files_are_read_only(workspace: opml.Workspace) -> None:
    workspace.datasets.register_from_bytes("frozen", b"a,b\n1,2\n", filename="frozen.csv")

    (folder,) = (workspace.artifact_path / "datasets").iterdir()

    assert sorted(path.name for path in folder.iterdir()) == ["data.parquet", "source.csv"]
    assert all(not path.stat().st_mode & 0o222 for path in folder.iterdir())


def test_delete_version_keeps_others(workspace: opml.Workspace) -> None:
    service = workspace.datasets
    service.register_from_bytes("pair", b"a,b\n1,2\n", filename="1.csv")
    service.register_from_bytes("pair", b"a,b\n3,4\n", filename="2.csv")

    service.delete_version("pair", 1)

    assert [item.version for item in service.versions("pair")] == [2]
    assert len(list((workspace.artifact_path / "datasets").iterdir())) == 1
    with pytest.raises(opml.NotFoundError, match="no version 1; its versions are 2"):
        service.get("pair", 1)


def test_delete_last_version_removes_dataset(workspace: opml.Workspace) -> None:
    workspace.datasets.register_from_bytes("single", b"a,b\n1,2\n", filename="1.csv")

    workspace.datasets.delete_version("single", 1)

    assert workspace.datasets.list() == []
    assert list((workspace.artifact_path / "datasets").iterdir()) == []


def test_orphan_folders_removed_on_open(workspace: opml.Workspace) -> None:
    orphan = workspace.artifact_path / "datasets" / "0123abcd"
    orphan.mkdir()
    (orphan / "data.parquet").write_bytes(b"left by a crash")

    opml.connect(workspace.home)

    assert not orphan.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"   \n\n", "is empty"),
        (b"a,b\n", "has a header but no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "contains binary data"),
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "looks like HTML"),
        (b'{"a": 1, "b": 2}', "looks like JSON"),
        (b"just one column\nof words\n", "not tabular"),
        (b"id,amount,id\n1,2,3\n", "duplicate column names: 'id'"),
        (b"a,b\n1,2\n3,4,5,6\n", "could not be parsed as CSV"),
        (b"PAR1 this is not parquet", "not a readable Parquet file"),
    ],
)
def test_bad_content_rejected(workspace: opml.Workspace, content: bytes, message: str) -> None:
    workspace.datasets.register_from_bytes("kept", b"a,b\n1,2\n", filename="kept.csv")
    before = snapshot(workspace)

    with pytest.raises(opml.OpmlError, match=message) as raised:
        workspace.datasets.register_from_bytes("kept", content, filename="bad-upload.csv")

    assert "bad-upload.csv" in raised.value.message
    assert snapshot(workspace) == before


def test_duplicate_parquet_columns_rejected(workspace: opml.Workspace, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table([[1], [2]], names=["x", "x"]), path)

    with pytest.raises(opml.OpmlError, match="duplicate column names: 'x'"):
        workspace.datasets.register_from_file("dup", path)

    assert workspace.datasets.list() == []


def test_missing_file_rejected(workspace: opml.Workspace, tmp_path: Path) -> None:
    with pytest.raises(opml.OpmlError, match="File not found: '.*nowhere.csv'"):
        workspace.datasets.register_from_file("ghost", tmp_path / "nowhere.csv")


def test_size_limit_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_csv: Path) -> None:
    monkeypatch.setenv("OPML_MAX_DATASET_MB", "1")
    workspace = opml.connect(tmp_path / "limited")

    with pytest.raises(opml.OpmlError, match="larger than the dataset size limit.*OPML_MAX_DATASET_MB"):
        workspace.datasets.register_from_file("big", sample_csv)
    with pytest.raises(opml.OpmlError, match="larger than the dataset size limit"):
        workspace.datasets.register_from_bytes("big", sample_csv.read_bytes(), filename="big.csv")
    with pytest.raises(opml.OpmlError, match="larger than the dataset size limit"):
        workspace.datasets.register_sample()

    assert snapshot(workspace) == ([], [], [], [])


@pytest.mark.parametrize("value", ["0", "-3", "lots"])
def test_invalid_size_setting_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("OPML_MAX_DATASET_MB", value)

    with pytest.raises(opml.OpmlError, match=f"Invalid OPML_MAX_DATASET_MB={value!r}"):
        opml.connect(tmp_path / "ws")


@pytest.mark.parametrize("name", ["has space", "-leading", "a:b", "x" * 101, "slash/name"])
def test_invalid_name_rejected(workspace: opml.Workspace, name: str) -> None:
    with pytest.raises(opml.OpmlError, match="Invalid dataset name"):
        workspace.datasets.register_from_bytes(name, b"a,b\n1,2\n", filename="ok.csv")

    assert workspace.datasets.list() == []


def test_unknown_dataset_named(workspace: opml.Workspace) -> None:
    workspace.datasets.register_sample()

    with pytest.raises(opml.NotFoundError, match="Dataset 'nope' not found; registered datasets: bankmarketing"):
        workspace.datasets.get("nope")
    with pytest.raises(opml.NotFoundError, match="Dataset 'nope' not found"):
        workspace.datasets.load("nope")
    with pytest.raises(opml.NotFoundError, match="bankmarketing' has no version 4"):
        workspace.datasets.delete_version("bankmarketing", 4)


def test_invalid_preview_rows_rejected(workspace: opml.Workspace) -> None:
    workspace.datasets.register_sample()

    with pytest.raises(opml.OpmlError, match="Invalid number of preview rows 0"):
        workspace.datasets.preview("bankmarketing", rows=0)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("bankmarketing", ("bankmarketing", None)), ("bankmarketing:3", ("bankmarketing", 3))],
)
def test_dataset_ref_parsed(ref: str, expected: tuple) -> None:
    assert parse_dataset_ref(ref) == expected


@pytest.mark.parametrize("ref", ["bankmarketing:0", "bankmarketing:latest", "bankmarketing:-1"])
def test_bad_dataset_ref_rejected(ref: str) -> None:
    with pytest.raises(opml.OpmlError, match="Invalid dataset version"):
        parse_dataset_ref(ref)


@pytest.mark.parametrize("name", ["", "   "])
def test_missing_name_rejected(workspace: opml.Workspace, name: str) -> None:
    with pytest.raises(opml.OpmlError, match="Missing dataset name"):
        workspace.datasets.register_from_bytes(name, b"a,b\n1,2\n", filename="ok.csv")


def test_versions_not_reused_after_all_deleted(workspace: opml.Workspace) -> None:
    service = workspace.datasets
    service.register_from_bytes("again", b"a,b\n1,2\n", filename="1.csv")
    service.delete_version("again", 1)

    second = service.register_from_bytes("again", b"a,b\n3,4\n", filename="2.csv").version

    assert second.version == 2
    assert workspace.summary().datasets == 1
