"""The Pipelines page under AppTest, with real runner processes and a real API server."""

from __future__ import annotations

import time
from pathlib import Path

import opml
from tests.conftest import register_small
from tests.test_pages import open_page, texts
from tests.test_pages_automl import button
from tests.test_pipelines import PIPELINE, RUN_TIMEOUT_S, small_definition


def test_empty_page_asks_for_a_pipeline(workspace: opml.Workspace) -> None:
    app = open_page("pages/pipelines.py")

    assert "Register a dataset first" in texts(app)
    assert "No pipelines yet" in texts(app)
    assert "No pipeline runs yet" in texts(app)
    assert workspace.api.status().state == "Stopped"


def test_form_saves_a_pipeline_and_names_bad_values(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    app = open_page("pages/pipelines.py")

    form_inputs = {widget.label: widget for widget in app.text_input}
    form_inputs["Model name"].set_value("bad name!")
    button(app, "Save pipeline").click().run()
    assert "Invalid model name 'bad name!'" in texts(app)
    assert workspace.pipelines.list() == []

    form_inputs = {widget.label: widget for widget in app.text_input}
    form_inputs["Model name"].set_value("bm-small-model")
    button(app, "Save pipeline").click().run()

    assert not app.exception, app.exception
    assert f"Saved pipeline {PIPELINE}:1." in texts(app)
    definition = workspace.pipelines.definition(PIPELINE)
    assert definition.dataset_name == "bm-small"
    assert definition.model_name == "bm-small-model"
    assert definition.automl.label_column_name == "y"


def test_page_submits_run_to_completion(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    workspace.pipelines.create(PIPELINE, small_definition(deployment_name=None))
    app = open_page("pages/pipelines.py")

    button(app, "Submit run").click().run()
    assert not app.exception, app.exception
    (run,) = workspace.pipelines.list_runs()
    assert f"Submitted pipeline run {run.id}" in texts(app)
    assert run.trigger == "dashboard"

    deadline = time.monotonic() + RUN_TIMEOUT_S
    while workspace.pipelines.get_run(run.id).is_active and time.monotonic() < deadline:
        time.sleep(1)
    app.run()

    assert not app.exception, app.exception
    runs_table, steps_table = app.dataframe[-2:]
    assert runs_table.value["Status"].tolist() == ["Completed"]
    assert steps_table.value["Status"].tolist() == ["Completed", "Completed", "Completed", "Completed", "Skipped"]
    assert f"Run {run.id}: Completed" in [header.value for header in app.subheader]
    assert 'fillcolor="#a5d6a7"' in app.get("graphviz_chart")[0].proto.spec

    finished = workspace.pipelines.get_run(run.id)
    model = finished.steps[3].outputs["model"]
    summaries = next(item.value for item in app.markdown if item.value.startswith("1. **dataset**")).splitlines()
    assert summaries[3] == f"4. **register**: registered {model}"
    assert summaries[2].startswith("3. **evaluate**: AUC\\_weighted ")
    assert summaries[4] == "5. **deploy**: No deployment is configured; the pipeline ends with the registered model."
    links = {link.proto.label: (link.proto.page, link.proto.query_string) for link in app.get("page_link")}
    automl_run = finished.steps[1].outputs["automl_run"]
    assert links[f"AutoML run {automl_run}"] == ("automl_runs", f"run={automl_run}")
    assert links[f"Model {model}"] == ("models", f"model={model.replace(':', '%3A')}")
    assert links["Training split bm-small-train:1"] == ("datasets", "dataset=bm-small-train%3A1")


def test_publish_starts_the_api_server_and_shows_snippets(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    workspace.pipelines.create(PIPELINE, small_definition(deployment_name=None))
    app = open_page("pages/pipelines.py")
    try:
        button(app, "Publish").click().run()

        assert not app.exception, app.exception
        (published,) = workspace.pipelines.list_published()
        assert workspace.api.status().state == "Running"
        code = "\n".join(block.value for block in app.code)
        assert f"rest_endpoint = '{published.endpoint}'" in code
        assert "requests.post(rest_endpoint, headers=auth_header, json=" in code
        assert f"curl -sS -X POST {published.endpoint}" in code

        button(app, "Disable").click().run()
        assert workspace.pipelines.published(published.id).status == "Disabled"
    finally:
        workspace.api.stop()


def test_tokens_tab_shows_a_new_token_once(workspace: opml.Workspace) -> None:
    app = open_page("pages/pipelines.py")

    button(app, "Create token").click().run()
    secret = next(block.value for block in app.code if block.value.startswith("opml_"))
    (token,) = workspace.pipelines.list_tokens()
    app.run()

    assert workspace.pipelines.authenticate(secret).id == token.id
    assert not any(block.value == secret for block in app.code)
    button(app, "Revoke token").click().run()
    assert not workspace.pipelines.list_tokens()[0].active


def test_switching_pipelines_selects_the_newest_version(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    workspace.pipelines.create("Alpha", small_definition())
    workspace.pipelines.create(PIPELINE, small_definition())
    workspace.pipelines.create(PIPELINE, small_definition(test_fraction=0.3))
    app = open_page("pages/pipelines.py")

    app.selectbox(key="selected_pipeline").set_value("Alpha").run()
    app.selectbox(key="selected_pipeline").set_value(PIPELINE).run()

    assert not app.exception, app.exception
    assert app.selectbox(key=f"pipeline_version_{PIPELINE}").value == 2


def test_run_settings_draft_a_new_pipeline(trained_workspace, monkeypatch) -> None:
    workspace, run = trained_workspace
    monkeypatch.setenv("OPML_HOME", str(workspace.home))
    app = open_page("pages/pipelines.py")

    source = next(option for option in app.selectbox(key="pipeline_source").options if run.id in option)
    app.selectbox(key="pipeline_source").set_value(source).run()
    inputs = {widget.label: widget for widget in app.text_input}

    assert not app.exception, app.exception
    assert inputs["Pipeline name"].value == "bm-small training"
    assert inputs["Label column"].value == "y"
    assert inputs["Model name"].value == "bm-small-model"


def test_stopped_api_server_stays_stopped(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    workspace.pipelines.create(PIPELINE, small_definition(deployment_name=None))
    workspace.pipelines.publish(PIPELINE)
    app = open_page("pages/pipelines.py")
    try:
        started = workspace.api.status()
        button(app, "Stop API server").click().run()
        message = texts(app)
        reloaded = open_page("pages/pipelines.py")

        assert started.state == "Running"
        assert "Stopped the API server" in message
        assert workspace.api.status().state == "Stopped"
        assert "API server Stopped. Stopped on request" in texts(reloaded)
        button(app, "Start API server").click().run()
        assert workspace.api.status().state == "Running"
    finally:
        workspace.api.stop()


def test_saving_selects_the_new_version(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    workspace.pipelines.create(PIPELINE, small_definition())
    workspace.pipelines.create(PIPELINE, small_definition(test_fraction=0.3))
    app = open_page("pages/pipelines.py")
    app.selectbox(key=f"pipeline_version_{PIPELINE}").set_value(1).run()

    app.selectbox(key="pipeline_source").set_value(f"Edit {PIPELINE} (newest version 2)").run()
    inputs = {widget.label: widget for widget in app.text_input}
    inputs["Model name"].set_value("edited-model")
    button(app, "Save pipeline").click().run()

    assert not app.exception, app.exception
    assert f"Saved pipeline {PIPELINE}:3." in texts(app)
    assert app.selectbox(key=f"pipeline_version_{PIPELINE}").value == 3


def publish_twice(workspace: opml.Workspace, sample_csv: Path):
    """Publish one pipeline version twice and return the older and the newer publication."""
    register_small(workspace, sample_csv)
    workspace.pipelines.create(PIPELINE, small_definition(deployment_name=None))
    return workspace.pipelines.publish(PIPELINE), workspace.pipelines.publish(PIPELINE)


def test_disable_and_enable_act_on_the_selected_publication(workspace: opml.Workspace, sample_csv: Path) -> None:
    older, newer = publish_twice(workspace, sample_csv)
    app = open_page("pages/pipelines.py")
    try:
        app.selectbox(key="selected_published").set_value(older.id).run()
        button(app, "Disable").click().run()
        button(app, "Enable").click().run()
        button(app, "Disable").click().run()

        assert not app.exception, app.exception
        assert app.selectbox(key="selected_published").value == older.id
        assert workspace.pipelines.published(older.id).status == "Disabled"
        assert any(f"({older.id[:8]}) is Disabled: its endpoint returns 404" in item.value for item in app.warning)
        assert not any(block.value.startswith("import os") for block in app.code)
        assert workspace.pipelines.published(newer.id).status == "Active"
    finally:
        workspace.api.stop()


def test_make_default_pins_the_name_endpoint(workspace: opml.Workspace, sample_csv: Path) -> None:
    older, newer = publish_twice(workspace, sample_csv)
    app = open_page("pages/pipelines.py")
    try:
        app.selectbox(key="selected_published").set_value(older.id).run()
        button(app, "Make default").click().run()

        assert not app.exception, app.exception
        assert workspace.pipelines.endpoint_target(PIPELINE).id == older.id
        assert f"runs the default publication of {PIPELINE}" in texts(app)
        published_table = app.dataframe[-1].value.set_index("Id")
        assert published_table.loc[older.id, "Default"] == "yes"
        assert published_table.loc[newer.id, "Default"] == ""

        button(app, "Follow the newest version").click().run()
        assert workspace.pipelines.endpoint_target(PIPELINE).id == newer.id
    finally:
        workspace.api.stop()


def test_monitor_shows_automl_progress(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    workspace.pipelines.create(PIPELINE, small_definition(deployment_name=None))
    run = workspace.pipelines.submit(PIPELINE, parameters={"experiment_timeout_seconds": 60})
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while "automl_run" not in workspace.pipelines.get_run(run.id).steps[1].outputs and time.monotonic() < deadline:
            time.sleep(0.5)
        automl_run = workspace.pipelines.get_run(run.id).steps[1].outputs["automl_run"]

        app = open_page("pages/pipelines.py")

        assert not app.exception, app.exception
        (bar,) = app.get("progress")
        assert bar.proto.text.startswith(f"AutoML run {automl_run} Running: ")
        assert "of 60 s" in bar.proto.text
    finally:
        workspace.pipelines.cancel(run.id)
        workspace.pipelines.wait(run.id, timeout_s=60)
