"""The whole workflow headless, on the bundled Bank Marketing data: ``opml quickstart``.

Each step prints one line with its result and time; the first step that
fails stops the tour with its reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from opml.automl.settings import AutoMLSettings
from opml.datasets import SAMPLE_LABEL
from opml.errors import OpmlError
from opml.pipelines.definition import PipelineDefinition
from opml.scoring import classic_example, score_rows

MODEL_NAME = "bankmarketing-model"
DEPLOYMENT_NAME = "bankmarketing-service"
PIPELINE_NAME = "Bankmarketing Train"
EXPERIMENT = "quickstart"
TOKEN_NAME = "quickstart"
BENCHMARK_REQUESTS = 100
POLL_S = 2.0


@dataclass
class Tour:
    """The results each step passes on to the later ones."""

    dataset: str = ""
    run_id: str = ""
    model_ref: str = ""
    endpoint: str = ""
    secret: str = ""
    pipeline_run: str = ""


def run_quickstart(workspace, budget_s: float, echo: Callable[[str], None], timeout_s: float = 1800.0) -> bool:
    """Run every step in order; return False after the first failure, which ``echo`` reports."""
    tour = Tour()
    steps = (
        ("Register the bundled dataset", lambda: _register(workspace, tour)),
        (f"Run AutoML ({budget_s:g} s budget)", lambda: _automl(workspace, tour, budget_s, timeout_s)),
        ("Register the best model", lambda: _register_model(workspace, tour)),
        ("Deploy it", lambda: _deploy(workspace, tour)),
        ("Score the two-row example", lambda: _score(workspace)),
        (f"Benchmark {BENCHMARK_REQUESTS} requests", lambda: _benchmark(workspace)),
        ("Publish the training pipeline", lambda: _publish(workspace, tour, budget_s)),
        ("Trigger it through its REST endpoint", lambda: _trigger(tour)),
        ("Wait for the pipeline run", lambda: _wait(tour, timeout_s)),
    )
    for number, (title, step) in enumerate(steps, start=1):
        started = time.monotonic()
        prefix = f"[{number}/{len(steps)}] {title}:"
        try:
            result = step()
        except OpmlError as error:
            echo(f"{prefix} FAILED: {error.message}")
            return False
        except requests.RequestException as error:
            echo(f"{prefix} FAILED: {error}")
            return False
        echo(f"{prefix} {result} ({time.monotonic() - started:.1f} s)")
    return True


def _register(workspace, tour: Tour) -> str:
    registration = workspace.datasets.register_sample()
    tour.dataset = registration.version.ref
    state = "registered" if registration.created else "already registered"
    return f"{tour.dataset}, {registration.version.rows:,} rows, {state}"


def _automl(workspace, tour: Tour, budget_s: float, timeout_s: float) -> str:
    name = tour.dataset.split(":")[0]
    run = workspace.runs.submit_automl_run(
        name, AutoMLSettings(label_column_name=SAMPLE_LABEL, experiment_timeout_seconds=budget_s), experiment=EXPERIMENT
    )
    run = workspace.runs.wait(run.id, timeout_s=timeout_s)
    if run.status != "Completed":
        raise OpmlError(f"AutoML run {run.id} is {run.status}: {run.error or 'see opml runs logs ' + run.id}")
    tour.run_id = run.id
    best = workspace.runs.child(run.id)
    return (
        f"{run.id}, {run.progress.child_runs} child runs, best {best.algorithm} "
        f"{run.primary_metric} {best.metrics[run.primary_metric]:.4f}"
    )


def _register_model(workspace, tour: Tour) -> str:
    model = workspace.models.register(tour.run_id, MODEL_NAME, description="Registered by opml quickstart.")
    tour.model_ref = model.ref
    return f"{model.ref} ({model.algorithm})"


def _deploy(workspace, tour: Tour) -> str:
    name, version = tour.model_ref.split(":")
    existing = next((item for item in workspace.deployments.list() if item.name == DEPLOYMENT_NAME), None)
    if existing is not None:
        deployment = workspace.deployments.update(DEPLOYMENT_NAME, model_version=int(version), model_name=name)
        change = f"updated from {existing.model_ref} to {deployment.model_ref}"
    else:
        deployment = workspace.deployments.deploy(name, DEPLOYMENT_NAME, model_version=int(version))
        change = f"created with {deployment.model_ref}"
    if deployment.state != "Healthy":
        raise OpmlError(f"Deployment {DEPLOYMENT_NAME} is {deployment.state}: {deployment.error}")
    return f"{DEPLOYMENT_NAME} {change}, {deployment.state} at {deployment.scoring_uri}"


def _score(workspace) -> str:
    target = workspace.deployments.scoring_target(DEPLOYMENT_NAME)
    result = score_rows(target, classic_example()["data"])
    return f"HTTP {result.status}, predictions {result.results}, {result.latency_ms:.0f} ms"


def _benchmark(workspace) -> str:
    settings, context = workspace.benchmarks.settings_for(deployment=DEPLOYMENT_NAME, requests=BENCHMARK_REQUESTS, concurrency=1)
    result = workspace.benchmarks.run(settings, context)
    summary = result.summary
    if summary["failed_requests"]:
        raise OpmlError(f"{summary['failed_requests']} of {BENCHMARK_REQUESTS} benchmark requests failed: {summary['failures']}")
    return (
        f"{summary['complete_requests']} requests, {summary['requests_per_second']:.0f} requests/s, "
        f"mean {summary['latency_ms']['mean']:.1f} ms, 0 failed"
    )


def _publish(workspace, tour: Tour, budget_s: float) -> str:
    definition = PipelineDefinition(
        dataset_name=tour.dataset.split(":")[0],
        automl=AutoMLSettings(label_column_name=SAMPLE_LABEL, experiment_timeout_seconds=budget_s),
        model_name=MODEL_NAME,
        test_fraction=0.2,
        deployment_name=DEPLOYMENT_NAME,
        deploy_condition="better",
        experiment=EXPERIMENT,
    )
    pipeline = workspace.pipelines.create(PIPELINE_NAME, definition, "Train, evaluate, register and deploy on bank marketing data.")
    workspace.api.ensure_running()
    earlier = [
        item for item in workspace.pipelines.list_published()
        if (item.name, item.pipeline_version, item.status) == (pipeline.name, pipeline.version, "Active")
    ]
    published = earlier[0] if earlier else workspace.pipelines.publish(pipeline.name, pipeline.version)
    tour.endpoint = published.endpoint
    if any(token.name == TOKEN_NAME and token.active for token in workspace.pipelines.list_tokens()):
        # A token's secret is shown once, so an earlier tour's token is replaced.
        workspace.pipelines.revoke_token(TOKEN_NAME)
    _, tour.secret = workspace.pipelines.create_token(TOKEN_NAME)
    return f"{pipeline.ref} at {published.endpoint}"


def _trigger(tour: Tour) -> str:
    auth_header = {"Authorization": f"Bearer {tour.secret}"}
    response = requests.post(
        tour.endpoint, headers=auth_header, json={"ExperimentName": EXPERIMENT, "ParameterAssignments": {}}, timeout=30
    )
    if response.status_code != 200:
        raise OpmlError(f"The endpoint returned HTTP {response.status_code}: {response.text[:300]}")
    body = response.json()
    tour.pipeline_run = body["StatusUrl"]
    return f"HTTP 200, run {body['Id']}"


def _wait(tour: Tour, timeout_s: float) -> str:
    auth_header = {"Authorization": f"Bearer {tour.secret}"}
    deadline = time.monotonic() + timeout_s
    while True:
        body = requests.get(tour.pipeline_run, headers=auth_header, timeout=30).json()
        if body["Status"] not in ("Queued", "Running"):
            break
        if time.monotonic() > deadline:
            raise OpmlError(f"Pipeline run {body['Id']} is still {body['Status']} after {timeout_s:.0f} s.")
        time.sleep(POLL_S)
    steps = ", ".join(f"{step['Name']} {step['Status']}" for step in body["Steps"])
    if body["Status"] != "Completed":
        raise OpmlError(f"Pipeline run {body['Id']} {body['Status']}: {body['Error']} ({steps})")
    deploy = next(step for step in body["Steps"] if step["Name"] == "deploy")["Outputs"]
    return f"{body['Id']} Completed ({steps}); deploy: {deploy.get('action')}, {deploy.get('reason')}"
