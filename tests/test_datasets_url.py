"""Registering datasets by URL against an HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import opml
from tests.conftest import SAMPLE_SHA256, FileServer, free_port
from tests.test_datasets import snapshot


def test_url_registers_with_sha256(workspace: opml.Workspace, file_server: FileServer) -> None:
    url = file_server.url("bankmarketing_train.csv")
    progress: list[tuple[int, int | None]] = []

    registration = workspace.datasets.register_from_url("bm-url", url, progress=lambda *report: progress.append(report))

    version = registration.version
    assert registration.created
    assert version.sha256 == SAMPLE_SHA256
    assert version.origin == url
    assert version.origin_kind == "url"
    assert (version.rows, version.columns) == (32950, 21)
    assert progress[-1] == (3909700, 3909700)
    assert len(progress) > 1


def test_url_twice_returns_same_version(workspace: opml.Workspace, file_server: FileServer) -> None:
    url = file_server.url("bankmarketing_train.csv")
    first = workspace.datasets.register_from_url("bm-url", url).version

    second = workspace.datasets.register_from_url("bm-url", url)

    assert not second.created
    assert second.version == first
    assert len(workspace.datasets.versions("bm-url")) == 1


def test_url_matches_bundled_sample(workspace: opml.Workspace, file_server: FileServer) -> None:
    sample = workspace.datasets.register_sample().version

    from_url = workspace.datasets.register_from_url("bankmarketing", file_server.url("bankmarketing_train.csv"))

    assert not from_url.created
    assert from_url.version == sample


def test_parquet_by_url(workspace: opml.Workspace, file_server: FileServer) -> None:
    import pandas as pd

    pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}).to_parquet(file_server.root / "small.parquet")

    version = workspace.datasets.register_from_url("pq-url", file_server.url("small.parquet")).version

    assert version.source_format == "parquet"
    assert version.sha256 == hashlib.sha256((file_server.root / "small.parquet").read_bytes()).hexdigest()


@pytest.mark.parametrize(("status", "phrase"), [(404, "HTTP 404 Not Found"), (500, "HTTP 500 Internal Server Error")])
def test_http_error_status(workspace: opml.Workspace, file_server: FileServer, status: int, phrase: str) -> None:
    workspace.datasets.register_sample()
    before = snapshot(workspace)
    url = file_server.url(f"status/{status}")

    with pytest.raises(opml.OpmlError, match=phrase) as raised:
        workspace.datasets.register_from_url("bankmarketing", url)

    assert url in raised.value.message
    assert snapshot(workspace) == before


def test_unreachable_url(workspace: opml.Workspace) -> None:
    url = f"http://127.0.0.1:{free_port()}/data.csv"

    with pytest.raises(opml.OpmlError, match="Could not connect to .*Connection refused") as raised:
        workspace.datasets.register_from_url("gone", url)

    assert url in raised.value.message
    assert snapshot(workspace) == ([], [], [], [])


def test_download_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_server: FileServer) -> None:
    monkeypatch.setenv("OPML_DOWNLOAD_TIMEOUT_S", "1")
    workspace = opml.connect(tmp_path / "ws")
    file_server.slow_seconds = 3

    with pytest.raises(opml.OpmlError, match="Timed out after 1 s"):
        workspace.datasets.register_from_url("slow", file_server.url("slow.csv"))

    assert snapshot(workspace) == ([], [], [], [])


def test_size_limit_from_content_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_server: FileServer
) -> None:
    monkeypatch.setenv("OPML_MAX_DATASET_MB", "1")
    workspace = opml.connect(tmp_path / "ws")

    with pytest.raises(opml.OpmlError, match="3,909,700 bytes > 1,000,000 bytes"):
        workspace.datasets.register_from_url("big", file_server.url("bankmarketing_train.csv"))

    assert snapshot(workspace) == ([], [], [], [])


def test_size_limit_while_streaming(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_server: FileServer) -> None:
    monkeypatch.setenv("OPML_MAX_DATASET_MB", "1")
    workspace = opml.connect(tmp_path / "ws")

    with pytest.raises(opml.OpmlError, match="larger than the dataset size limit"):
        workspace.datasets.register_from_url("big", file_server.url("unsized.csv"))

    assert snapshot(workspace) == ([], [], [], [])


def test_html_page_rejected(workspace: opml.Workspace, file_server: FileServer) -> None:
    (file_server.root / "page.html").write_text("<html><body>Download here</body></html>")

    with pytest.raises(opml.OpmlError, match="looks like HTML.*address of the data file itself"):
        workspace.datasets.register_from_url("page", file_server.url("page.html"))


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/data.csv", "file:///etc/hosts", "127.0.0.1/data.csv", "http://"])
def test_non_http_url_rejected(workspace: opml.Workspace, url: str) -> None:
    with pytest.raises(opml.OpmlError, match="Invalid URL .*http:// or https://"):
        workspace.datasets.register_from_url("bad", url)
