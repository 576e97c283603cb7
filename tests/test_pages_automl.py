"""The AutoML runs and Models pages under AppTest, with real runs in worker processes."""

from __future__ import annotations

import time
from pathlib import Path

import opml
from tests.conftest import register_small
from tests.test_pages import metric_values, open_page, texts

RUN_TIMEOUT_S = 120


def button(app, label: str):
    return next(widget for widget in app.button if widget.label == label)


def test_runs_page_without_datasets(workspace: opml.Workspace) -> None:
    app = open_page("pages/automl_runs.py")

    assert "Register a dataset first" in texts(app)
    assert "No runs yet" in texts(app)


def test_runs_page_starts_run_to_completion(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    app = open_page("pages/automl_runs.py")

    assert app.selectbox(key="run_label").value == "y"
    app.number_input(key="run_budget").set_value(5)
    app.number_input(key="run_folds").set_value(3)
    button(app, "Start run").click().run()
    assert not app.exception, app.exception
    (run,) = workspace.runs.list()
    assert f"Started run {run.id} on bm-small:1." in texts(app)

    deadline = time.monotonic() + RUN_TIMEOUT_S
    while workspace.runs.get(run.id).is_active and time.monotonic() < deadline:
        time.sleep(1)
    app.run()

    assert not app.exception, app.exception
    assert metric_values(app)["Status"] == "Completed"
    runs_table, leaderboard = app.dataframe
    assert runs_table.value["status"].tolist() == ["Completed"]
    assert len(leaderboard.value) == workspace.runs.get(run.id).progress.child_runs
    assert leaderboard.value["AUC_weighted"].is_monotonic_decreasing
    assert len(app.get("plotly_chart")) >= 5

    button(app, "Register best model").click().run()

    assert not app.exception, app.exception
    assert "Registered model bm-small-model:1" in texts(app)
    assert workspace.models.get("bm-small-model").run_id == run.id


def test_runs_page_shows_bad_settings(workspace: opml.Workspace) -> None:
    workspace.datasets.register_from_bytes("one-class", b"x,y\n1,a\n2,a\n3,a\n", filename="one.csv")
    app = open_page("pages/automl_runs.py")

    button(app, "Start run").click().run()

    assert not app.exception, app.exception
    assert [error.value for error in app.error] == [
        "Label column 'y' of one-class:1 has only 'a'; classification needs 2 or more classes."
    ]
    assert workspace.runs.list() == []


def test_models_page_shows_model(trained_workspace, monkeypatch) -> None:
    workspace, run = trained_workspace
    monkeypatch.setenv("OPML_HOME", str(workspace.home))
    if not workspace.models.list("page-model"):
        workspace.models.register(run.id, "page-model")

    app = open_page("pages/models.py")
    app.selectbox(key="selected_model").select("page-model:1").run()

    assert not app.exception, app.exception
    assert app.subheader[0].value == "page-model:1"
    assert metric_values(app)["AUC_weighted"] == f"{workspace.models.get('page-model').metrics['AUC_weighted']:.4f}"
    assert len(app.get("plotly_chart")) >= 5


def test_models_page_empty(workspace: opml.Workspace) -> None:
    app = open_page("pages/models.py")

    assert "No models yet" in texts(app)


def test_runs_and_models_pages_open_links(trained_workspace, monkeypatch) -> None:
    workspace, run = trained_workspace
    monkeypatch.setenv("OPML_HOME", str(workspace.home))
    if not workspace.models.list("link-model"):
        workspace.models.register(run.id, "link-model")
        workspace.models.register(run.id, "link-newer")

    runs_page = open_page("pages/automl_runs.py", {"run": run.id})
    models_page = open_page("pages/models.py", {"model": "link-model:1"})

    assert runs_page.selectbox(key="selected_run").value == run.id
    assert models_page.selectbox(key="selected_model").value == "link-model:1"
    assert models_page.subheader[0].value == "link-model:1"
    lineage = {link.proto.label: link.proto.query_string for link in models_page.get("page_link")}
    assert lineage[f"AutoML run {run.id}"] == f"run={run.id}"
    assert lineage["Dataset bm-small:1"] == "dataset=bm-small%3A1"
    by_name = open_page("pages/models.py", {"model": "link-model"})
    assert by_name.selectbox(key="selected_model").value == "link-model:1"
    models_page.selectbox(key="selected_model").select("link-newer:1").run()
    assert models_page.query_params["model"] == "link-newer:1"
