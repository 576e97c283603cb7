"""Typed records the services return: plain values, never database rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from opml.profiling import DatasetProfile


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable snapshot of a dataset, with where it came from and its profile."""

    name: str
    version: int
    description: str
    origin: str
    """The URL or path the data came from, or ``upload:<file name>``."""
    origin_kind: str
    """``url``, ``file``, ``upload`` or ``sample``."""
    source_format: str
    """``csv`` or ``parquet``."""
    delimiter: str | None
    sha256: str
    """Of the source bytes as received, before parsing."""
    size_bytes: int
    rows: int
    columns: int
    created_at: datetime
    profile: DatasetProfile = field(repr=False)

    @property
    def ref(self) -> str:
        """The ``name:version`` form that the CLI and later steps accept."""
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class Dataset:
    """A named dataset with its versions, newest last."""

    name: str
    created_at: datetime
    versions: tuple[int, ...]
    latest: DatasetVersion

    @property
    def description(self) -> str:
        return self.latest.description


@dataclass(frozen=True)
class Registration:
    """The result of registering data under a dataset name."""

    version: DatasetVersion
    created: bool
    """False when the content equalled the latest version, which is returned instead."""


@dataclass(frozen=True)
class Activity:
    at: datetime
    kind: str
    message: str


RUN_STATUSES = ("Queued", "Running", "Completed", "Failed", "Canceled")
ACTIVE_STATUSES = ("Queued", "Running")


@dataclass(frozen=True)
class ChildRun:
    """One candidate model an AutoML run trained, with metrics on held-out data."""

    run_id: str
    iteration: int
    algorithm: str
    hyperparameters: dict
    status: str
    duration_s: float
    metrics: dict[str, float]
    charts: dict
    has_model: bool
    """True when the run kept this child's refit model, so it can be registered."""
    feature_importance: list[dict] | None
    created_at: datetime


@dataclass(frozen=True)
class RunProgress:
    elapsed_s: float
    budget_s: float
    child_runs: int
    best_metric: float | None
    """The best primary metric among the child runs so far."""

    @property
    def fraction(self) -> float:
        return min(self.elapsed_s / self.budget_s, 1.0) if self.budget_s else 0.0


@dataclass(frozen=True)
class Run:
    """An AutoML run: its settings, status and outcome."""

    id: str
    experiment: str
    kind: str
    status: str
    dataset_name: str
    dataset_version: int
    settings: dict
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None
    best_iteration: int | None
    progress: RunProgress
    result: dict
    """Facts known once the run completes, such as the label counts."""

    @property
    def dataset_ref(self) -> str:
        return f"{self.dataset_name}:{self.dataset_version}"

    @property
    def primary_metric(self) -> str:
        return self.settings["primary_metric"]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True)
class Model:
    """A registered model version with its lineage, metrics and schema."""

    id: str
    name: str
    version: int
    description: str
    run_id: str
    child_iteration: int
    algorithm: str
    primary_metric: str
    dataset_name: str
    dataset_version: int
    metrics: dict[str, float]
    schema: dict
    charts: dict
    feature_importance: list[dict]
    sha256: str
    """Of the model file."""
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


DEPLOYMENT_STATES = ("Transitioning", "Healthy", "Unhealthy", "Failed", "Stopped")


@dataclass(frozen=True)
class Deployment:
    """A scoring web service for one model version."""

    name: str
    id: str
    model_name: str
    model_version: int
    host: str
    port: int | None
    state: str
    error: str | None
    pid: int | None
    started_at: datetime | None
    auth_enabled: bool
    primary_key: str = field(repr=False)
    secondary_key: str = field(repr=False)
    insights_enabled: bool
    insights_samples: bool
    created_at: datetime

    @property
    def model_ref(self) -> str:
        return f"{self.model_name}:{self.model_version}"

    @property
    def base_uri(self) -> str | None:
        # A server bound to every interface is reached locally through loopback.
        client_host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return None if self.port is None else f"http://{client_host}:{self.port}"

    @property
    def scoring_uri(self) -> str | None:
        return None if self.port is None else f"{self.base_uri}/score"

    @property
    def swagger_uri(self) -> str | None:
        return None if self.port is None else f"{self.base_uri}/swagger.json"


PIPELINE_STEP_STATUSES = ("NotStarted", "Running", "Completed", "Reused", "Failed", "Skipped", "Canceled")


