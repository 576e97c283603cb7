"""Pipeline definitions, and pipeline runs executed by real runner processes on a small sample."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import opml
from opml.automl.settings import AutoMLSettings
from opml.errors import OpmlError
from opml.pipelines.definition import PipelineDefinition
from opml.pipelines.service import next_cron_time, parse_interval
from tests.conftest import register_small

RUN_TIMEOUT_S = 180
PIPELINE = "Bankmarketing Train"


def small_definition(**changes) -> PipelineDefinition:
    values = {
        "dataset_name": "bm-small",
        "automl": AutoMLSettings(label_column_name="y", experiment_timeout_seconds=8, n_cross_validations=3),
        "model_name": "bm-pipeline-model",
        "test_fraction": 0.2,
        "deployment_name": "bm-pipeline",
        "deploy_condition": "always",
        "experiment": "pipeline-test",
    }
    return PipelineDefinition(**{**values, **changes})


def wait_for_step(workspace: opml.Workspace, run_id: str, step: str, status: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = workspace.pipelines.get_run(run_id)
        if next(item for item in run.steps if item.name == step).status == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"Step {step} of {run_id} did not become {status}: {workspace.pipelines.get_run(run_id)}")


@pytest.fixture(scope="module")
def pipeline_runs(tmp_path_factory: pytest.TempPathFactory, sample_csv: Path):
    """A workspace where the pipeline ran twice, unchanged; every deployment is deleted afterwards."""
    workspace = opml.connect(tmp_path_factory.mktemp("pipelines") / "workspace")
    register_small(workspace, sample_csv)
    workspace.pipelines.create(PIPELINE, small_definition(), "Train on the small sample.")
    first = workspace.pipelines.wait(workspace.pipelines.submit(PIPELINE).id, timeout_s=RUN_TIMEOUT_S)
    assert first.status == "Completed", workspace.pipelines.logs(first.id)
    second = workspace.pipelines.wait(workspace.pipelines.submit(PIPELINE).id, timeout_s=RUN_TIMEOUT_S)
    yield workspace, first, second
    for item in workspace.deployments.list():
        workspace.deployments.delete(item.name)


# Definitions


def test_definition_yaml_round_trip() -> None:
    definition = small_definition(dataset_version=2, deploy_condition="threshold", deploy_threshold=0.9)

    loaded = PipelineDefinition.from_yaml(definition.to_yaml())

    assert loaded == definition
    assert "steps:" in definition.to_yaml()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps: [", "not valid YAML"),
        ("steps: {dataset: {name: bm}}", "no 'automl' step"),
        ("steps: {dataset: {name: bm}, automl: {label_column_name: y}, register: {model_name: m}, train: {}}", "Unknown steps train"),
        ("steps: {dataset: {name: bm, size: 3}, automl: {label_column_name: y}, register: {model_name: m}}", "Unknown keys in steps.dataset: size"),
        ("steps: {dataset: {name: bm}, automl: {label_column_name: y, primary_metric: f1}, register: {model_name: m}}", "Invalid primary metric 'f1'"),
        ("steps: {dataset: {name: bm}, automl: {label_column_name: y, experiment_timeout_seconds: soon}, register: {model_name: m}}", "Invalid value 'soon' for automl.experiment_timeout_seconds: give a number"),
        ("steps: {dataset: {name: bm}, automl: {label_column_name: y, blocked_models: LightGBM}, register: {model_name: m}}", "Invalid value 'LightGBM' for automl.blocked_models: give a list"),
        ("steps: {dataset: {name: bm}, automl: {label_column_name: y}, register: {model_name: m}, deploy: {deployment: svc, threshold: 0.9}}", "applies only with the deploy condition 'threshold'"),
        ("steps:\n  dataset: {name: bm\n  automl: [\n", "line 3, column 9: expected ',' or '}'"),
        ("steps: {dataset: {name: bm, test_fraction: 0.9}, automl: {label_column_name: y}, register: {model_name: m}}", "Invalid test_fraction 0.9"),
        ("steps: {dataset: {name: bm}, automl: {label_column_name: y}, register: {model_name: m}, deploy: {deployment: svc, condition: threshold}}", "needs deploy_threshold"),
    ],
)
def test_bad_definitions_are_named(text: str, message: str) -> None:
    with pytest.raises(OpmlError, match=message):
        PipelineDefinition.from_yaml(text)


def test_parameter_assignments_override_and_validate() -> None:
    definition = small_definition()

    changed = definition.with_parameters({"experiment_timeout_seconds": 30, "dataset_version": 3, "model_name": "other"})

    assert changed.automl.experiment_timeout_seconds == 30.0
    assert changed.dataset_version == 3
    assert changed.model_name == "other"
    with pytest.raises(OpmlError, match="Unknown pipeline parameters budget, color"):
        definition.with_parameters({"budget": 30, "color": "red"})
    with pytest.raises(OpmlError, match="Invalid value 'x' for test_fraction: give a number"):
        definition.with_parameters({"test_fraction": "x"})
    with pytest.raises(OpmlError, match="Invalid value True for iterations"):
        definition.with_parameters({"iterations": True})


def test_create_versions_only_changed_definitions(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)

    first = workspace.pipelines.create(PIPELINE, small_definition())
    same = workspace.pipelines.create(PIPELINE, small_definition())
    edited = workspace.pipelines.create(PIPELINE, small_definition(test_fraction=0.3))

    assert (first.version, same.version, edited.version) == (1, 1, 2)
    assert workspace.pipelines.definition(PIPELINE, 1).test_fraction == 0.2
    assert workspace.pipelines.definition(PIPELINE).test_fraction == 0.3
    with pytest.raises(OpmlError, match="has no version 7; its versions are 1, 2"):
        workspace.pipelines.get(PIPELINE, 7)


def test_create_checks_the_label_column(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    settings = AutoMLSettings(label_column_name="Y", experiment_timeout_seconds=8, n_cross_validations=3)

    with pytest.raises(OpmlError, match="Label column 'Y' not found in bm-small:1; its columns are age, job"):
        workspace.pipelines.create(PIPELINE, small_definition(automl=settings))
    assert workspace.pipelines.list() == []


def test_yaml_keeps_the_description(workspace: opml.Workspace, sample_csv: Path, tmp_path: Path) -> None:
    register_small(workspace, sample_csv)
    workspace.pipelines.create(PIPELINE, small_definition(), "Nightly retraining.")
    path = tmp_path / "pipeline.yaml"
    path.write_text(workspace.pipelines.export_yaml(PIPELINE))

    again = workspace.pipelines.create_from_yaml(PIPELINE, path)
    edited = workspace.pipelines.create(PIPELINE, small_definition(test_fraction=0.25))

    assert path.read_text().startswith("description: Nightly retraining.")
    assert again.version == 1
    assert edited.version == 2
    assert edited.description == "Nightly retraining."


def test_create_rejects_unknown_dataset_and_bad_name(workspace: opml.Workspace) -> None:
    with pytest.raises(OpmlError, match="Dataset 'bm-small' not found"):
        workspace.pipelines.create(PIPELINE, small_definition())
    with pytest.raises(OpmlError, match="Invalid pipeline name '-x'"):
        workspace.pipelines.create("-x", small_definition())
    assert workspace.pipelines.list() == []


def test_yaml_file_round_trip(workspace: opml.Workspace, sample_csv: Path, tmp_path: Path) -> None:
    register_small(workspace, sample_csv)
    workspace.pipelines.create(PIPELINE, small_definition())
    path = tmp_path / "pipeline.yaml"
    path.write_text(workspace.pipelines.export_yaml(PIPELINE))

    copy = workspace.pipelines.create_from_yaml("Copy", path)

    assert copy.definition == workspace.pipelines.get(PIPELINE).definition


# Schedule times


def test_intervals_and_cron_expressions() -> None:
    assert [parse_interval(text) for text in ("30s", "15m", "2h", "1d", "1.5h")] == [30, 900, 7200, 86400, 5400]
    with pytest.raises(OpmlError, match="Invalid interval 'soon'"):
        parse_interval("soon")
    with pytest.raises(OpmlError, match="Invalid interval '90': give a number with a unit"):
        parse_interval("90")
    after = datetime(2026, 12, 4, 10, 17, tzinfo=timezone.utc)
    assert next_cron_time("0 3 * * *", after) == datetime(2026, 12, 5, 3, 0, tzinfo=timezone.utc)
    assert next_cron_time("*/15 * * * *", after) == datetime(2026, 12, 4, 10, 30, tzinfo=timezone.utc)
    with pytest.raises(OpmlError, match="Invalid cron expression '0 3 \\* \\*': it has 4 fields"):
        next_cron_time("0 3 * *", after)
    with pytest.raises(OpmlError, match="it has 6 fields; give five"):
        next_cron_time("0 3 * * * *", after)


# Runs


def test_run_links_every_step_output(pipeline_runs) -> None:
    workspace, run, _ = pipeline_runs
    steps = {step.name: step for step in run.steps}

    assert [step.status for step in run.steps] == ["Completed"] * 5
    assert all(step.duration_s is not None and step.duration_s >= 0 for step in run.steps)
    dataset = steps["dataset"].outputs
    assert dataset["dataset"] == "bm-small:1"
    train = workspace.datasets.get("bm-small-train", 1)
    test = workspace.datasets.get("bm-small-test", 1)
    assert (dataset["train_dataset"], dataset["test_dataset"]) == (train.ref, test.ref)
    assert train.rows + test.rows == 600
    assert test.rows == 120

    automl_run = workspace.runs.get(steps["automl"].outputs["automl_run"])
    assert automl_run.status == "Completed"
    assert automl_run.dataset_ref == train.ref
    assert automl_run.experiment == "pipeline-test"
    assert steps["automl"].outputs["best_iteration"] == automl_run.best_iteration

    evaluation = steps["evaluate"].outputs
    assert evaluation["evaluated_on"] == test.ref
    assert evaluation["score"] == evaluation["metrics"]["AUC_weighted"]
    assert 0.5 < evaluation["score"] <= 1.0

    model = workspace.models.get("bm-pipeline-model", steps["register"].outputs["model_version"])
    assert model.run_id == automl_run.id
    assert model.child_iteration == automl_run.best_iteration
    assert run.id in model.description

    deploy = steps["deploy"].outputs
    deployment = workspace.deployments.get("bm-pipeline")
    assert deploy["action"] == "created"
    assert deployment.model_ref == model.ref
    assert deployment.state == "Healthy"
    assert deploy["scoring_uri"] == deployment.scoring_uri


def test_step_summaries_name_the_outputs(pipeline_runs) -> None:
    _, run, _ = pipeline_runs
    steps = {step.name: step for step in run.steps}
    automl = steps["automl"].outputs
    evaluation = steps["evaluate"].outputs

    assert steps["dataset"].summary == "bm-small:1 (600 rows), split into bm-small-train:1 and bm-small-test:1"
    assert steps["automl"].summary.startswith(f"{automl['automl_run']}: best child run {automl['best_iteration']} (")
    assert steps["evaluate"].summary == f"AUC_weighted {evaluation['score']:.4f} on bm-small-test:1"
    assert steps["register"].summary == f"registered {steps['register'].outputs['model']}"
    assert steps["deploy"].summary.startswith(f"bm-pipeline created, serving {steps['register'].outputs['model']} (")
    assert steps["deploy"].summary.endswith(f"scoring URI {steps['deploy'].outputs['scoring_uri']}")


def test_run_writes_a_log_per_step(pipeline_runs) -> None:
    workspace, run, _ = pipeline_runs

    assert "Evaluated child run" in workspace.pipelines.logs(run.id, "evaluate")
    assert "Registered bm-pipeline-model:1" in workspace.pipelines.logs(run.id, "register")
    assert f"Pipeline run {run.id} completed" in workspace.pipelines.logs(run.id)
    with pytest.raises(OpmlError, match="Unknown step 'train'"):
        workspace.pipelines.logs(run.id, "train")


def test_unchanged_run_reuses_earlier_outputs(pipeline_runs) -> None:
    workspace, first, second = pipeline_runs
    steps = {step.name: step for step in second.steps}
    earlier = {step.name: step for step in first.steps}

    assert second.status == "Completed"
    assert steps["dataset"].status == "Completed"
    assert steps["dataset"].outputs["train_dataset"] == earlier["dataset"].outputs["train_dataset"]
    for name in ("automl", "evaluate", "register"):
        assert steps[name].status == "Reused"
        assert steps[name].reused_from == first.id
        assert steps[name].outputs == earlier[name].outputs
    assert steps["deploy"].outputs["action"] == "unchanged"
    assert len(workspace.models.list("bm-pipeline-model")) == 1
    assert len(workspace.runs.list()) == 1


def test_failed_step_fails_run_and_skips_the_rest(pipeline_runs) -> None:
    workspace, _, _ = pipeline_runs

    parameters = {"test_fraction": 0, "evaluate_dataset": "missing-data"}
    run = workspace.pipelines.submit(PIPELINE, parameters=parameters)
    run = workspace.pipelines.wait(run.id, timeout_s=RUN_TIMEOUT_S)

    assert run.status == "Failed"
    assert run.error.startswith("Step evaluate failed: Dataset 'missing-data' not found")
    assert [step.status for step in run.steps] == ["Completed", "Completed", "Failed", "Skipped", "Skipped"]
    assert run.parameters == parameters
    assert workspace.pipelines.logs(run.id, "evaluate").count("Step evaluate failed") == 1


def test_deploy_condition_keeps_the_deployed_model(pipeline_runs) -> None:
    workspace, first, _ = pipeline_runs

    run = workspace.pipelines.submit(
        PIPELINE, parameters={"model_name": "bm-threshold", "deploy_condition": "threshold", "deploy_threshold": 1.0}
    )
    run = workspace.pipelines.wait(run.id, timeout_s=RUN_TIMEOUT_S)

    deploy = next(step for step in run.steps if step.name == "deploy")
    assert run.status == "Completed", run.error
    assert deploy.outputs["action"] == "not deployed"
    assert "< threshold 1" in deploy.outputs["reason"]
    assert workspace.deployments.get("bm-pipeline").model_ref == "bm-pipeline-model:1"
    assert workspace.models.get("bm-threshold").version == 1


def test_cancel_stops_the_automl_step(pipeline_runs) -> None:
    workspace, _, _ = pipeline_runs

    run = workspace.pipelines.submit(PIPELINE, parameters={"experiment_timeout_seconds": 120})
    wait_for_step(workspace, run.id, "automl", "Running")
    time.sleep(1)
    workspace.pipelines.cancel(run.id)
    run = workspace.pipelines.wait(run.id, timeout_s=60)

    automl = next(step for step in run.steps if step.name == "automl")
    assert run.status == "Canceled"
    assert automl.status == "Canceled"
    assert [step.status for step in run.steps[2:]] == ["Canceled"] * 3
    assert workspace.runs.wait(automl.outputs["automl_run"], timeout_s=30).status == "Canceled"
    with pytest.raises(OpmlError, match="already Canceled"):
        workspace.pipelines.cancel(run.id)
    assert f"Pipeline run {run.id} canceled by request during step automl" in workspace.pipelines.logs(run.id)


def test_cancel_before_deploy_keeps_deployments(pipeline_runs) -> None:
    from opml.pipelines.steps import StepCanceled, StepContext, deploy_step

    workspace, run, _ = pipeline_runs
    definition = dataclasses.replace(
        PipelineDefinition.from_dict(run.definition), deployment_name="never-deployed", deploy_condition="always"
    )
    context = StepContext(
        workspace=workspace, run_id=run.id, definition=definition, outputs={step.name: step.outputs for step in run.steps}
    )
    workspace.pipelines.repository.request_cancel(run.id)

    with pytest.raises(StepCanceled):
        deploy_step(context)
    assert "never-deployed" not in [deployment.name for deployment in workspace.deployments.list()]


def test_killed_runner_fails_the_run(pipeline_runs) -> None:
    workspace, _, _ = pipeline_runs

    run = workspace.pipelines.submit(PIPELINE, parameters={"experiment_timeout_seconds": 120})
    wait_for_step(workspace, run.id, "automl", "Running")
    # The step records its AutoML run's id just after it submits the run, so wait for that too.
    deadline = time.monotonic() + 60
    while "automl_run" not in workspace.pipelines.get_run(run.id).steps[1].outputs and time.monotonic() < deadline:
        time.sleep(0.2)
    pid = workspace.pipelines.repository.active_run_rows()[0]["pid"]
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    run = workspace.pipelines.get_run(run.id)

    assert run.status == "Failed"
    assert f"The runner process (pid {pid}) ended without recording a result" in run.error
    automl = next(step for step in run.steps if step.name == "automl")
    assert automl.status == "Failed"
    assert "ended without recording a result" in automl.error
    assert [step.status for step in run.steps[2:]] == ["Skipped"] * 3
    automl_run = automl.outputs["automl_run"]
    assert workspace.runs.wait(automl_run, timeout_s=30).status == "Canceled"


def test_schedule_fires_once_per_due_time(pipeline_runs) -> None:
    workspace, _, _ = pipeline_runs
    published = workspace.pipelines.publish(PIPELINE)
    schedule = workspace.pipelines.create_schedule("hourly", published.id, every="1h")
    now = datetime.now(timezone.utc)
    assert timedelta(minutes=59) < schedule.next_run_at - now <= timedelta(hours=1)

    later = now + timedelta(hours=1, seconds=1)
    started = workspace.pipelines.fire_due_schedules(later)
    again = workspace.pipelines.fire_due_schedules(later)

    assert len(started) == 1
    assert again == []
    run = workspace.pipelines.wait(started[0], timeout_s=RUN_TIMEOUT_S)
    assert run.trigger == "schedule:hourly"
    assert run.published_id == published.id
    assert run.status == "Completed", run.error
    moved = workspace.pipelines.schedule("hourly")
    assert moved.next_run_at > later
    assert moved.last_run_id == run.id
    paused = workspace.pipelines.pause_schedule("hourly")
    assert paused.status == "Paused"
    assert paused.next_run_at is None
    assert workspace.pipelines.fire_due_schedules(later + timedelta(days=1)) == []
    assert workspace.pipelines.resume_schedule("hourly").next_run_at is not None
    workspace.pipelines.delete_schedule("hourly")
    assert workspace.pipelines.list_schedules() == []


def test_schedules_and_disable_need_one_active_publication(pipeline_runs) -> None:
    workspace, _, _ = pipeline_runs
    first = workspace.pipelines.publish(PIPELINE)
    second = workspace.pipelines.publish(PIPELINE)

    with pytest.raises(OpmlError, match=f"Several Active published pipelines are named '{PIPELINE}'"):
        workspace.pipelines.disable(PIPELINE)
    workspace.pipelines.disable(second.id)
    with pytest.raises(OpmlError, match=f"Published pipeline {second.id} .* is Disabled; enable it first"):
        workspace.pipelines.create_schedule("daily", second.id, every="1d")
    by_name = workspace.pipelines.create_schedule("daily", PIPELINE, every="1d")

    assert by_name.published_id == first.id
    workspace.pipelines.delete_schedule("daily")


def test_token_names_are_unique_among_active_tokens(workspace: opml.Workspace) -> None:
    token, _ = workspace.pipelines.create_token("notebook")

    with pytest.raises(OpmlError, match="An active token is already named 'notebook'"):
        workspace.pipelines.create_token("notebook")
    workspace.pipelines.revoke_token("notebook")
    renewed, _ = workspace.pipelines.create_token("notebook")

    assert renewed.id != token.id


def test_split_seen_before_is_reused(pipeline_runs) -> None:
    workspace, first, _ = pipeline_runs
    other_split = workspace.datasets.load("bm-small-train", 1).head(100).to_csv(index=False).encode()
    workspace.datasets.register_from_bytes("bm-small-train", other_split, filename="other.csv")

    run = workspace.pipelines.wait(workspace.pipelines.submit(PIPELINE).id, timeout_s=RUN_TIMEOUT_S)

    steps = {step.name: step for step in run.steps}
    assert run.status == "Completed", run.error
    assert steps["dataset"].outputs["train_dataset"] == "bm-small-train:1"
    assert steps["automl"].status == "Reused"
    assert steps["automl"].reused_from == first.id


def test_schedule_does_not_wait_for_a_dead_run(pipeline_runs) -> None:
    workspace, _, _ = pipeline_runs
    published = workspace.pipelines.publish(PIPELINE)
    workspace.pipelines.create_schedule("minutely", published.id, every="1m")
    later = datetime.now(timezone.utc) + timedelta(minutes=2)

    (first,) = workspace.pipelines.fire_due_schedules(later)
    os.kill(workspace.pipelines.repository.active_run_rows()[0]["pid"], signal.SIGKILL)
    time.sleep(0.5)
    (second,) = workspace.pipelines.fire_due_schedules(later + timedelta(minutes=2))
    workspace.pipelines.delete_schedule("minutely")

    assert workspace.pipelines.get_run(first).status == "Failed"
    assert workspace.pipelines.wait(second, timeout_s=RUN_TIMEOUT_S).status == "Completed"


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        ({"deploy_threshold": float("nan")}, "Invalid value nan for deploy_threshold: give a finite number"),
        ({"experiment_timeout_seconds": float("inf")}, "Invalid value inf for experiment_timeout_seconds"),
        ({"dataset_version": 10**23}, "give a whole number below"),
        ({"deploy_condition": "threshold", "deploy_threshold": 1.5}, "Invalid deploy_threshold 1.5: give a value of the primary metric, from 0 to 1"),
    ],
)
def test_out_of_range_numbers_are_rejected(assignments: dict, message: str) -> None:
    with pytest.raises(OpmlError, match=message):
        small_definition().with_parameters(assignments)


def test_submit_checks_label_and_dataset_version(pipeline_runs) -> None:
    workspace, _, _ = pipeline_runs
    before = len(workspace.pipelines.list_runs())

    with pytest.raises(OpmlError, match="Label column 'Y' not found in bm-small:1") as label:
        workspace.pipelines.submit(PIPELINE, parameters={"label_column_name": "Y"})
    with pytest.raises(OpmlError, match="Dataset 'bm-small' has no version 9") as version:
        workspace.pipelines.submit(PIPELINE, parameters={"dataset_version": 9})

    assert label.value.status == 400
    assert version.value.status == 400
    assert len(workspace.pipelines.list_runs()) == before


def test_published_id_prefixes_expand_when_unique(workspace: opml.Workspace, sample_csv: Path) -> None:
    register_small(workspace, sample_csv)
    workspace.pipelines.create(PIPELINE, small_definition(deployment_name=None))
    published = workspace.pipelines.publish(PIPELINE)
    service = workspace.pipelines

    assert service.resolve_published_id(published.id[:8]) == published.id
    assert service.resolve_published_id(published.id) == published.id
    assert service.resolve_published_id(published.id[:5]) == published.id[:5]
    assert service.resolve_published_id(PIPELINE) == PIPELINE
    assert service.resolve_published_id("ffffffffff") == "ffffffffff"
