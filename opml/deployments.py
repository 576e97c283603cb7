"""The deployments service: run a registered model as a scoring web service, and operate it."""

from __future__ import annotations

import logging
import re
import secrets
import socket
import time
import uuid
from collections.abc import Callable

import requests

from opml.backends.local.deployments import LocalDeploymentRepository
from opml.backends.local.processes import is_alive, spawn_python_module, start_ticks, stop_group
from opml.backends.local.store import utc_now
from opml.errors import NotFoundError, OpmlError
from opml.models import ModelService
from opml.records import Deployment

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")
SERVER_MODULE = "opml.serving"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0
HEALTH_TIMEOUT_S = 1.0
MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_WORKERS = 2
UNKNOWN_CATEGORY_POLICIES = ("accept", "reject")
DEPLOYMENT_HEADER = "x-opml-deployment-id"


def validate_deployment_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise OpmlError(
            f"Invalid deployment name {name!r}: use 2 to 32 lowercase letters, digits or '-', "
            "starting with a letter or digit, as in bankmarketing-service."
        )
    return name


def default_deployment_name(model_name: str) -> str:
    """Suggest a deployment name for a model: lowercase, '-' for other characters, ``-service`` appended."""
    base = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")[:24] or "model"
    return f"{base}-service"


def new_key() -> str:
    return secrets.token_urlsafe(32)


