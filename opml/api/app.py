"""The FastAPI app of the opml API server: published pipeline endpoints, run status and the scheduler.

The pipeline and run routes need ``Authorization: Bearer <token>`` with a
token from ``opml api token create``. The health check and the OpenAPI
documentation (``/docs``, ``/openapi.json``) need none. A non-empty request
body must be sent as ``application/json``. The scheduler is a task in the
server's event loop that fires due schedules once a second. The server runs
one worker, so each due schedule fires once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import opml
from opml.api.control import INSTANCE_HEADER
from opml.errors import OpmlError
from opml.records import PipelineRun

log = logging.getLogger("opml.api")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SCHEDULER_PERIOD_S = 1.0
MAX_BODY_BYTES = 1024 * 1024


class Unauthorized(OpmlError):
    def __init__(self, message: str) -> None:
        super().__init__(message, status=401)


def run_body(run: PipelineRun, request: Request | None = None) -> dict:
    """Describe a pipeline run with Azure's field names where it has them."""
    body = {
        "Id": run.id,
        "Status": run.status,
        "ExperimentName": run.experiment,
        "PipelineName": run.pipeline_name,
        "PipelineVersion": run.pipeline_version,
        "PublishedPipelineId": run.published_id,
        "Trigger": run.trigger,
        "ParameterAssignments": run.parameters,
        "CreatedTime": run.created_at.isoformat(),
        "StartTime": run.started_at.isoformat() if run.started_at else None,
        "EndTime": run.ended_at.isoformat() if run.ended_at else None,
        "Error": run.error,
        "Steps": [
            {
                "Name": step.name,
                "Status": step.status,
                "ReusedFrom": step.reused_from,
                "DurationSeconds": step.duration_s,
                "Error": step.error,
                "Outputs": step.outputs,
            }
            for step in run.steps
        ],
    }
    if request is not None:
        body["StatusUrl"] = str(request.url_for("get_run", run_id=run.id))
    return body


def create_app() -> FastAPI:
    home = os.environ["OPML_HOME"]
    instance_id = os.environ.get("OPML_API_INSTANCE", "")
    workspace = opml.connect(home)
    pipelines = workspace.pipelines

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        task = asyncio.create_task(scheduler())
        log.info("API server for workspace %s ready; scheduler running", home)
        yield
        task.cancel()

    async def scheduler() -> None:
        while True:
            try:
                await asyncio.to_thread(pipelines.fire_due_schedules)
            except Exception:  # one bad tick must not stop the schedules
                log.exception("Scheduler tick failed")
            await asyncio.sleep(SCHEDULER_PERIOD_S)

    app = FastAPI(
        title="opml API",
        description="Trigger published opml pipelines and follow their runs.",
        version=opml.__version__,
        lifespan=lifespan,
    )

    @app.exception_handler(OpmlError)
    async def opml_error(request: Request, error: OpmlError) -> JSONResponse:
        log.info("Rejected %s %s with %d: %s", request.method, request.url.path, error.status, error.message)
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse({"error": error.message}, status_code=error.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("Unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": f"Internal error ({type(error).__name__}); the API server log has the details."}, status_code=500
        )

    @app.middleware("http")
    async def identify(request: Request, call_next):
        response = await call_next(request)
        response.headers[INSTANCE_HEADER] = instance_id
        return response

    def authenticate(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if not header:
            raise Unauthorized(
                "Missing bearer token: send the header 'Authorization: Bearer <token>'; "
                "create a token with: opml api token create NAME"
            )
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("Malformed Authorization header: use 'Authorization: Bearer <token>'.")
        if pipelines.authenticate(secret.strip()) is None:
            raise Unauthorized("Invalid or revoked token; create a new one with: opml api token create NAME")

    @app.get("/", include_in_schema=False)
    def health() -> dict:
        return {"status": "Healthy"}

    async def start_run(published_id: str, request: Request) -> JSONResponse:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise OpmlError(f"Request body of {len(raw):,} bytes is over the {MAX_BODY_BYTES:,}-byte limit.", status=413)
        if raw.strip():
            content_type = request.headers.get("content-type", "")
            if content_type.split(";")[0].strip().lower() != "application/json":
                raise OpmlError(
                    f"Unsupported content type {content_type!r}: send the body as application/json "
                    "(requests.post(endpoint, json=...) or curl -H 'Content-Type: application/json').",
                    status=415,
                )
        body = _parse_body(raw)
        experiment = body.get("ExperimentName")
        if experiment is not None and not isinstance(experiment, str):
            raise OpmlError(f"Invalid ExperimentName {experiment!r}: give a string such as bankmarketing-pipeline.")
        run = await asyncio.to_thread(
            pipelines.submit_published,
            published_id,
            parameters=body.get("ParameterAssignments"),
            experiment=experiment,
            trigger="rest",
        )
        log.info("Started pipeline run %s of published pipeline %s over REST", run.id, published_id)
        return JSONResponse(run_body(run, request))

    @app.post("/pipelines/{published_id}")
    async def submit(published_id: str, request: Request) -> JSONResponse:
        """Start a run: ``{"ExperimentName": "...", "ParameterAssignments": {...}}``, both optional."""
        await asyncio.to_thread(authenticate, request)
        return await start_run(published_id, request)

    @app.post("/pipelines/by-name/{name}")
    async def submit_by_name(name: str, request: Request) -> JSONResponse:
        """Start a run of the default publication of a pipeline name, or of its newest Active one when none is set."""
        await asyncio.to_thread(authenticate, request)
        published = await asyncio.to_thread(pipelines.endpoint_target, name)
        return await start_run(published.id, request)

    @app.get("/pipelines/{published_id}")
    def describe(published_id: str, request: Request) -> dict:
        authenticate(request)
        published = pipelines.published(published_id)
        if published.id != published_id:
            raise OpmlError(f"Published pipeline {published_id!r} not found.", status=404)
        definition = pipelines.definition(published.name, published.pipeline_version)
        return {
            "Id": published.id,
            "Name": published.name,
            "Version": published.pipeline_version,
            "Description": published.description,
            "Status": published.status,
            "Endpoint": str(request.url),
            "Parameters": definition.parameters(),
        }

    @app.get("/runs/{run_id}", name="get_run")
    def get_run(run_id: str, request: Request) -> dict:
        authenticate(request)
        return run_body(pipelines.get_run(run_id), request)

    @app.post("/runs/{run_id}/cancel")
    def cancel_run(run_id: str, request: Request) -> dict:
        authenticate(request)
        return run_body(pipelines.cancel(run_id), request)

    return app


def _parse_body(raw: bytes) -> dict:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise OpmlError(
            f"The request body is not valid JSON ({error}); send an object such as "
            '{"ExperimentName": "bankmarketing-pipeline", "ParameterAssignments": {}}.'
        ) from error
    if not isinstance(body, dict):
        raise OpmlError("The request body must be a JSON object with ExperimentName and ParameterAssignments.")
    unknown = sorted(set(body) - {"ExperimentName", "ParameterAssignments"})
    if unknown:
        raise OpmlError(f"Unknown fields {', '.join(unknown)}: send ExperimentName and ParameterAssignments.")
    return body
