"""Opening a workspace: ``connect()`` hands out the services over one backend."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from opml.api.control import ApiServerService
from opml.backends.local.activity import recent_activity
from opml.backends.local.compute import LocalCompute
from opml.backends.local.datasets import LocalDatasetRepository
from opml.backends.local.deployments import LocalDeploymentRepository
from opml.backends.local.models import LocalModelRepository
from opml.backends.local.pipelines import LocalPipelineRepository
from opml.backends.local.runs import LocalRunRepository
from opml.backends.local.store import MetadataStore
from opml.benchmark import BenchmarkService
from opml.datasets import DatasetService
from opml.deployments import DeploymentService
from opml.errors import OpmlError
from opml.models import ModelService
from opml.pipelines.service import PipelineService
from opml.records import Activity
from opml.runs import RunService
from opml.settings import Settings

log = logging.getLogger(__name__)

METADATA_FILE = "opml.db"


@dataclass(frozen=True)
class WorkspaceSummary:
    datasets: int
    dataset_versions: int
    runs: int | None
    models: int | None
    deployments: int | None
    pipeline_runs: int
    """None for capabilities this version of opml does not provide yet."""


class Workspace:
    """Everything opml manages; locally the folder ``settings.home``."""

    backend = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.home
        self.metadata_path = self.home / METADATA_FILE
        self.artifact_path = self.home / "artifacts"

        try:
            self.artifact_path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OpmlError(
                f"Could not create the workspace at {self.home}: {error.strerror}; "
                "set OPML_HOME to a writable folder."
            ) from error

        self.store = MetadataStore(self.metadata_path)
        repository = LocalDatasetRepository(self.store, self.artifact_path, self.home / "staging")
        repository.remove_orphans()
        self.datasets = DatasetService(repository, settings)
        self._dataset_repository = repository

        run_repository = LocalRunRepository(self.store, self.artifact_path)
        self.compute = LocalCompute(self.store, run_repository, self.home, settings.max_nodes)
        self.runs = RunService(run_repository, self.compute, self.datasets)
        self._model_repository = LocalModelRepository(self.store, self.artifact_path)
        self.models = ModelService(self._model_repository, self.runs)
        self._deployment_repository = LocalDeploymentRepository(self.store, self.artifact_path)
        self.deployments = DeploymentService(self._deployment_repository, self.models, self.datasets, self.metadata_path)
        self.deployments.reconcile_processes()
        self.models.in_use = self.deployments.serving
        self.benchmarks = BenchmarkService(self.store, self.deployments, self.datasets)
        pipeline_repository = LocalPipelineRepository(self.store, self.artifact_path)
        self.api = ApiServerService(pipeline_repository, self.home)
        self.pipelines = PipelineService(pipeline_repository, self.datasets, self.runs, self.api, self.home)
        self.compute.reconcile()
        self.pipelines.reconcile()
        log.info("Opened workspace %s (schema version %d)", self.home, self.store.schema_version)

    @property
    def schema_version(self) -> int:
        return self.store.schema_version

    def summary(self) -> WorkspaceSummary:
        datasets, versions = self._dataset_repository.count()
        return WorkspaceSummary(
            datasets=datasets,
            dataset_versions=versions,
            runs=self.runs.repository.count(),
            models=self._model_repository.count(),
            deployments=self._deployment_repository.count(),
            pipeline_runs=self.pipelines.repository.count_runs(),
        )

    def recent_activity(self, limit: int = 10) -> list[Activity]:
        return recent_activity(self.store, limit)


def connect(home: str | Path | None = None) -> Workspace:
    """Open the workspace at ``home``, else ``OPML_HOME``, else ``./.opml``, creating it on first use."""
    return Workspace(Settings.from_environment(home))
