"""The dashboard pages under Streamlit's AppTest, on a real temporary workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import opml
from tests.conftest import FileServer

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 60


def open_page(path: str, query: dict[str, str] | None = None) -> AppTest:
    """Run the page at ``path`` through app.py's navigation, as the dashboard does, with ``query`` in its URL."""
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT_S)
    if path != "app.py":
        app.switch_page(path)
    app.query_params.update(query or {})
    app.run()
    assert not app.exception, app.exception
    return app


def texts(app: AppTest) -> str:
    parts = [element.value for element in (*app.markdown, *app.caption, *app.success, *app.info, *app.error)]
    return "\n".join(str(part) for part in parts)


def metric_values(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def test_home_shows_empty_workspace(workspace: opml.Workspace) -> None:
    app = open_page("app.py")

    assert app.title[0].value == "opml"
    assert str(workspace.home) in texts(app)
    assert metric_values(app) == {"Datasets": "0", "Runs": "0", "Models": "0", "Deployments": "0", "Pipeline runs": "0"}
    assert "Nothing has happened" in texts(app)


def test_home_counts_and_activity(workspace: opml.Workspace) -> None:
    workspace.datasets.register_sample()

    app = open_page("app.py")

    assert metric_values(app)["Datasets"] == "1"
    activity = app.dataframe[0].value
    assert activity["event"].iloc[0].startswith("Registered dataset bankmarketing:1")


def test_datasets_page_registers_sample(workspace: opml.Workspace) -> None:
    app = open_page("pages/datasets.py")
    assert "No datasets yet" in texts(app)

    app.button(key="register_sample").click().run()

    assert not app.exception, app.exception
    assert "Registered bankmarketing:1: 32,950 rows, 21 columns." in texts(app)
    assert app.selectbox(key="dataset_name").value == "bankmarketing"
    assert metric_values(app)["Rows"] == "32,950"
    assert metric_values(app)["Columns"] == "21"
    listing, profile_table, preview_table = app.dataframe
    assert listing.value["name"].tolist() == ["bankmarketing"]
    profile = profile_table.value
    assert len(profile) == 21
    assert profile.set_index("column").loc["age", "min"] == "17"
    assert profile.set_index("column").loc["job", "min"] == ""
    assert len(app.get("vega_lite_chart")) == 21
    assert len(preview_table.value) == 50
    assert workspace.datasets.get("bankmarketing").rows == 32950


def test_datasets_page_registers_url(workspace: opml.Workspace, file_server: FileServer) -> None:
    app = open_page("pages/datasets.py")

    app.text_input(key="url_name").input("bm-url")
    app.text_input(key="url").input(file_server.url("bankmarketing_train.csv"))
    app.button[0].click().run()

    assert not app.exception, app.exception
    assert "Registered bm-url:1" in texts(app)
    assert app.selectbox(key="dataset_name").value == "bm-url"


def test_datasets_page_shows_url_error(workspace: opml.Workspace, file_server: FileServer) -> None:
    app = open_page("pages/datasets.py")

    app.text_input(key="url_name").input("broken")
    app.text_input(key="url").input(file_server.url("status/404"))
    app.button[0].click().run()

    assert not app.exception, app.exception
    assert [error.value for error in app.error] == [
        f"Download of {file_server.url('status/404')} failed with HTTP 404 Not Found; "
        "check that the address points to the file."
    ]
    assert workspace.datasets.list() == []


def test_datasets_page_switches_version(workspace: opml.Workspace) -> None:
    workspace.datasets.register_from_bytes("tiny", b"a,b\n1,2\n", filename="1.csv")
    workspace.datasets.register_from_bytes("tiny", b"a,b\n1,2\n3,4\n5,6\n", filename="2.csv")
    app = open_page("pages/datasets.py")
    assert metric_values(app)["Rows"] == "3"

    app.selectbox(key="dataset_version").select(1).run()

    assert metric_values(app)["Rows"] == "1"


def test_datasets_page_deletes_after_confirmation(workspace: opml.Workspace) -> None:
    workspace.datasets.register_from_bytes("tiny", b"a,b\n1,2\n", filename="1.csv")
    workspace.datasets.register_from_bytes("tiny", b"a,b\n3,4\n", filename="2.csv")
    app = open_page("pages/datasets.py")
    assert app.button(key="delete_version").disabled

    app.text_input(key="delete_confirmation").input("tiny:1").run()
    assert app.button(key="delete_version").disabled
    app.text_input(key="delete_confirmation").input("tiny:2").run()
    app.button(key="delete_version").click().run()

    assert not app.exception, app.exception
    assert "Deleted tiny:2." in texts(app)
    assert [version.version for version in workspace.datasets.versions("tiny")] == [1]
    assert app.selectbox(key="dataset_version").value == 1


@pytest.mark.parametrize("page", ["app.py", "pages/datasets.py"])
def test_pages_report_broken_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("OPML_HOME", str(blocker / "ws"))

    app = open_page(page)

    assert "set OPML_HOME to a writable folder" in app.error[0].value


def test_datasets_page_new_dataset_shows_latest(workspace: opml.Workspace) -> None:
    workspace.datasets.register_from_bytes("alpha", b"a,b\n1,2\n", filename="1.csv")
    workspace.datasets.register_from_bytes("beta", b"a,b\n1,2\n", filename="1.csv")
    workspace.datasets.register_from_bytes("beta", b"a,b\n1,2\n3,4\n", filename="2.csv")
    app = open_page("pages/datasets.py")
    assert app.selectbox(key="dataset_version").value == 1

    app.selectbox(key="dataset_name").select("beta").run()

    assert app.selectbox(key="dataset_version").value == 2
    assert metric_values(app)["Rows"] == "2"


def test_datasets_page_notices_removed_dataset(workspace: opml.Workspace) -> None:
    workspace.datasets.register_from_bytes("alpha", b"a,b\n1,2\n", filename="1.csv")
    workspace.datasets.register_from_bytes("beta", b"a,b\n1,2\n", filename="1.csv")
    app = open_page("pages/datasets.py")
    app.selectbox(key="dataset_name").select("beta").run()

    workspace.datasets.delete_version("beta", 1)
    app.run()

    assert "Dataset 'beta' is no longer registered; showing 'alpha'." in texts(app)
    assert app.selectbox(key="dataset_name").value == "alpha"


def test_datasets_page_opens_version_from_url(workspace: opml.Workspace) -> None:
    workspace.datasets.register_from_bytes("alpha", b"a,b\n1,2\n", filename="1.csv")
    workspace.datasets.register_from_bytes("beta", b"a,b\n1,2\n", filename="1.csv")
    workspace.datasets.register_from_bytes("beta", b"a,b\n1,2\n3,4\n", filename="2.csv")

    app = open_page("pages/datasets.py", {"dataset": "beta:1"})

    assert app.selectbox(key="dataset_name").value == "beta"
    assert app.selectbox(key="dataset_version").value == 1
    assert metric_values(app)["Rows"] == "1"
    app.selectbox(key="dataset_version").select(2).run()
    assert app.selectbox(key="dataset_version").value == 2
    assert app.query_params["dataset"] == "beta:2"


def test_datasets_page_warns_of_unknown_link(workspace: opml.Workspace) -> None:
    workspace.datasets.register_from_bytes("alpha", b"a,b\n1,2\n", filename="1.csv")

    missing_name = open_page("pages/datasets.py", {"dataset": "gone:1"})
    missing_version = open_page("pages/datasets.py", {"dataset": "alpha:7"})

    assert "Dataset 'gone:1' from the link was not found" in missing_name.warning[0].value
    assert missing_name.selectbox(key="dataset_name").value == "alpha"
    assert "Dataset version 'alpha:7' from the link was not found" in missing_version.warning[0].value
    assert missing_version.selectbox(key="dataset_version").value == 1
    assert missing_name.query_params["dataset"] == "gone:1"
    missing_name.run()
    assert missing_name.query_params["dataset"] == "alpha:1"