def check_port_free(host: str, port: int) -> None:
    """Raise OpmlError when ``host:port`` cannot be bound, naming the port."""
    with socket.socket() as probe:
        # As uvicorn binds: connections of a stopped server in TIME_WAIT do not block the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise OpmlError(
                f"Port {port} on {host} is not available ({error.strerror}); choose another port or leave it unset."
            ) from error


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class DeploymentService:
    def __init__(self, repository: LocalDeploymentRepository, models: ModelService, datasets, metadata_path) -> None:
        self.repository = repository
        self._models = models
        self._datasets = datasets
        self._metadata_path = metadata_path

    def deploy(
        self,
        model_name: str,
        name: str,
        *,
        model_version: int | None = None,
        auth_enabled: bool = True,
        host: str = "127.0.0.1",
        port: int | None = None,
        workers: int = DEFAULT_WORKERS,
        unknown_categories: str = "accept",
    ) -> Deployment:
        """Start a scoring service for a model version and wait until its health check passes."""
        validate_deployment_name(name)
        if self.repository.get(name) is not None:
            raise OpmlError(
                f"Deployment {name!r} already exists; update it with another model version or delete it first."
            )
        if port is not None and not 1 <= port <= 65535:
            raise OpmlError(f"Invalid port {port}: give 1 to 65535, or leave it unset for a free port.")
        if not 1 <= workers <= 16:
            raise OpmlError(f"Invalid number of workers {workers}: give 1 to 16.")
        if unknown_categories not in UNKNOWN_CATEGORY_POLICIES:
            raise OpmlError(f"Invalid unknown-category policy {unknown_categories!r}: use accept or reject.")
        model = self._models.get(model_name, model_version)
        if port is not None:
            check_port_free(host, port)

        self.repository.insert(
            {
                "name": name,
                "id": uuid.uuid4().hex,
                "model_name": model.name,
                "model_version": model.version,
                "host": host,
                "requested_port": port,
                "workers": workers,
                "unknown_categories": unknown_categories,
                "state": "Transitioning",
                "auth_enabled": int(auth_enabled),
                "primary_key": new_key(),
                "secondary_key": new_key(),
                "insights_enabled": 0,
                "insights_samples": 0,
                "created_at": utc_now(),
            }
        )
        return self._start(name)

    def serving(self, model_name: str, model_version: int) -> list[str]:
        """Return the names of deployments configured to serve a model version, whatever their state."""
        return [
            item.name
            for item in self.repository.list()
            if item.model_name == model_name and item.model_version == model_version
        ]

    def reconcile_processes(self) -> None:
        """Mark deployments whose server process is gone as Unhealthy, without any HTTP call.

        Runs when the workspace is opened; ``list`` and ``get`` also run the
        health check.
        """
        for deployment in self.repository.list():
            if deployment.state not in ("Healthy", "Transitioning"):
                continue
            if not is_alive(deployment.pid, self.repository.server_settings(deployment.name).get("process_start")):
                error = f"The service process (pid {deployment.pid}) is gone; restart the deployment."
                self.repository.update(deployment.name, state="Unhealthy", error=error)
                log.warning("Deployment %s is Unhealthy: %s", deployment.name, error)

    def list(self) -> list[Deployment]:
        return [self._reconcile(deployment) for deployment in self.repository.list()]

    def get(self, name: str) -> Deployment:
        deployment = self.repository.get(name)
        if deployment is None:
            known = [item.name for item in self.repository.list()]
            hint = f"deployments: {', '.join(known)}" if known else "nothing is deployed yet"
            raise NotFoundError(f"Deployment {name!r} not found; {hint}.")
        return self._reconcile(deployment)

    def stop(self, name: str) -> Deployment:
        deployment = self.get(name)
        self._terminate(deployment)
        self.repository.update(name, activity=f"Stopped deployment {name}", state="Stopped", pid=None, process_start=None, error=None)
        return self.get(name)

    def start(self, name: str) -> Deployment:
        deployment = self.get(name)
        if deployment.state in ("Healthy", "Transitioning"):
            raise OpmlError(f"Deployment {name} is already {deployment.state}; restart it to reload.")
        return self._start(name)

    def restart(self, name: str) -> Deployment:
        deployment = self.get(name)
        self._terminate(deployment)
        return self._start(name)

    def update(self, name: str, model_version: int | None = None, model_name: str | None = None) -> Deployment:
        """Serve another model version; the service restarts on the same port."""
        deployment = self.get(name)
        model = self._models.get(model_name or deployment.model_name, model_version)
        self._terminate(deployment)
        self.repository.update(
            name,
            activity=f"Updated deployment {name} to model {model.ref}",
            model_name=model.name,
            model_version=model.version,
            requested_port=deployment.port,
        )
        return self._start(name)

    def delete(self, name: str) -> None:
        deployment = self.get(name)
        self._terminate(deployment)
        self.repository.delete(deployment)
        log.info("Deleted deployment %s", name)

    def regenerate_key(self, name: str, which: str = "primary") -> Deployment:
        if which not in ("primary", "secondary"):
            raise OpmlError(f"Invalid key {which!r}: regenerate the primary or the secondary key.")
        self.get(name)
        self.repository.update(name, activity=f"Regenerated the {which} key of {name}", **{f"{which}_key": new_key()})
        return self._write_config(name)

    def set_insights(self, name: str, enabled: bool, *, samples: bool = False) -> Deployment:
        """Turn per-request telemetry on or off; the running service picks it up within a request."""
        self.get(name)
        state = "on" if enabled else "off"
        self.repository.update(
            name,
            activity=f"Turned insights {state} for {name}",
            insights_enabled=int(enabled),
            insights_samples=int(enabled and samples),
        )
        return self._write_config(name)

    def scoring_target(self, name: str):
        """Return the deployment as a target for the scoring client, with its primary key and schema."""
        from opml.scoring import ScoringTarget

        deployment = self.get(name)
        if deployment.scoring_uri is None:
            raise OpmlError(f"Deployment {name} has no port yet; start it first.")
        schema = self._models.get(deployment.model_name, deployment.model_version).schema
        key = deployment.primary_key if deployment.auth_enabled else None
        return ScoringTarget(scoring_uri=deployment.scoring_uri, key=key, schema=schema, name=name)

    def training_row(self, name: str) -> dict:
        """Return a random row of the data the served model was trained on, features only.

        Numbers come back as floats and categories as strings, the types of
        the playground's inputs; a missing value is None.
        """
        import pandas as pd

        deployment = self.get(name)
        model = self._models.get(deployment.model_name, deployment.model_version)
        frame = self._datasets.load(model.dataset_name, model.dataset_version)
        row = frame.sample(1).iloc[0]
        values = {}
        for feature in model.schema["features"]:
            value = row[feature["name"]]
            if pd.isna(value):
                values[feature["name"]] = None
            elif feature.get("categories") is not None:
                values[feature["name"]] = str(value)
            else:
                values[feature["name"]] = float(value)
        return values

    def logs(self, name: str, tail: int | None = None) -> str:
        path = self.repository.log_path(self.get(name))
        if not path.exists():
            return ""
        lines = path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:] if tail else lines)

    def requests(self, name: str, limit: int = 5000) -> list[dict]:
        """Return the recorded requests, newest first."""
        return self.repository.requests(self.get(name), limit)

    def _start(self, name: str) -> Deployment:
        deployment = self.repository.get(name)
        settings = self.repository.server_settings(name)
        port = settings["requested_port"] or deployment.port or free_port(deployment.host)
        self.repository.update(name, state="Transitioning", port=port, error=None)
        deployment = self._write_config(name)

        folder = self.repository.deployment_folder(deployment)
        log_path = self.repository.log_path(deployment)
        log_offset = log_path.stat().st_size if log_path.exists() else 0
        process = spawn_python_module(
            SERVER_MODULE,
            [str(folder), deployment.host, str(port), str(settings["workers"])],
            self.repository.log_path(deployment),
            detached=True,
        )
        self.repository.update(name, pid=process.pid, process_start=start_ticks(process.pid), started_at=utc_now())
        log.info("Starting deployment %s on %s:%d (pid %d)", name, deployment.host, port, process.pid)
        return self._wait_until_healthy(name, process.poll, log_offset)

    def _wait_until_healthy(self, name: str, exit_code: Callable[[], int | None], log_offset: int) -> Deployment:
        deployment = self.repository.get(name)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if exit_code() is not None:
                reason = self._failure_reason(deployment, log_offset)
                self.repository.update(name, activity=f"Deployment {name} failed to start", state="Failed", error=reason, pid=None)
                log.error("Deployment %s failed to start: %s", name, reason)
                return self.repository.get(name)
            if self._healthy(deployment):
                self.repository.update(name, state="Healthy", error=None)
                return self.repository.get(name)
            time.sleep(0.25)
        self._terminate(deployment)
        reason = f"The service health check did not pass within {START_TIMEOUT_S:.0f} s; see the deployment log."
        self.repository.update(name, state="Failed", error=reason, pid=None)
        return self.repository.get(name)

    def _failure_reason(self, deployment: Deployment, log_offset: int) -> str:
        """Return the most telling line the server logged since ``log_offset``."""
        path = self.repository.log_path(deployment)
        with path.open("rb") as log_file:
            log_file.seek(log_offset)
            lines = log_file.read().decode(errors="replace").splitlines()
        errors = [line for line in lines if " ERROR " in line or "[Errno" in line or "Error:" in line]
        if errors:
            detail = errors[-1].strip()
        elif lines:
            detail = lines[-1].strip()
        else:
            detail = "no output"
        return f"The service process exited during start: {detail}"

    def _healthy(self, deployment: Deployment) -> bool:
        if deployment.base_uri is None:
            return False
        try:
            response = requests.get(deployment.base_uri + "/", timeout=HEALTH_TIMEOUT_S)
        except requests.RequestException:
            return False
        # Another server on the same port must not pass for this deployment.
        return (
            response.status_code == 200
            and response.text == "Healthy"
            and response.headers.get(DEPLOYMENT_HEADER) == deployment.id
        )

    def _reconcile(self, deployment: Deployment) -> Deployment:
        """Compare the recorded state with the process and its health check, and record any change."""
        if deployment.state not in ("Healthy", "Unhealthy"):
            return deployment
        alive = is_alive(deployment.pid, self.repository.server_settings(deployment.name).get("process_start"))
        if not alive:
            state, error = "Unhealthy", f"The service process (pid {deployment.pid}) is gone; restart the deployment."
        elif not self._healthy(deployment):
            state, error = "Unhealthy", "The service health check fails; see the deployment log."
        else:
            state, error = "Healthy", None
        if state != deployment.state or error != deployment.error:
            self.repository.update(deployment.name, state=state, error=error)
            log.warning("Deployment %s is %s: %s", deployment.name, state, error)
            return self.repository.get(deployment.name)
        return deployment

    def _terminate(self, deployment: Deployment) -> None:
        """Stop the server's whole process group, uvicorn's workers included."""
        if deployment.pid is None:
            return
        stop_group(deployment.pid, STOP_TIMEOUT_S)
        log.info("Stopped deployment %s (pid %d)", deployment.name, deployment.pid)

    def _write_config(self, name: str) -> Deployment:
        deployment = self.repository.get(name)
        model = self._models.get(deployment.model_name, deployment.model_version)
        self.repository.write_config(
            deployment,
            {
                "name": deployment.name,
                "deployment_id": deployment.id,
                "model_path": str(self._models.file_path(model.name, model.version)),
                "model_ref": model.ref,
                "model_version": model.version,
                "schema": model.schema,
                "auth_enabled": deployment.auth_enabled,
                "keys": [deployment.primary_key, deployment.secondary_key],
                "insights": deployment.insights_enabled,
                "samples": deployment.insights_samples,
                "metadata_path": str(self._metadata_path),
                "max_body_bytes": MAX_BODY_BYTES,
                "unknown_categories": self.repository.server_settings(name)["unknown_categories"],
            },
        )
        return deployment
