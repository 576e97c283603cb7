"""The model registry on a workspace with one completed run."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

import opml
from opml.models import parse_model_ref


def test_register_best_model(trained_workspace) -> None:
    workspace, run = trained_workspace

    model = workspace.models.register(run.id, "bank-best", description="first try")

    assert model.ref == "bank-best:1"
    assert model.run_id == run.id
    assert model.child_iteration == run.best_iteration
    assert (model.dataset_name, model.dataset_version) == ("bm-small", 1)
    assert model.metrics == workspace.runs.child(run.id).metrics
    assert model.schema["label"] == "y"
    assert model.schema["classes"] == ["no", "yes"]
    assert model.charts["roc"]
    assert model.feature_importance
    path = workspace.models.file_path("bank-best")
    assert path.is_relative_to(workspace.artifact_path / "models")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == model.sha256


def test_register_again_adds_version(trained_workspace) -> None:
    workspace, run = trained_workspace
    workspace.models.register(run.id, "versioned")

    second = workspace.models.register(run.id, "versioned")

    assert second.version == 2
    assert [model.version for model in workspace.models.list("versioned")] == [1, 2]
    assert workspace.models.get("versioned").version == 2


def test_load_registered_model_predicts(trained_workspace) -> None:
    workspace, run = trained_workspace
    workspace.models.register(run.id, "loadable")

    model = workspace.models.load("loadable")

    frame = workspace.datasets.load("bm-small").drop(columns=["y"]).head(5)
    assert len(model.predict(frame)) == 5


def test_register_kept_child(trained_workspace) -> None:
    workspace, run = trained_workspace
    kept = [child for child in workspace.runs.children(run.id) if child.has_model and child.iteration != run.best_iteration]
    if not kept:
        pytest.skip("the best child run is a single model, so no other child kept its model")

    model = workspace.models.register(run.id, "member", iteration=kept[0].iteration)

    assert model.child_iteration == kept[0].iteration
    assert model.algorithm == kept[0].algorithm


def test_child_without_model_rejected(trained_workspace) -> None:
    workspace, run = trained_workspace
    without = next((child for child in workspace.runs.children(run.id) if not child.has_model), None)
    if without is None:
        pytest.skip("every child run of this short search is a member of the best ensemble")

    with pytest.raises(opml.OpmlError, match=f"Child run {without.iteration} of {run.id} kept no model"):
        workspace.models.register(run.id, "nope", iteration=without.iteration)


def test_delete_model_version(trained_workspace) -> None:
    workspace, run = trained_workspace
    workspace.models.register(run.id, "doomed")
    path = workspace.models.file_path("doomed", 1)

    workspace.models.delete("doomed", 1)

    assert not path.exists()
    with pytest.raises(opml.NotFoundError, match="Model 'doomed' not found"):
        workspace.models.get("doomed")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ws, run: ws.models.register(run.id, "bad name"), "Invalid model name 'bad name'"),
        (lambda ws, run: ws.models.register("AutoML_missing", "x"), "Run 'AutoML_missing' not found"),
        (lambda ws, run: ws.models.register(run.id, "x", iteration=999), "has no child run 999"),
        (lambda ws, run: ws.models.get("bank-best", 99), "no version 99"),
        (lambda ws, run: ws.models.load("ghost"), "Model 'ghost' not found"),
    ],
)
def test_registry_bad_input(trained_workspace, call, message: str) -> None:
    workspace, run = trained_workspace
    workspace.models.register(run.id, "bank-best") if not workspace.models.list("bank-best") else None
    before = [model.ref for model in workspace.models.list()]

    with pytest.raises(opml.OpmlError, match=message):
        call(workspace, run)

    assert [model.ref for model in workspace.models.list()] == before


@pytest.mark.parametrize(("ref", "expected"), [("m", ("m", None)), ("m:2", ("m", 2))])
def test_model_ref_parsed(ref: str, expected: tuple) -> None:
    assert parse_model_ref(ref) == expected


def run_opml(home, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "opml", *arguments],
        capture_output=True,
        text=True,
        env={"OPML_HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def test_cli_models_and_runs(trained_workspace, tmp_path) -> None:
    workspace, run = trained_workspace

    registered = run_opml(workspace.home, "models", "register", "--run", run.id, "--name", "cli-model", "--json")
    listed = run_opml(workspace.home, "models", "list", "--json")
    shown = run_opml(workspace.home, "models", "show", "cli-model:1", "--json")
    downloaded = run_opml(workspace.home, "models", "download", "cli-model", "--output", str(tmp_path / "m.joblib"))
    runs = run_opml(workspace.home, "runs", "list", "--json")
    details = run_opml(workspace.home, "runs", "show", run.id, "--json")
    logs = run_opml(workspace.home, "runs", "logs", run.id, "--tail", "3")
    deleted = run_opml(workspace.home, "models", "delete", "cli-model:1", "--yes")

    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["ref"] == "cli-model:1"
    assert "cli-model:1" in [model["ref"] for model in json.loads(listed.stdout)]
    assert json.loads(shown.stdout)["schema"]["label"] == "y"
    assert downloaded.returncode == 0, downloaded.stderr
    assert hashlib.sha256((tmp_path / "m.joblib").read_bytes()).hexdigest() == json.loads(shown.stdout)["sha256"]
    assert run.id in [item["id"] for item in json.loads(runs.stdout)]
    assert len(json.loads(details.stdout)["child_runs"]) == run.progress.child_runs
    assert len(logs.stdout.strip().splitlines()) == 3
    assert deleted.stdout.strip() == "Deleted cli-model:1"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["models", "show", "ghost"], "Model 'ghost' not found"),
        (["models", "delete", "ghost"], "Model 'ghost' not found"),
        (["models", "register", "--run", "AutoML_x", "--name", "m"], "Run 'AutoML_x' not found"),
        (["runs", "show", "AutoML_x"], "Run 'AutoML_x' not found"),
        (["runs", "cancel", "AutoML_x"], "Run 'AutoML_x' not found"),
        (["automl", "run", "--dataset", "bm-small", "--label", "nope", "--budget", "5"], "Label column 'nope' not found"),
        (["automl", "run", "--dataset", "bm-small", "--label", "y", "--budget", "0"], "Invalid time budget 0 s"),
        (["automl", "run", "--dataset", "bm-small", "--label", "y", "--metric", "r2"], "Invalid primary metric 'r2'"),
        (["automl", "run", "--dataset", "bm-small:9", "--label", "y"], "no version 9"),
    ],
)
def test_cli_bad_input_one_line(trained_workspace, arguments: list[str], message: str) -> None:
    workspace, _ = trained_workspace
    runs_before = len(workspace.runs.list())

    result = run_opml(workspace.home, *arguments)

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert len(workspace.runs.list()) == runs_before
