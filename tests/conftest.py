"""Shared fixtures: a temporary workspace, the sample file and a loopback HTTP server."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import pytest

import opml

SAMPLE_SHA256 = "720ae6ebc7117640741907d2fe9823b1f19bbf50598f992fe1442489f7ac169f"


@pytest.fixture(autouse=True)
def app_navigation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run AppTest's pages through app.py's navigation, as a browser session does after its first run.

    AppTest sets up Streamlit's pages manager afresh for every run, and a new
    manager turns on the pages-folder mode because ``pages/`` exists. Every run
    would then start with the one-time rerun of ``ui.use_app_navigation``, which
    drops the button clicks of that run.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def navigation_only(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", navigation_only)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> opml.Workspace:
    """A fresh workspace, also set as OPML_HOME for code that opens its own."""
    home = tmp_path / "workspace"
    monkeypatch.setenv("OPML_HOME", str(home))
    return opml.connect(home)


@pytest.fixture(scope="session")
def sample_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uncompressed Bank Marketing CSV, as its public URL serves it."""
    folder = tmp_path_factory.mktemp("sample")
    path = folder / "bankmarketing_train.csv"
    packaged = resources.files("opml.sample_data").joinpath("bankmarketing_train.csv.gz")
    with packaged.open("rb") as compressed:
        path.write_bytes(gzip.decompress(compressed.read()))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FileServer:
    """A static file server on 127.0.0.1 with a few paths that misbehave on purpose."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.slow_seconds = 5.0
        handler = self._handler_class()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def _handler_class(self):
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(server.root), **kwargs)

            def do_GET(self):
                if self.path.startswith("/status/"):
                    self.send_error(int(self.path.rsplit("/", 1)[1]))
                    return
                if self.path == "/slow.csv":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/csv")
                    self.end_headers()
                    self.wfile.write(b"a,b\n")
                    self.wfile.flush()
                    time.sleep(server.slow_seconds)
                    self.wfile.write(b"1,2\n")
                    return
                if self.path == "/unsized.csv":
                    # No Content-Length: the size limit must hold while streaming.
                    self.send_response(200)
                    self.send_header("Content-Type", "text/csv")
                    self.end_headers()
                    self.wfile.write(b"a,b\n" + b"1,2\n" * 300_000)
                    return
                super().do_GET()

            def log_message(self, format, *args):
                pass

        return Handler

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server(tmp_path: Path, sample_csv: Path) -> Iterator[FileServer]:
    """Serves the sample CSV (and whatever a test writes to its root) on loopback."""
    root = tmp_path / "served"
    root.mkdir()
    (root / sample_csv.name).write_bytes(sample_csv.read_bytes())
    with FileServer(root) as server:
        yield server


SMALL_ROWS = 600


def small_sample_csv(sample_csv: Path, rows: int = SMALL_ROWS) -> bytes:
    """The first ``rows`` rows of the sample, with both label classes present."""
    import pandas as pd

    frame = pd.read_csv(sample_csv, nrows=rows)
    return frame.to_csv(index=False).encode()


def register_small(workspace: opml.Workspace, sample_csv: Path, name: str = "bm-small") -> None:
    workspace.datasets.register_from_bytes(name, small_sample_csv(sample_csv), filename="bm-small.csv")


@pytest.fixture(scope="module")
def trained_workspace(tmp_path_factory: pytest.TempPathFactory, sample_csv: Path):
    """A workspace with one Completed AutoML run on 600 rows, shared by a module's tests."""
    from opml.automl.settings import AutoMLSettings

    home = tmp_path_factory.mktemp("trained") / "workspace"
    workspace = opml.connect(home)
    register_small(workspace, sample_csv)
    run = workspace.runs.submit_automl_run(
        "bm-small", AutoMLSettings(label_column_name="y", experiment_timeout_seconds=6, n_cross_validations=3)
    )
    finished = workspace.runs.wait(run.id, timeout_s=120)
    assert finished.status == "Completed", workspace.runs.logs(run.id)
    return workspace, finished


SCORING_EXAMPLE = {
    "data": [
        {
            "age": age,
            "campaign": 1,
            "cons.conf.idx": -46.2,
            "cons.price.idx": 92.893,
            "contact": "cellular",
            "day_of_week": "mon",
            "default": "no",
            "duration": duration,
            "education": "university.degree",
            "emp.var.rate": -1.8,
            "euribor3m": 1.299,
            "housing": "yes",
            "job": "blue-collar",
            "loan": "yes",
            "marital": "married",
            "month": "may",
            "nr.employed": 5099.1,
            "pdays": 999,
            "poutcome": "failure",
            "previous": 1,
        }
        for age, duration in ((17, 971), (87, 471))
    ]
}
"""The two-row request body of the classic Azure ML course client (ages 17 and 87)."""


@pytest.fixture(scope="module")
def deployed(trained_workspace):
    """The trained workspace's best model, registered and deployed; every deployment is deleted afterwards."""
    workspace, run = trained_workspace
    model = workspace.models.register(run.id, "served-model")
    deployment = workspace.deployments.deploy(model.name, "served", workers=1)
    assert deployment.state == "Healthy", deployment.error
    yield workspace, deployment
    for item in workspace.deployments.list():
        workspace.deployments.delete(item.name)
