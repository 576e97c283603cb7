"""The model registry: register a run's model under a name, list, show, load and delete versions."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import joblib

from opml.automl.model import TrainedModel
from opml.backends.local.models import LocalModelRepository
from opml.errors import NotFoundError, OpmlError
from opml.records import Model
from opml.runs import RunService

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def validate_model_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise OpmlError(
            f"Invalid model name {name!r}: use 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )
    return name


def parse_model_ref(ref: str) -> tuple[str, int | None]:
    """Split ``name`` or ``name:version`` into the name and the version (None for latest)."""
    name, _, version_text = ref.partition(":")
    if not version_text:
        return validate_model_name(name), None
    if not version_text.isdigit() or int(version_text) < 1:
        raise OpmlError(f"Invalid model version {version_text!r} in {ref!r}: give a whole number from 1, as in {name}:1.")
    return validate_model_name(name), int(version_text)


class ModelService:
    def __init__(self, repository: LocalModelRepository, runs: RunService) -> None:
        self._repository = repository
        self._runs = runs
        self.in_use: Callable[[str, int], list[str]] = lambda name, version: []
        """Return the deployments serving a model version; the workspace connects it to the deployments."""

    def register(self, run_id: str, name: str, *, iteration: int | None = None, description: str = "") -> Model:
        """Register the best model of a run, or the child run ``iteration`` when it kept its model."""
        validate_model_name(name)
        run = self._runs.get(run_id)
        if run.status != "Completed":
            raise OpmlError(f"Run {run_id} is {run.status}; only a Completed run's models can be registered.")
        child = self._runs.child(run_id, iteration)
        source = self._runs.child_model_path(run_id, child.iteration)
        trained: TrainedModel = joblib.load(source)

        model = self._repository.add(
            name,
            description.strip(),
            source,
            {
                "run_id": run_id,
                "child_iteration": child.iteration,
                "algorithm": child.algorithm,
                "primary_metric": run.primary_metric,
                "dataset_name": run.dataset_name,
                "dataset_version": run.dataset_version,
                "metrics": child.metrics,
                "schema": trained.schema.to_dict(),
                "charts": child.charts,
                "feature_importance": child.feature_importance or [],
            },
        )
        log.info("Registered model %s from run %s child %d", model.ref, run_id, child.iteration)
        return model

    def list(self, name: str | None = None) -> list[Model]:
        return self._repository.list(name)

    def get(self, name: str, version: int | None = None) -> Model:
        model = self._repository.get(name, version)
        if model is not None:
            return model
        versions = [item.version for item in self._repository.list(name)]
        if not versions:
            known = sorted({item.name for item in self._repository.list()})
            hint = f"registered models: {', '.join(known)}" if known else "no models are registered yet"
            raise NotFoundError(f"Model {name!r} not found; {hint}.")
        raise NotFoundError(f"Model {name!r} has no version {version}; its versions are {', '.join(map(str, versions))}.")

    def file_path(self, name: str, version: int | None = None) -> Path:
        """Return the model file inside the workspace, for download."""
        return self._repository.file_path(self.get(name, version))

    def load(self, name: str, version: int | None = None) -> TrainedModel:
        """Load a registered model; models load only from the workspace's own files."""
        return joblib.load(self.file_path(name, version))

    def delete(self, name: str, version: int) -> None:
        self.get(name, version)
        users = self.in_use(name, version)
        if users:
            raise OpmlError(
                f"Model {name}:{version} is served by deployment(s) {', '.join(users)}; "
                "update them to another model or delete them first."
            )
        if not self._repository.delete(name, version):
            raise NotFoundError(f"Model {name}:{version} was deleted by another process meanwhile.")
