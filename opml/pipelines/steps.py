"""The five steps of a pipeline run: dataset, automl, evaluate, register and deploy.

Each step reads the definition and the outputs of the steps before it and
returns its own outputs, a JSON object. A step with a ``fingerprint`` can
reuse the outputs of an earlier step with the same fingerprint, when the
pipeline allows reuse and what those outputs name still exists.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from opml.automl.metrics import classification_metrics
from opml.automl.model import TrainedModel
from opml.datasets import parse_dataset_ref
from opml.errors import NotFoundError, OpmlError
from opml.pipelines.definition import STEP_NAMES, PipelineDefinition

log = logging.getLogger("opml.pipeline")

POLL_S = 1.0


class StepCanceled(Exception):
    """The run was canceled while the step was waiting, or before it changed a deployment."""


class StepSkipped(Exception):
    """The step has nothing to do under this definition; the message gives the reason."""


@dataclass
class StepContext:
    workspace: object
    """The ``opml.Workspace`` the run belongs to."""
    run_id: str
    definition: PipelineDefinition
    outputs: dict[str, dict] = field(default_factory=dict)

    @property
    def canceled(self) -> bool:
        return self.workspace.pipelines.repository.cancel_requested(self.run_id)


def evaluate_model(model: TrainedModel, frame: pd.DataFrame, label: str, source: str) -> dict[str, float]:
    """Compute every classification metric of ``model`` on labelled data."""
    if label not in frame.columns:
        raise OpmlError(f"Label column {label!r} not found in {source}; evaluate on data with the training label.")
    missing = [name for name in model.feature_names if name not in frame.columns]
    if missing:
        raise OpmlError(f"{source} lacks the model's feature columns {', '.join(missing)}.")
    frame = frame[frame[label].notna()]
    classes = {str(value): index for index, value in enumerate(model.classes)}
    labels = frame[label].map(lambda value: classes.get(str(value), -1)).to_numpy()
    unknown = sorted({str(value) for value, index in zip(frame[label], labels) if index < 0})
    if unknown:
        raise OpmlError(
            f"{source} has label values the model never saw: {', '.join(unknown[:5])}; its classes are "
            f"{', '.join(map(str, model.classes))}."
        )
    if len(frame) == 0:
        raise OpmlError(f"{source} has no labelled rows to evaluate on.")
    probabilities = model.predict_proba(frame[model.feature_names])
    return classification_metrics(np.asarray(labels), probabilities)


def dataset_step(context: StepContext) -> dict:
    """Resolve the dataset version; with a test fraction, register its train and test splits as datasets."""
    definition = context.definition
    datasets = context.workspace.datasets
    version = datasets.get(definition.dataset_name, definition.dataset_version)
    log.info("Dataset %s: %d rows, %d columns", version.ref, version.rows, version.columns)
    outputs = {"dataset": version.ref, "rows": version.rows}
    if not definition.test_fraction:
        return outputs

    frame = datasets.load(version.name, version.version)
    label = definition.automl.label_column_name
    if label not in frame.columns:
        raise OpmlError(f"Label column {label!r} not found in {version.ref}; its columns are {', '.join(frame.columns)}.")
    counts = frame[label].value_counts()
    stratify = frame[label] if len(counts) > 1 and counts.min() >= 2 else None
    train, test = train_test_split(
        frame, test_size=definition.test_fraction, random_state=definition.automl.random_seed, stratify=stratify
    )
    description = f"split of {version.ref} (test_fraction {definition.test_fraction:g}, seed {definition.automl.random_seed})"
    registered = {}
    for part, rows in (("train", train), ("test", test)):
        buffer = io.BytesIO()
        rows.sort_index().to_parquet(buffer, index=False)
        registered[part] = _register_once(datasets, f"{version.name}-{part}", buffer.getvalue(), f"The {part} {description}")
        log.info("%s split: %s (%d rows)", part.capitalize(), registered[part], len(rows))
    outputs.update(train_dataset=registered["train"], test_dataset=registered["test"])
    return outputs


def _register_once(datasets, name: str, data: bytes, description: str) -> str:
    """Register split data, or return the existing version of ``name`` with the same content.

    Registration deduplicates only against the latest version, so a split
    seen before a different one came in between would otherwise get a new
    version and defeat step reuse.
    """
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        versions = datasets.versions(name)
    except NotFoundError:
        versions = []
    same = [version for version in versions if version.sha256 == sha256]
    if same:
        return same[-1].ref
    return datasets.register_from_bytes(name, data, filename=f"{name}.parquet", description=description).version.ref


def automl_fingerprint(context: StepContext) -> list:
    return ["automl", context.outputs["dataset"].get("train_dataset") or context.outputs["dataset"]["dataset"],
            context.definition.automl.to_dict()]


def automl_step(context: StepContext) -> dict:
    """Submit an AutoML run on the training data and wait for it, canceling it when the pipeline run is canceled."""
    workspace = context.workspace
    training_ref = context.outputs["dataset"].get("train_dataset") or context.outputs["dataset"]["dataset"]
    name, version = parse_dataset_ref(training_ref)
    run = workspace.runs.submit_automl_run(
        name, context.definition.automl, version=version, experiment=context.definition.experiment
    )
    # NOTE: no step names an AutoML run submitted by a runner killed before the next line.
    # The cleanup of the dead pipeline run cannot cancel it, so it runs to the end of its budget.
    workspace.pipelines.repository.set_step_outputs(context.run_id, STEP_NAMES.index("automl"), {"automl_run": run.id})
    log.info("AutoML run %s submitted on %s", run.id, training_ref)
    while run.is_active:
        if context.canceled:
            try:
                workspace.runs.cancel(run.id)
                log.info("Canceled AutoML run %s", run.id)
            except OpmlError as error:
                log.info("AutoML run %s ended before the cancel reached it: %s", run.id, error.message)
            raise StepCanceled()
        time.sleep(POLL_S)
        run = workspace.runs.get(run.id)
    if run.status != "Completed":
        raise OpmlError(f"AutoML run {run.id} ended {run.status}: {run.error or 'no reason recorded'}")
    return _automl_outputs(workspace, run.id)


def _automl_outputs(workspace, run_id: str) -> dict:
    run = workspace.runs.get(run_id)
    best = workspace.runs.child(run_id)
    log.info("AutoML run %s completed: best child run %d (%s), %s %.4f",
             run_id, best.iteration, best.algorithm, run.primary_metric, best.metrics[run.primary_metric])
    return {
        "automl_run": run_id,
        "best_iteration": best.iteration,
        "algorithm": best.algorithm,
        "primary_metric": run.primary_metric,
        "validation_score": best.metrics[run.primary_metric],
        "child_runs": run.progress.child_runs,
    }


def automl_reusable(context: StepContext, outputs: dict) -> bool:
    try:
        return context.workspace.runs.get(outputs["automl_run"]).status == "Completed"
    except (OpmlError, KeyError):
        return False


def _evaluation_ref(context: StepContext) -> str | None:
    return context.outputs["dataset"].get("test_dataset") or context.definition.evaluate_dataset


def evaluate_fingerprint(context: StepContext) -> list:
    reference = _evaluation_ref(context)
    if reference is not None:
        reference = context.workspace.datasets.get(*parse_dataset_ref(reference)).ref
    automl = context.outputs["automl"]
    return ["evaluate", automl["automl_run"], automl["best_iteration"], reference]


def evaluate_step(context: StepContext) -> dict:
    """Score the best model on the test split or the evaluate dataset, or report its validation metrics."""
    workspace = context.workspace
    automl = context.outputs["automl"]
    metric = automl["primary_metric"]
    reference = _evaluation_ref(context)
    if reference is None:
        child = workspace.runs.child(automl["automl_run"], automl["best_iteration"])
        log.info("No test data: reporting the validation metrics of child run %d", child.iteration)
        return {"evaluated_on": f"validation of {automl['automl_run']}", "primary_metric": metric,
                "score": child.metrics[metric], "metrics": child.metrics}

    version = workspace.datasets.get(*parse_dataset_ref(reference))
    model = workspace.runs.load_child_model(automl["automl_run"], automl["best_iteration"])
    frame = workspace.datasets.load(version.name, version.version)
    metrics = evaluate_model(model, frame, context.definition.automl.label_column_name, version.ref)
    log.info("Evaluated child run %d on %s (%d rows): %s %.4f", automl["best_iteration"], version.ref, version.rows,
             metric, metrics[metric])
    return {"evaluated_on": version.ref, "rows": version.rows, "primary_metric": metric, "score": metrics[metric],
            "metrics": metrics}


def register_fingerprint(context: StepContext) -> list:
    automl = context.outputs["automl"]
    return ["register", automl["automl_run"], automl["best_iteration"], context.definition.model_name]


def register_step(context: StepContext) -> dict:
    automl = context.outputs["automl"]
    evaluation = context.outputs["evaluate"]
    description = (
        f"Registered by pipeline run {context.run_id}: {evaluation['primary_metric']} "
        f"{evaluation['score']:.4f} on {evaluation['evaluated_on']}."
    )
    model = context.workspace.models.register(
        automl["automl_run"], context.definition.model_name, iteration=automl["best_iteration"], description=description
    )
    log.info("Registered %s (%s)", model.ref, model.algorithm)
    return {"model": model.ref, "model_name": model.name, "model_version": model.version}


def register_reusable(context: StepContext, outputs: dict) -> bool:
    try:
        model = context.workspace.models.get(outputs["model_name"], outputs["model_version"])
    except (OpmlError, KeyError):
        return False
    return model.run_id == context.outputs["automl"]["automl_run"]


def deploy_step(context: StepContext) -> dict:
    """Create or update the deployment with the new model when the deploy condition holds."""
    definition = context.definition
    if definition.deployment_name is None:
        raise StepSkipped("No deployment is configured; the pipeline ends with the registered model.")
    workspace = context.workspace
    model_name = context.outputs["register"]["model_name"]
    model_version = context.outputs["register"]["model_version"]
    model_ref = context.outputs["register"]["model"]
    evaluation = context.outputs["evaluate"]
    metric, score = evaluation["primary_metric"], evaluation["score"]
    name = definition.deployment_name

    existing = next((item for item in workspace.deployments.list() if item.name == name), None)
    if existing is not None and existing.model_ref == model_ref and existing.state == "Healthy":
        log.info("Deployment %s already serves %s", name, model_ref)
        return {"deployment": name, "model": model_ref, "reason": f"{name} already serves {model_ref}",
                "action": "unchanged", "serving": model_ref, "scoring_uri": existing.scoring_uri}
    deploy, reason = _deploy_decision(context, existing, metric, score)
    outputs = {"deployment": name, "model": model_ref, "reason": reason}
    if not deploy:
        log.info("Not deploying %s: %s", model_ref, reason)
        return {**outputs, "action": "not deployed", "serving": existing.model_ref if existing else None}

    if context.canceled:
        # The last point at which a cancel leaves the deployment as it was.
        unchanged = f"it still serves {existing.model_ref}" if existing else "it was not created"
        log.info("Canceled before changing deployment %s: %s", name, unchanged)
        raise StepCanceled()
    if existing is None:
        deployment = workspace.deployments.deploy(model_name, name, model_version=model_version)
        action = "created"
    else:
        deployment = workspace.deployments.update(name, model_version=model_version, model_name=model_name)
        action = "updated"
    if deployment.state != "Healthy":
        raise OpmlError(f"Deployment {name} is {deployment.state} after the {action}: {deployment.error}")
    log.info("Deployment %s %s: serves %s at %s (%s)", name, action, model_ref, deployment.scoring_uri, reason)
    return {**outputs, "action": action, "serving": model_ref, "scoring_uri": deployment.scoring_uri}


def _deploy_decision(context: StepContext, existing, metric: str, score: float) -> tuple[bool, str]:
    definition = context.definition
    if definition.deploy_condition == "always":
        return True, "the deploy condition is always"
    if definition.deploy_condition == "threshold":
        threshold = definition.deploy_threshold
        if score >= threshold:
            return True, f"{metric} {score:.4f} >= threshold {threshold:g}"
        return False, f"{metric} {score:.4f} < threshold {threshold:g}"
    if existing is None:
        return True, "no model is deployed yet"
    new_score, current, basis = _comparison(context, existing, metric, score)
    if new_score > current:
        return True, f"{metric} {new_score:.4f} beats the deployed {existing.model_ref} ({current:.4f}, {basis})"
    return False, f"{metric} {new_score:.4f} does not beat the deployed {existing.model_ref} ({current:.4f}, {basis})"


def _comparison(context: StepContext, deployment, metric: str, score: float) -> tuple[float, float, str]:
    """Return the new and the deployed model's scores on a common basis, and that basis.

    Both are scored on the evaluation data when the deployed model was
    trained on the same training dataset version as the new one, so neither
    has seen those rows. Otherwise the deployed model may have trained on them, and
    the validation metrics recorded by AutoML are compared instead.
    """
    workspace = context.workspace
    model = workspace.models.get(deployment.model_name, deployment.model_version)
    reference = context.outputs["evaluate"]["evaluated_on"]
    training = context.outputs["dataset"].get("train_dataset") or context.outputs["dataset"]["dataset"]
    same_training_data = f"{model.dataset_name}:{model.dataset_version}" == training
    if same_training_data and not reference.startswith("validation of"):
        try:
            frame = workspace.datasets.load(*parse_dataset_ref(reference))
            trained = workspace.models.load(model.name, model.version)
            current = evaluate_model(trained, frame, context.definition.automl.label_column_name, reference)[metric]
            return score, current, f"both scored on {reference}"
        except OpmlError as error:
            log.warning("Could not score %s on %s (%s); comparing validation metrics", model.ref, reference, error)
    new_score = context.outputs["automl"]["validation_score"]
    return new_score, model.metrics.get(metric, float("-inf")), "validation metrics, as the deployed model trained on other data"


@dataclass(frozen=True)
class Step:
    name: str
    execute: object
    fingerprint: object = None
    """Return the inputs that decide the outputs; None for a step that always runs."""
    reusable: object = None
    """Check that earlier outputs still name existing objects."""


STEPS = (
    Step("dataset", dataset_step),
    Step("automl", automl_step, automl_fingerprint, automl_reusable),
    Step("evaluate", evaluate_step, evaluate_fingerprint, lambda context, outputs: True),
    Step("register", register_step, register_fingerprint, register_reusable),
    Step("deploy", deploy_step),
)
