"""The pipelines service: save and version pipelines, publish them, run them, and schedule runs.

A pipeline run executes in a detached runner process
(``python -m opml.pipelines.runner HOME RUN_ID``) that works through the
steps in order. Published pipelines are triggered over HTTP through the
opml API server (``opml.api``), which authenticates bearer tokens created
here and fires the schedules.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import string
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cronsim import CronSim, CronSimError

from opml.api.control import ApiServerService
from opml.backends.local.pipelines import LocalPipelineRepository, to_published
from opml.backends.local.processes import is_alive, spawn_python_module, start_ticks
from opml.backends.local.store import utc_now
from opml.automl.settings import AutoMLSettings
from opml.datasets import DatasetService
from opml.deployments import default_deployment_name
from opml.errors import NotFoundError, OpmlError
from opml.pipelines.definition import STEP_NAMES, PipelineDefinition, validate_experiment_name, validate_pipeline_name
from opml.records import ApiToken, Pipeline, PipelineRun, PublishedPipeline, Schedule
from opml.runs import RunService

log = logging.getLogger(__name__)

RUNNER_MODULE = "opml.pipelines.runner"
TOKEN_PREFIX = "opml_"
SCHEDULE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
INTERVAL_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
INTERVAL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 366 * 86400.0
SPAWN_GRACE_S = 30.0
"""How long a run may stay without a recorded runner process before it counts as lost."""


MIN_ID_PREFIX = 6
"""The shortest prefix of a published pipeline id that the CLI expands."""

def parse_interval(text: str) -> float:
    """Read ``30s``, ``15m``, ``2h`` or ``1d``; a bare number is rejected, since its unit is a guess."""
    match = INTERVAL_PATTERN.match(str(text))
    if not match:
        raise OpmlError(f"Invalid interval {text!r}: give a number with a unit s, m, h or d, as in 15m or 1h.")
    seconds = float(match.group(1)) * INTERVAL_UNITS[match.group(2)]
    if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
        raise OpmlError(f"Invalid interval {text!r}: give from {MIN_INTERVAL_S:g} s to 366 days.")
    return seconds


def next_cron_time(expression: str, after: datetime) -> datetime:
    """Return the first time after ``after`` that a five-field cron expression (UTC) matches."""
    fields = expression.split()
    if len(fields) != 5:
        raise OpmlError(
            f"Invalid cron expression {expression!r}: it has {len(fields)} fields; give five, minute hour day month "
            "weekday, as in '0 3 * * *' for 03:00 UTC every day."
        )
    try:
        return next(CronSim(expression, after.replace(microsecond=0)))
    except (CronSimError, StopIteration) as error:
        raise OpmlError(
            f"Invalid cron expression {expression!r} ({error}): give five fields, minute hour day month weekday, "
            "as in '0 3 * * *' for 03:00 UTC every day."
        ) from error


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def fingerprint(*parts) -> str:
    """Hash a step's inputs, so an unchanged step can find and reuse its earlier output."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class PipelineService:
    def __init__(
        self,
        repository: LocalPipelineRepository,
        datasets: DatasetService,
        runs: RunService,
        api: ApiServerService,
        home: Path,
    ) -> None:
        self.repository = repository
        self._datasets = datasets
        self._runs = runs
        self.api = api
        self._home = home

    # Definitions

    def create(self, name: str, definition: PipelineDefinition, description: str = "") -> Pipeline:
        """Save ``definition`` as the next version of ``name``; an unchanged definition keeps its version."""
        validate_pipeline_name(name)
        # Reading the YAML form back gives every value its canonical type (8 becomes 8.0 seconds), so
        # equal definitions compare equal however they were built.
        definition = PipelineDefinition.from_dict(definition.to_dict())
        self._check_data(definition)
        latest = self.repository.get_pipeline(name, None)
        if not description.strip() and latest is not None:
            description = latest.description
        pipeline, created = self.repository.add_pipeline(name, description.strip(), definition.to_dict())
        if created:
            log.info("Saved pipeline %s", pipeline.ref)
        return pipeline

    def _check_data(self, definition: PipelineDefinition) -> None:
        """Check that the dataset version exists and has the label column, as a bad parameter (400) if not."""
        try:
            version = self._datasets.get(definition.dataset_name, definition.dataset_version)
        except NotFoundError as error:
            raise OpmlError(error.message) from error
        label = definition.automl.label_column_name
        columns = [column.name for column in version.profile.column_profiles]
        if label not in columns:
            raise OpmlError(f"Label column {label!r} not found in {version.ref}; its columns are {', '.join(columns)}.")

    def create_from_yaml(self, name: str, path: str | Path, description: str = "") -> Pipeline:
        """Save the definition in a YAML file; its ``description`` key is used unless ``description`` is given."""
        source = Path(path).expanduser()
        if not source.is_file():
            raise OpmlError(f"File not found: {str(path)!r}; give the path of a pipeline YAML file.")
        text = source.read_text(errors="replace")
        definition, file_description = PipelineDefinition.from_yaml_with_description(text, str(source))
        return self.create(name, definition, description or file_description)

    def get(self, name: str, version: int | None = None) -> Pipeline:
        pipeline = self.repository.get_pipeline(name, version)
        if pipeline is not None:
            return pipeline
        if version is not None and self.repository.get_pipeline(name, None) is not None:
            versions = ", ".join(str(item.version) for item in self.repository.pipeline_versions(name))
            raise NotFoundError(f"Pipeline {name!r} has no version {version}; its versions are {versions}.")
        known = [item.name for item in self.repository.list_pipelines()]
        hint = f"pipelines: {', '.join(known)}" if known else "create one with: opml pipelines create"
        raise NotFoundError(f"Pipeline {name!r} not found; {hint}.")

    def suggest_name(self, base: str) -> str:
        """Return ``base``, or ``base 2``, ``base 3``, ... when that pipeline name is taken."""
        existing_names = {item.name for item in self.repository.list_pipelines()}
        candidate, number = base, 1
        while candidate in existing_names:
            number += 1
            candidate = f"{base} {number}"
        return candidate

    def definition_from_run(self, run_id: str) -> PipelineDefinition:
        """Draft a definition that repeats an AutoML run: its dataset and settings, with a 0.2 test split.

        A run a pipeline started trained on a ``<name>-train`` split; the draft
        uses ``<name>`` itself, so the split is not split again.
        """
        run = self._runs.get(run_id)
        dataset = run.dataset_name
        if run.dataset_name.endswith("-train"):
            original = run.dataset_name.removesuffix("-train")
            if any(item.name == original for item in self._datasets.list()):
                dataset = original
        settings = {**run.settings, "n_cross_validations": run.settings.get("n_cross_validations") or 5, "validation_size": None}
        return PipelineDefinition(
            dataset_name=dataset,
            automl=AutoMLSettings.from_dict(settings),
            model_name=f"{dataset}-model",
            test_fraction=0.2,
            deployment_name=default_deployment_name(dataset),
            experiment=f"{dataset}-pipeline",
        )

    def definition(self, name: str, version: int | None = None) -> PipelineDefinition:
        return PipelineDefinition.from_dict(self.get(name, version).definition)

    def list(self) -> list[Pipeline]:
        return self.repository.list_pipelines()

    def versions(self, name: str) -> list[Pipeline]:
        self.get(name)
        return self.repository.pipeline_versions(name)

    def export_yaml(self, name: str, version: int | None = None) -> str:
        pipeline = self.get(name, version)
        return PipelineDefinition.from_dict(pipeline.definition).to_yaml(pipeline.description)

    # Published pipelines

    def publish(self, name: str, version: int | None = None, description: str = "") -> PublishedPipeline:
        """Give a pipeline version a REST endpoint on the API server."""
        pipeline = self.get(name, version)
        published_id = uuid.uuid4().hex
        self.repository.add_published(published_id, pipeline.name, pipeline.version, description.strip() or pipeline.description)
        log.info("Published %s as %s", pipeline.ref, published_id)
        return self.published(published_id)

    def published(self, reference: str) -> PublishedPipeline:
        """Find a published pipeline by id, or the newest one under a pipeline name, Active ones first."""
        row = self.repository.get_published(reference)
        if row is None:
            rows = [item for item in self.repository.list_published() if item["name"] == reference]
            active = [item for item in rows if item["status"] == "Active"]
            row = (active or rows or [None])[0]
        if row is None:
            raise NotFoundError(
                f"Published pipeline {reference!r} not found; list them with: opml pipelines list --published"
            )
        return to_published(row, self.api.endpoint(row["id"]))

    def endpoint_target(self, name: str) -> PublishedPipeline:
        """Return the publication that the by-name endpoint of ``name`` runs.

        That is the default publication when one is set, and otherwise the newest Active one.
        """
        rows = [item for item in self.repository.list_published() if item["name"] == name]
        default = next((item for item in rows if item["is_default"]), None)
        if default is not None and default["status"] != "Active":
            raise NotFoundError(
                f"The default publication {default['id']} of {name!r} is {default['status']}; enable it with: "
                f"opml pipelines enable {default['id']}, or clear the default with: opml pipelines clear-default {name!r}"
            )
        if default is None:
            default = next((item for item in rows if item["status"] == "Active"), None)
        if default is not None:
            return to_published(default, self.api.endpoint(default["id"]))
        if rows:
            raise NotFoundError(
                f"No Active published pipeline is named {name!r}: its {len(rows)} publication(s) are Disabled; "
                f"enable one with: opml pipelines enable {rows[0]['id']}"
            )
        if any(item.name == name for item in self.list()):
            raise NotFoundError(f"Pipeline {name!r} is not published; publish it with: opml pipelines publish {name!r}")
        raise NotFoundError(f"No published pipeline is named {name!r}; list them with: opml pipelines list --published")

    def set_default(self, published_id: str) -> PublishedPipeline:
        """Make an Active publication the one its name's endpoint runs, also after newer versions are published."""
        row = self.repository.get_published(published_id)
        if row is None:
            raise NotFoundError(
                f"Published pipeline {published_id!r} not found; give an id from: opml pipelines list --published"
            )
        if row["status"] != "Active":
            raise OpmlError(
                f"Published pipeline {published_id} is {row['status']}; enable it first with: opml pipelines enable {published_id}"
            )
        self.repository.set_default_published(row["name"], published_id)
        log.info("The endpoint of %s now runs %s", row["name"], published_id)
        return self.published(published_id)

    def clear_default(self, name: str) -> None:
        """Let the by-name endpoint of ``name`` run its newest Active publication again."""
        if not any(item["name"] == name for item in self.repository.list_published()):
            raise NotFoundError(f"No published pipeline is named {name!r}; list them with: opml pipelines list --published")
        self.repository.set_default_published(name, None)

    def list_published(self) -> list[PublishedPipeline]:
        base = self.api.base_uri()
        return [
            to_published(row, None if base is None else f"{base}/pipelines/{row['id']}")
            for row in self.repository.list_published()
        ]

    def resolve_published_id(self, reference: str) -> str:
        """Expand a unique prefix of a published pipeline id, such as the 8 characters the dashboard shows.

        Anything else comes back unchanged, so pipeline names keep working where they are accepted.
        """
        if len(reference) < MIN_ID_PREFIX or set(reference) - set(string.hexdigits.lower()):
            return reference
        if self.repository.get_published(reference) is not None or any(item.name == reference for item in self.list()):
            return reference
        matches = [row["id"] for row in self.repository.list_published() if row["id"].startswith(reference)]
        if len(matches) > 1:
            raise OpmlError(f"Published pipeline id prefix {reference!r} is ambiguous ({', '.join(matches)}); give more characters.")
        return matches[0] if matches else reference

    def is_published_id(self, reference: str) -> bool:
        return self.repository.get_published(reference) is not None

    def disable(self, reference: str) -> PublishedPipeline:
        published = self._one_published(reference, "Active")
        self.repository.set_published_status(published.id, "Disabled")
        return self.published(published.id)

    def enable(self, reference: str) -> PublishedPipeline:
        published = self._one_published(reference, "Disabled")
        self.repository.set_published_status(published.id, "Active")
        return self.published(published.id)

    def _one_published(self, reference: str, status: str) -> PublishedPipeline:
        """Resolve an id, or a name with exactly one publication in ``status``."""
        if self.repository.get_published(reference) is None:
            ids = [row["id"] for row in self.repository.list_published() if row["name"] == reference and row["status"] == status]
            if len(ids) > 1:
                raise OpmlError(
                    f"Several {status} published pipelines are named {reference!r} ({', '.join(ids)}); give one id."
                )
        return self.published(reference)

    # Runs

    def submit(
        self,
        name: str,
        version: int | None = None,
        *,
        parameters: dict | None = None,
        experiment: str | None = None,
        trigger: str = "manual",
        published_id: str | None = None,
    ) -> PipelineRun:
        """Start a run of a pipeline version with ``parameters`` overriding its flat parameters."""
        pipeline = self.get(name, version)
        if parameters is not None and not isinstance(parameters, dict):
            raise OpmlError("ParameterAssignments must be a JSON object of parameter names and values.")
        parameters = dict(parameters or {})
        definition = PipelineDefinition.from_dict(pipeline.definition).with_parameters(parameters)
        experiment = definition.experiment if experiment is None else validate_experiment_name(experiment)
        self._check_data(definition)

        run_id = f"PipelineRun_{uuid.uuid4().hex[:12]}"
        self.repository.insert_run(
            {
                "id": run_id,
                "pipeline_name": pipeline.name,
                "pipeline_version": pipeline.version,
                "published_id": published_id,
                "experiment": experiment,
                "trigger": trigger,
                "status": "Queued",
                "parameters_json": json.dumps(parameters),
                "definition_json": json.dumps(definition.to_dict()),
                "created_at": utc_now(),
            },
            STEP_NAMES,
        )
        process = spawn_python_module(RUNNER_MODULE, [str(self._home), run_id], self.repository.log_path(run_id), detached=True)
        self.repository.set_run_process(run_id, process.pid, start_ticks(process.pid))
        log.info("Started pipeline run %s of %s (runner pid %d)", run_id, pipeline.ref, process.pid)
        return self.get_run(run_id)

    def submit_published(
        self, published_id: str, *, parameters: dict | None = None, experiment: str | None = None, trigger: str = "rest"
    ) -> PipelineRun:
        """Start a run of an Active published pipeline; a Disabled one is reported as not found."""
        row = self.repository.get_published(published_id)
        if row is None:
            raise NotFoundError(f"Published pipeline {published_id!r} not found; list them with: opml pipelines list --published")
        if row["status"] != "Active":
            raise NotFoundError(
                f"Published pipeline {published_id!r} is {row['status']}; enable it with: opml pipelines enable {published_id}"
            )
        return self.submit(
            row["name"],
            row["pipeline_version"],
            parameters=parameters,
            experiment=experiment,
            trigger=trigger,
            published_id=published_id,
        )

    def get_run(self, run_id: str) -> PipelineRun:
        self.reconcile()
        run = self.repository.get_run(run_id)
        if run is None:
            raise NotFoundError(f"Pipeline run {run_id!r} not found; list them with: opml pipelines runs")
        return run

    def list_runs(self, limit: int = 100, pipeline: str | None = None) -> list[PipelineRun]:
        self.reconcile()
        return self.repository.list_runs(limit, pipeline)

    def cancel(self, run_id: str) -> PipelineRun:
        run = self.get_run(run_id)
        if not run.is_active:
            raise OpmlError(f"Pipeline run {run_id} is already {run.status}; only Queued or Running runs can be canceled.")
        self.repository.request_cancel(run_id)
        return self.get_run(run_id)

    def logs(self, run_id: str, step: str | None = None, tail: int | None = None) -> str:
        self.get_run(run_id)
        if step is not None and step not in STEP_NAMES:
            raise OpmlError(f"Unknown step {step!r}: the steps are {', '.join(STEP_NAMES)}.")
        path = self.repository.log_path(run_id, step)
        if not path.exists():
            return ""
        lines = path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:] if tail else lines)

    def wait(self, run_id: str, timeout_s: float | None = None, poll_s: float = 1.0) -> PipelineRun:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            run = self.get_run(run_id)
            if not run.is_active or (deadline is not None and time.monotonic() > deadline):
                return run
            time.sleep(poll_s)

    def reconcile(self) -> None:
        """End active runs whose runner process is gone, so none stays Running forever."""
        for row in self.repository.active_run_rows():
            if row["pid"] is None:
                run = self.repository.get_run(row["id"])
                if run is not None and (datetime.now(timezone.utc) - run.created_at).total_seconds() < SPAWN_GRACE_S:
                    continue
            elif is_alive(row["pid"], row["process_start"]):
                continue
            run = self.repository.get_run(row["id"])
            for step in run.steps:
                automl_run = step.outputs.get("automl_run")
                if step.status == "Running" and automl_run:
                    try:
                        if self._runs.get(automl_run).is_active:
                            self._runs.cancel(automl_run)
                    except OpmlError:
                        pass
            if row["cancel_requested"]:
                self.repository.finish_run(row["id"], "Canceled", "Canceled by request")
            elif self.repository.finish_run(
                row["id"],
                "Failed",
                f"The runner process (pid {row['pid']}) ended without recording a result; see the run log.",
            ):
                log.warning("Pipeline run %s failed: its runner process is gone", row["id"])

    # API tokens

    def create_token(self, name: str) -> tuple[ApiToken, str]:
        """Create a bearer token; the secret is returned once and only its hash is stored."""
        if not SCHEDULE_NAME_PATTERN.match(name or ""):
            raise OpmlError(
                f"Invalid token name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', as in ci-trigger."
            )
        if any(item.name == name and item.active for item in self.repository.list_tokens()):
            raise OpmlError(f"An active token is already named {name!r}; revoke it first or choose another name.")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = uuid.uuid4().hex[:12]
        self.repository.add_token(token_id, name, hash_token(secret))
        token = next(item for item in self.repository.list_tokens() if item.id == token_id)
        return token, secret

    def list_tokens(self) -> list[ApiToken]:
        return self.repository.list_tokens()

    def revoke_token(self, reference: str) -> ApiToken:
        """Revoke a token by id or name; requests with it get 401 at once."""
        matches = [item for item in self.repository.list_tokens() if reference in (item.id, item.name) and item.active]
        if not matches:
            raise NotFoundError(f"No active API token with id or name {reference!r}; list them with: opml api token list")
        if len(matches) > 1:
            ids = ", ".join(item.id for item in matches)
            raise OpmlError(f"Several active tokens are named {reference!r} ({ids}); revoke one by its id.")
        self.repository.revoke_token(matches[0].id)
        return next(item for item in self.repository.list_tokens() if item.id == matches[0].id)

    def authenticate(self, secret: str) -> ApiToken | None:
        return self.repository.use_token(hash_token(secret)) if secret else None

    # Schedules

    def create_schedule(
        self,
        name: str,
        published: str,
        *,
        every: str | None = None,
        cron: str | None = None,
        parameters: dict | None = None,
        experiment: str | None = None,
    ) -> Schedule:
        """Trigger a published pipeline every ``every`` (such as 1h) or on a cron expression in UTC."""
        if not SCHEDULE_NAME_PATTERN.match(name or ""):
            raise OpmlError(f"Invalid schedule name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', as in nightly.")
        if self.repository.get_schedule(name) is not None:
            raise OpmlError(f"Schedule {name!r} already exists; delete it first or choose another name.")
        if every is None and cron is None:
            raise OpmlError("Missing recurrence: give an interval (such as 1h) or a cron expression (such as '0 3 * * *').")
        if every is not None and cron is not None:
            raise OpmlError("Give either an interval or a cron expression, not both.")
        target = self.published(published)
        if target.status != "Active":
            raise OpmlError(
                f"Published pipeline {target.id} ({target.name}:{target.pipeline_version}) is {target.status}; "
                f"enable it first with: opml pipelines enable {target.id}"
            )
        pipeline = self.get(target.name, target.pipeline_version)
        PipelineDefinition.from_dict(pipeline.definition).with_parameters(parameters or {})
        if experiment:
            validate_experiment_name(experiment)
        interval_s = parse_interval(every) if every is not None else None
        now = datetime.now(timezone.utc)
        first = now + timedelta(seconds=interval_s) if interval_s else next_cron_time(cron, now)

        self.repository.add_schedule(
            {
                "id": uuid.uuid4().hex[:12],
                "name": name,
                "published_id": target.id,
                "interval_s": interval_s,
                "cron": cron,
                "experiment": experiment or PipelineDefinition.from_dict(pipeline.definition).experiment,
                "parameters_json": json.dumps(parameters or {}),
                "status": "Active",
                "next_run_at": first.isoformat(timespec="milliseconds"),
                "created_at": utc_now(),
            }
        )
        return self.schedule(name)

    def schedule(self, name: str) -> Schedule:
        found = self.repository.get_schedule(name)
        if found is None:
            raise NotFoundError(f"Schedule {name!r} not found; list them with: opml pipelines schedule list")
        return found

    def list_schedules(self) -> list[Schedule]:
        return self.repository.list_schedules()

    def pause_schedule(self, name: str) -> Schedule:
        self.schedule(name)
        self.repository.update_schedule(name, f"Paused schedule {name}", status="Paused", next_run_at=None)
        return self.schedule(name)

    def resume_schedule(self, name: str) -> Schedule:
        schedule = self.schedule(name)
        next_run = self._next_time(schedule, datetime.now(timezone.utc))
        self.repository.update_schedule(name, f"Resumed schedule {name}", status="Active", next_run_at=next_run)
        return self.schedule(name)

    def delete_schedule(self, name: str) -> None:
        self.schedule(name)
        self.repository.delete_schedule(name)

    def fire_due_schedules(self, now: datetime | None = None) -> list[str]:
        """Start a run for each Active schedule whose time has come; return the run ids.

        A schedule whose time passed while the API server was down fires
        once, then continues from now. A schedule whose previous run is still
        active skips this turn, so slow runs do not pile up.
        """
        now = now or datetime.now(timezone.utc)
        self.reconcile()
        started = []
        for schedule in self.repository.list_schedules():
            if schedule.status != "Active" or schedule.next_run_at is None or schedule.next_run_at > now:
                continue
            expected = schedule.next_run_at.isoformat(timespec="milliseconds")
            if not self.repository.claim_schedule(schedule.name, expected, self._next_time(schedule, now)):
                continue
            if schedule.last_run_id:
                previous = self.repository.get_run(schedule.last_run_id)
                if previous is not None and previous.is_active:
                    note = f"Skipped at {now:%Y-%m-%d %H:%M:%S} UTC: run {previous.id} is still {previous.status}."
                    self.repository.update_schedule(schedule.name, last_error=note)
                    log.info("Schedule %s: %s", schedule.name, note)
                    continue
            try:
                run = self.submit_published(
                    schedule.published_id,
                    parameters=schedule.parameters,
                    experiment=schedule.experiment,
                    trigger=f"schedule:{schedule.name}",
                )
            except OpmlError as error:
                self.repository.update_schedule(schedule.name, last_error=error.message)
                log.warning("Schedule %s could not start a run: %s", schedule.name, error.message)
                continue
            self.repository.update_schedule(schedule.name, last_run_id=run.id, last_error=None)
            log.info("Schedule %s started pipeline run %s", schedule.name, run.id)
            started.append(run.id)
        return started

    @staticmethod
    def _next_time(schedule: Schedule, now: datetime) -> str:
        if schedule.cron:
            following = next_cron_time(schedule.cron, now)
        else:
            following = now + timedelta(seconds=schedule.interval_s or MIN_INTERVAL_S)
        return following.isoformat(timespec="milliseconds")