@dataclass(frozen=True)
class Pipeline:
    """One saved version of a pipeline definition."""

    name: str
    version: int
    description: str
    definition: dict
    """The YAML form of ``opml.pipelines.PipelineDefinition``."""
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class PublishedPipeline:
    """A pipeline version with a REST endpoint; only Active ones accept runs."""

    id: str
    name: str
    pipeline_version: int
    description: str
    status: str
    created_at: datetime
    endpoint: str | None
    """None until the API server has a port."""
    is_default: bool = False
    """Whether the by-name endpoint of ``name`` runs this publication, whatever is published later."""


@dataclass(frozen=True)
class PipelineStep:
    """One step of a pipeline run, with what it produced."""

    run_id: str
    position: int
    name: str
    status: str
    reused_from: str | None
    """The pipeline run whose output this step reused."""
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None
    outputs: dict

    @property
    def duration_s(self) -> float | None:
        return _duration_s(self.started_at, self.ended_at)

    @property
    def summary(self) -> str:
        """Describe the step's outputs in one line, such as ``registered bm-model:3``, or a Skipped step's reason, or "" without outputs."""
        outputs = self.outputs
        if self.name == "dataset" and "dataset" in outputs:
            splits = [outputs[key] for key in ("train_dataset", "test_dataset") if outputs.get(key)]
            rows = f" ({outputs['rows']:,} rows)" if "rows" in outputs else ""
            return outputs["dataset"] + rows + (f", split into {' and '.join(splits)}" if splits else "")
        if self.name == "automl" and "algorithm" in outputs:
            return (
                f"{outputs['automl_run']}: best child run {outputs['best_iteration']} ({outputs['algorithm']}) "
                f"of {outputs['child_runs']}, {outputs['primary_metric']} {outputs['validation_score']:.4f} on validation"
            )
        if self.name == "automl" and "automl_run" in outputs:
            return outputs["automl_run"]
        if self.name == "evaluate" and "score" in outputs:
            return f"{outputs['primary_metric']} {outputs['score']:.4f} on {outputs['evaluated_on']}"
        if self.name == "register" and "model" in outputs:
            return f"registered {outputs['model']}"
        if self.name == "deploy" and outputs.get("action") == "not deployed":
            serving = f", still serving {outputs['serving']}" if outputs.get("serving") else ""
            return f"{outputs['deployment']} not deployed ({outputs['reason']}){serving}"
        if self.name == "deploy" and "action" in outputs:
            return (
                f"{outputs['deployment']} {outputs['action']}, serving {outputs['serving']} ({outputs['reason']}), "
                f"scoring URI {outputs['scoring_uri']}"
            )
        return outputs.get("reason", "")


@dataclass(frozen=True)
class PipelineRun:
    """A run of a pipeline: the parent of one step run per step."""

    id: str
    pipeline_name: str
    pipeline_version: int
    published_id: str | None
    experiment: str
    trigger: str
    """``manual`` (Python), ``cli``, ``dashboard``, ``rest`` or ``schedule:<name>``."""
    status: str
    parameters: dict
    """The parameter assignments the run was started with."""
    definition: dict
    """The definition the run executes, assignments applied."""
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None
    steps: tuple[PipelineStep, ...]

    @property
    def pipeline_ref(self) -> str:
        return f"{self.pipeline_name}:{self.pipeline_version}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def duration_s(self) -> float | None:
        return _duration_s(self.started_at, self.ended_at)


@dataclass(frozen=True)
class ApiToken:
    """A bearer token for the API server; only its hash is stored."""

    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Schedule:
    """A recurring trigger of a published pipeline: every ``interval_s`` seconds or on a cron expression."""

    id: str
    name: str
    published_id: str
    interval_s: float | None
    cron: str | None
    experiment: str
    parameters: dict
    status: str
    """``Active`` or ``Paused``."""
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_run_id: str | None
    last_error: str | None
    created_at: datetime

    @property
    def recurrence(self) -> str:
        if self.cron:
            return f"cron {self.cron}"
        return f"every {format_interval(self.interval_s or 0)}"


def _duration_s(started_at: datetime | None, ended_at: datetime | None) -> float | None:
    if started_at is None or ended_at is None:
        return None
    return (ended_at - started_at).total_seconds()


def format_interval(seconds: float) -> str:
    """Write a number of seconds as the largest whole unit: ``90s``, ``15m``, ``2h``, ``1d``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class ApiServer:
    """The opml API server that serves published pipeline endpoints and runs schedules."""

    host: str
    port: int | None
    state: str
    """``Running``, ``Stopped`` or ``Unhealthy``."""
    pid: int | None
    started_at: datetime | None
    error: str | None

    @property
    def base_uri(self) -> str | None:
        return None if self.port is None else f"http://{self.host}:{self.port}"
