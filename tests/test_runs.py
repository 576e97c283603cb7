"""AutoML runs through the service: validation, lifecycle, queueing, cancel and killed workers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import opml
from opml.automl.settings import AutoMLSettings
from tests.conftest import register_small

KILL_DETECTION_S = 30


def quick_settings(**overrides) -> AutoMLSettings:
    values = {"label_column_name": "y", "experiment_timeout_seconds": 5, "n_cross_validations": 3}
    return AutoMLSettings(**{**values, **overrides})


def run_count(workspace: opml.Workspace) -> int:
    with sqlite3.connect(workspace.metadata_path) as connection:
        return connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def wait_for(predicate, timeout_s: float, poll_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    return predicate()


def test_run_completes_with_children(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)

    run = workspace.runs.submit_automl_run("bm-small", quick_settings())
    finished = workspace.runs.wait(run.id, timeout_s=120)

    assert run.status in ("Queued", "Running")
    assert finished.status == "Completed", workspace.runs.logs(finished.id)
    assert finished.dataset_ref == "bm-small:1"
    assert finished.started_at <= finished.ended_at
    children = workspace.runs.children(run.id)
    assert finished.progress.child_runs == len(children) > 0
    best = workspace.runs.child(run.id)
    assert best.iteration == finished.best_iteration
    assert best.has_model
    assert finished.progress.best_metric == pytest.approx(max(child.metrics["AUC_weighted"] for child in children))
    assert "completed: best child run" in workspace.runs.logs(run.id)
    assert workspace.summary().runs == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (quick_settings(label_column_name="target"), "Label column 'target' not found in bm-small:1"),
        (quick_settings(primary_metric="r2_score"), "Invalid primary metric 'r2_score'"),
        (quick_settings(experiment_timeout_seconds=0), "Invalid time budget 0 s"),
        (quick_settings(experiment_timeout_seconds=-5), "Invalid time budget -5 s"),
        (quick_settings(n_cross_validations=400), "Invalid n_cross_validations 400"),
        (quick_settings(blocked_models=("SVM",)), "Unknown blocked models SVM"),
        (
            quick_settings(blocked_models=("LightGBM", "XGBoostClassifier", "RandomForest", "ExtremeRandomTrees", "LogisticRegression")),
            "Every model is blocked",
        ),
    ],
)
def test_bad_settings_rejected_before_run(
    workspace: opml.Workspace, sample_csv: Path, settings: AutoMLSettings, message: str
) -> None:
    register_small(workspace, sample_csv)

    with pytest.raises(opml.OpmlError, match=message):
        workspace.runs.submit_automl_run("bm-small", settings)

    assert run_count(workspace) == 0


def test_single_class_label_rejected(workspace: opml.Workspace) -> None:
    workspace.datasets.register_from_bytes("one-class", b"x,y\n1,a\n2,a\n3,a\n", filename="one.csv")

    with pytest.raises(opml.OpmlError, match="Label column 'y' of one-class:1 has only 'a'"):
        workspace.runs.submit_automl_run("one-class", quick_settings())

    assert run_count(workspace) == 0


def test_too_few_rows_for_folds_rejected(workspace: opml.Workspace) -> None:
    workspace.datasets.register_from_bytes("tiny", b"x,y\n1,a\n2,a\n3,b\n4,b\n5,b\n", filename="tiny.csv")

    with pytest.raises(opml.OpmlError, match="Too few rows for 3-fold validation in tiny:1: class 'a'"):
        workspace.runs.submit_automl_run("tiny", quick_settings())

    assert run_count(workspace) == 0


def test_missing_dataset_version_rejected(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)

    with pytest.raises(opml.NotFoundError, match="no version 7"):
        workspace.runs.submit_automl_run("bm-small", quick_settings(), version=7)
    with pytest.raises(opml.NotFoundError, match="Dataset 'nothing' not found"):
        workspace.runs.submit_automl_run("nothing", quick_settings())

    assert run_count(workspace) == 0


def test_queue_and_cancel(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    first = workspace.runs.submit_automl_run("bm-small", quick_settings(experiment_timeout_seconds=60))
    second = workspace.runs.submit_automl_run("bm-small", quick_settings())

    assert workspace.runs.get(first.id).status == "Running"
    assert workspace.runs.get(second.id).status == "Queued"

    canceled_queued = workspace.runs.cancel(second.id)
    assert canceled_queued.status == "Canceled"
    wait_for(lambda: workspace.runs.get(first.id).progress.child_runs > 0, timeout_s=60)
    workspace.runs.cancel(first.id)
    finished = workspace.runs.wait(first.id, timeout_s=30)

    assert finished.status == "Canceled"
    assert finished.error == "Canceled by request"
    with pytest.raises(opml.OpmlError, match="already Canceled"):
        workspace.runs.cancel(first.id)


def test_queued_run_starts_when_node_frees(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    first = workspace.runs.submit_automl_run("bm-small", quick_settings(experiment_timeout_seconds=3, iterations=3))
    second = workspace.runs.submit_automl_run("bm-small", quick_settings(experiment_timeout_seconds=3, iterations=3))

    assert workspace.runs.get(second.id).status == "Queued"
    done = workspace.runs.wait(second.id, timeout_s=180)

    assert workspace.runs.get(first.id).status == "Completed"
    assert done.status == "Completed", workspace.runs.logs(second.id)
    assert done.started_at >= workspace.runs.get(first.id).ended_at


def worker_pid(workspace: opml.Workspace, run_id: str) -> int | None:
    with sqlite3.connect(workspace.metadata_path) as connection:
        return connection.execute("SELECT worker_pid FROM runs WHERE id = ?", (run_id,)).fetchone()[0]


def supervisor_pid(workspace: opml.Workspace, run_id: str) -> int | None:
    with sqlite3.connect(workspace.metadata_path) as connection:
        return connection.execute("SELECT supervisor_pid FROM runs WHERE id = ?", (run_id,)).fetchone()[0]


def test_killed_worker_fails_run(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    run = workspace.runs.submit_automl_run("bm-small", quick_settings(experiment_timeout_seconds=60))
    pid = wait_for(lambda: worker_pid(workspace, run.id), timeout_s=30)

    os.kill(pid, signal.SIGKILL)
    failed = wait_for(
        lambda: (state := workspace.runs.repository.get(run.id)).status == "Failed" and state, KILL_DETECTION_S
    )

    assert failed, f"run still {workspace.runs.repository.get(run.id).status} {KILL_DETECTION_S} s after SIGKILL"
    assert "signal SIGKILL" in failed.error


def test_killed_supervisor_and_worker_fail_run(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    run = workspace.runs.submit_automl_run("bm-small", quick_settings(experiment_timeout_seconds=60))
    pid = wait_for(lambda: worker_pid(workspace, run.id), timeout_s=30)

    os.kill(supervisor_pid(workspace, run.id), signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    failed = wait_for(lambda: (state := workspace.runs.get(run.id)).status == "Failed" and state, KILL_DETECTION_S)

    assert failed
    assert "processes ended without recording a result" in failed.error


def test_unknown_run_named(workspace: opml.Workspace) -> None:
    with pytest.raises(opml.NotFoundError, match="Run 'AutoML_nope' not found"):
        workspace.runs.get("AutoML_nope")


def test_cli_run_wait(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)

    result = subprocess.run(
        [sys.executable, "-m", "opml", "automl", "run", "--dataset", "bm-small:1", "--label", "y",
         "--budget", "4", "--cv", "3", "--wait"],
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    assert workspace.runs.get(run_id).status == "Completed"
    assert "Completed:" in result.stderr


def test_cli_wait_fails_when_canceled(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    process = subprocess.Popen(
        [sys.executable, "-m", "opml", "automl", "run", "--dataset", "bm-small", "--label", "y", "--budget", "60", "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_id = process.stdout.readline().strip()
    wait_for(lambda: workspace.runs.get(run_id).status == "Running", timeout_s=30)

    workspace.runs.cancel(run_id)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 1
    assert f"error: Run {run_id} canceled: Canceled by request" in stderr
