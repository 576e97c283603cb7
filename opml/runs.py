"""The runs service: submit AutoML runs, follow them, cancel them, read their logs."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import joblib

from opml.automl.model import TrainedModel
from opml.automl.settings import AutoMLSettings
from opml.backends.local.compute import LocalCompute
from opml.backends.local.runs import LocalRunRepository
from opml.datasets import DatasetService
from opml.errors import NotFoundError, OpmlError
from opml.records import ChildRun, Run

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "automl"
MODEL_FOLDER = "models"


class RunService:
    def __init__(self, repository: LocalRunRepository, compute: LocalCompute, datasets: DatasetService) -> None:
        self.repository = repository
        self._compute = compute
        self._datasets = datasets

    def submit_automl_run(
        self,
        dataset: str,
        settings: AutoMLSettings,
        *,
        version: int | None = None,
        experiment: str = DEFAULT_EXPERIMENT,
    ) -> Run:
        """Check the settings against the data, queue the run and start it when a node is free."""
        settings.validate()
        dataset_version = self._datasets.get(dataset, version)
        frame = self._datasets.load(dataset_version.name, dataset_version.version)
        settings.validate_data(frame, dataset_version.ref)

        run_id = f"AutoML_{uuid.uuid4().hex[:12]}"
        self.repository.insert(
            run_id, experiment, "automl", dataset_version.name, dataset_version.version, settings.to_dict()
        )
        log.info("Submitted run %s on %s", run_id, dataset_version.ref)
        self._compute.dispatch()
        return self.get(run_id)

    def get(self, run_id: str) -> Run:
        self._compute.reconcile()
        run = self.repository.get(run_id)
        if run is None:
            raise NotFoundError(f"Run {run_id!r} not found; list runs with: opml runs list")
        return run

    def list(self, limit: int = 100) -> list[Run]:
        self._compute.reconcile()
        return self.repository.list(limit)

    def children(self, run_id: str) -> list[ChildRun]:
        self.get(run_id)
        return self.repository.children(run_id)

    def child(self, run_id: str, iteration: int | None = None) -> ChildRun:
        """Return a child run, or the best one when ``iteration`` is None."""
        run = self.get(run_id)
        if iteration is None:
            if run.best_iteration is None:
                raise OpmlError(f"Run {run_id} has no best model yet (status {run.status}); wait until it is Completed.")
            iteration = run.best_iteration
        child = self.repository.child(run_id, iteration)
        if child is None:
            raise NotFoundError(f"Run {run_id} has no child run {iteration}.")
        return child

    def cancel_requested(self, run_id: str) -> bool:
        row = next((row for row in self.repository.process_rows() if row["id"] == run_id), None)
        return bool(row and row["cancel_requested"])

    def cancel(self, run_id: str) -> Run:
        run = self.get(run_id)
        if not run.is_active:
            raise OpmlError(f"Run {run_id} is already {run.status}; only Queued or Running runs can be canceled.")
        self.repository.request_cancel(run_id)
        log.info("Cancel requested for run %s", run_id)
        return self.get(run_id)

    def logs(self, run_id: str, tail: int | None = None) -> str:
        self.get(run_id)
        path = self.repository.log_path(run_id)
        if not path.exists():
            return ""
        lines = path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:] if tail else lines)

    def wait(self, run_id: str, timeout_s: float | None = None, poll_s: float = 1.0) -> Run:
        """Block until the run ends or ``timeout_s`` passes; return its latest state."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            run = self.get(run_id)
            if not run.is_active or (deadline is not None and time.monotonic() > deadline):
                return run
            time.sleep(poll_s)

    def child_model_path(self, run_id: str, iteration: int) -> Path:
        path = self.repository.child_model_path(run_id, iteration)
        if path is None:
            raise OpmlError(
                f"Child run {iteration} of {run_id} kept no model; register the best child run or a member of its ensemble."
            )
        return path

    def load_child_model(self, run_id: str, iteration: int) -> TrainedModel:
        return joblib.load(self.child_model_path(run_id, iteration))
