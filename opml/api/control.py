"""Start, stop and watch the opml API server, the process behind published pipeline endpoints.

The server is one detached uvicorn process per workspace
(``python -m opml.api HOME HOST PORT INSTANCE_ID``), recorded in the
``services`` table with its pid and start time. It keeps its port across
restarts, so published endpoint URLs stay valid.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import requests

from opml.backends.local.pipelines import LocalPipelineRepository
from opml.backends.local.processes import is_alive, spawn_python_module, start_ticks, stop_group
from opml.backends.local.store import utc_now
from opml.deployments import check_port_free, free_port
from opml.errors import OpmlError
from opml.records import ApiServer

log = logging.getLogger(__name__)

SERVICE_NAME = "api"
SERVER_MODULE = "opml.api"
INSTANCE_HEADER = "x-opml-api-instance"
START_TIMEOUT_S = 60.0
HEALTH_TIMEOUT_S = 3.0
STOPPED_ON_REQUEST = "Stopped on request; start it to serve the endpoints and fire the schedules."
BUSY_GRACE_S = 5.0
STOP_TIMEOUT_S = 10.0
LOG_FILE = "api-server.log"
LOCK_FILE = "api-server.lock"


class ApiServerService:
    def __init__(self, repository: LocalPipelineRepository, home: Path) -> None:
        self._repository = repository
        self._home = home
        self.log_path = repository.folder.parent / LOG_FILE
        self._lock_path = home / LOCK_FILE

    def status(self) -> ApiServer:
        """Return the server's state: Running, Stopped, or Unhealthy when its process died or fails its health check."""
        row = self._repository.service(SERVICE_NAME)
        if row is None:
            return ApiServer(host="127.0.0.1", port=None, state="Stopped", pid=None, started_at=None, error=None)
        started = None if row["started_at"] is None else datetime.fromisoformat(row["started_at"])
        if row["pid"] is None:
            state, error = "Stopped", row["error"]
        elif not is_alive(row["pid"], row["process_start"]):
            state, error = "Unhealthy", f"The API server process (pid {row['pid']}) is gone; start it with: opml api start"
        elif not self._healthy(row["host"], row["port"], row["instance_id"]):
            state, error = "Unhealthy", "The API server does not answer its health check; see its log or restart it."
        else:
            state, error = "Running", None
        return ApiServer(host=row["host"], port=row["port"], state=state, pid=row["pid"], started_at=started, error=error)

    def base_uri(self) -> str | None:
        """Return the server's address, known once it has had a port; no health check."""
        row = self._repository.service(SERVICE_NAME)
        if row is None or row["port"] is None:
            return None
        return f"http://{row['host']}:{row['port']}"

    def endpoint(self, published_id: str) -> str | None:
        base = self.base_uri()
        return None if base is None else f"{base}/pipelines/{published_id}"

    def name_endpoint(self, pipeline_name: str) -> str | None:
        """Return the endpoint that runs the default publication of ``pipeline_name``, or else its newest Active one."""
        base = self.base_uri()
        return None if base is None else f"{base}/pipelines/by-name/{quote(pipeline_name, safe='')}"

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the workspace's API server lock, so that two processes never start or stop it at once."""
        with self._lock_path.open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def start(self, host: str = "127.0.0.1", port: int | None = None) -> ApiServer:
        """Start the server, on ``port``, else its previous port, else ``OPML_API_PORT``, else a free one."""
        with self._exclusive():
            return self._start(host, port)

    def _start(self, host: str, port: int | None) -> ApiServer:
        current = self.status()
        if current.state == "Running":
            if port is not None and port != current.port:
                raise OpmlError(f"The API server already runs on port {current.port}; stop it first to move it to {port}.")
            return current
        if current.pid is not None:
            stop_group(current.pid, STOP_TIMEOUT_S)
        if port is not None and not 1 <= port <= 65535:
            raise OpmlError(f"Invalid port {port}: give 1 to 65535, or leave it unset.")

        port = port or current.port or _environment_port()
        if port is None:
            port = free_port(host)
        else:
            try:
                check_port_free(host, port)
            except OpmlError:
                if port == current.port:
                    # The old port is taken by something else; a new one is better than no server.
                    log.warning("Port %d is taken; the API server moves to a free port", port)
                    port = free_port(host)
                else:
                    raise

        instance_id = uuid.uuid4().hex
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        process = spawn_python_module(
            SERVER_MODULE, [str(self._home), host, str(port), instance_id], self.log_path, detached=True
        )
        self._repository.save_service(
            SERVICE_NAME,
            activity=f"Started the API server on {host}:{port}",
            host=host,
            port=port,
            instance_id=instance_id,
            pid=process.pid,
            process_start=start_ticks(process.pid),
            started_at=utc_now(),
            error=None,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                reason = self._last_log_line(log_offset)
                self._repository.save_service(SERVICE_NAME, pid=None, process_start=None, error=reason)
                raise OpmlError(f"The API server could not start: {reason}")
            if self._healthy(host, port, instance_id):
                log.info("API server running on %s:%d (pid %d)", host, port, process.pid)
                return self.status()
            time.sleep(0.2)
        stop_group(process.pid, STOP_TIMEOUT_S)
        self._repository.save_service(SERVICE_NAME, pid=None, process_start=None, error="Start timed out")
        raise OpmlError(f"The API server did not pass its health check within {START_TIMEOUT_S:.0f} s; see {self.log_path}.")

    def stopped_on_request(self) -> bool:
        """Return True when the server was stopped with ``stop`` and not started since."""
        row = self._repository.service(SERVICE_NAME)
        return row is not None and row["pid"] is None and row["error"] == STOPPED_ON_REQUEST

    def ensure_running(self) -> ApiServer:
        """Start the server unless it is Running; it keeps its port.

        A live process that fails one health check may only be busy, so it
        gets a few more seconds before it is replaced.
        """
        current = self.status()
        deadline = time.monotonic() + BUSY_GRACE_S
        while current.state == "Unhealthy" and is_alive(current.pid, self._process_start()) and time.monotonic() < deadline:
            time.sleep(0.5)
            current = self.status()
        return current if current.state == "Running" else self.start(current.host)

    def _process_start(self) -> int | None:
        row = self._repository.service(SERVICE_NAME)
        return None if row is None else row["process_start"]

    def stop(self) -> ApiServer:
        with self._exclusive():
            return self._stop()

    def _stop(self) -> ApiServer:
        row = self._repository.service(SERVICE_NAME)
        if row is not None and row["pid"] is not None:
            stop_group(row["pid"], STOP_TIMEOUT_S)
            self._repository.save_service(
                SERVICE_NAME, activity="Stopped the API server", pid=None, process_start=None, error=STOPPED_ON_REQUEST
            )
        return self.status()

    def logs(self, tail: int | None = None) -> str:
        if not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:] if tail else lines)

    @staticmethod
    def _healthy(host: str, port: int | None, instance_id: str | None) -> bool:
        if port is None:
            return False
        try:
            response = requests.get(f"http://{host}:{port}/", timeout=HEALTH_TIMEOUT_S)
        except requests.RequestException:
            return False
        return response.status_code == 200 and response.headers.get(INSTANCE_HEADER) == instance_id

    def _last_log_line(self, offset: int) -> str:
        if not self.log_path.exists():
            return "no output"
        with self.log_path.open("rb") as handle:
            handle.seek(offset)
            lines = [line for line in handle.read().decode(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if "ERROR" in line or "Error" in line]
        return (errors or lines or ["no output"])[-1].strip()


def _environment_port() -> int | None:
    text = os.environ.get("OPML_API_PORT", "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise OpmlError(f"Invalid OPML_API_PORT={text!r}: set a port from 1 to 65535, or unset it for a free port.")
    return int(text)
