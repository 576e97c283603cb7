"""The FastAPI app of one deployment, built from the folder ``OPML_DEPLOYMENT_DIR``.

The folder contains ``config.json`` (model file, keys, insights switch),
written by the deployments service. The app rereads it when its
modification time changes, so regenerated keys and the insights toggle
take effect on the running service without a restart.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from opml.serving.swagger import openapi3, swagger2
from opml.serving.telemetry import TelemetryBuffer
from opml.serving.validation import ScoringError, parse_body, rows_to_frame

log = logging.getLogger("opml.serving")

CONFIG_FILE = "config.json"
SAMPLE_CHARS = 2000


class DeploymentConfig:
    """The deployment's settings, reloaded when ``config.json`` changes."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / CONFIG_FILE
        self._mtime = 0.0
        self.data: dict = {}
        self.refresh()

    def refresh(self) -> None:
        mtime = self.path.stat().st_mtime
        if mtime != self._mtime:
            self.data = json.loads(self.path.read_text())
            self._mtime = mtime

    def authorized(self, header: str | None) -> bool:
        if not self.data["auth_enabled"]:
            return True
        scheme, _, supplied_text = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not supplied_text.strip():
            return False
        supplied = supplied_text.strip().encode()
        return any(hmac.compare_digest(supplied, key.encode()) for key in self.data["keys"])


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s"


def create_app() -> FastAPI:
    # Each uvicorn worker process builds its own app, so logging is set up here.
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    folder = Path(os.environ["OPML_DEPLOYMENT_DIR"])
    config = DeploymentConfig(folder)
    model = joblib.load(config.data["model_path"])
    schema = config.data["schema"]
    title = f"{config.data['name']} ({config.data['model_ref']})"
    telemetry = TelemetryBuffer(Path(config.data["metadata_path"]), config.data["deployment_id"])
    max_body = int(config.data["max_body_bytes"])
    classes = list(model.classes)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        log.info("Deployment %s serving %s", config.data["name"], config.data["model_ref"])
        yield
        telemetry.close()
        log.info("Deployment %s stopped", config.data["name"])

    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        # Unknown paths and methods get the same error body as scoring errors.
        return JSONResponse({"message": f"{error.detail}: this service has GET /, POST /score and GET /swagger.json."}, status_code=error.status_code)
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/")
    def health() -> PlainTextResponse:
        return PlainTextResponse("Healthy", headers={"x-opml-deployment-id": config.data["deployment_id"]})

    @app.get("/swagger.json")
    def swagger_document(version: int = 2) -> JSONResponse:
        config.refresh()
        build = openapi3 if version == 3 else swagger2
        return JSONResponse(
            build(schema, title=title, version=str(config.data["model_version"]), auth_enabled=config.data["auth_enabled"])
        )

    @app.get("/swagger", response_class=HTMLResponse)
    def swagger_ui() -> str:
        return SWAGGER_PAGE

    @app.post("/score")
    async def score(request: Request) -> Response:
        started = time.perf_counter()
        request_id = request.headers.get("x-ms-client-request-id") or str(uuid.uuid4())
        config.refresh()
        body = b""
        rows = 0
        outcome: dict = {}
        try:
            if not config.authorized(request.headers.get("authorization")):
                raise ScoringError("Missing or wrong key: send the header 'Authorization: Bearer <key>'.", 401)
            content_type = request.headers.get("content-type", "")
            if not content_type.split(";")[0].strip().lower() == "application/json":
                raise ScoringError(f"Unsupported content type {content_type!r}; send application/json.", 415)
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_body:
                raise ScoringError(f"The body has {int(declared):,} bytes, more than the limit of {max_body:,}.", 413)
            body = await request.body()
            if len(body) > max_body:
                raise ScoringError(f"The body has {len(body):,} bytes, more than the limit of {max_body:,}.", 413)

            data, method = parse_body(body)
            rows = len(data)
            frame = rows_to_frame(data, schema, unknown_categories=config.data.get("unknown_categories", "accept"))
            probabilities = model.predict_proba(frame)
            if method == "predict_proba":
                results = np.round(probabilities, 6).tolist()
            else:
                results = [classes[index] for index in probabilities.argmax(axis=1)]
            outcome = {"Results": results}
            status = 200
        except ScoringError as error:
            status = error.status
            outcome = {"message": error.message}
            log.warning("Request %s rejected with %d: %s", request_id, status, error.message)
        except Exception as error:  # a model failure must not leak a traceback to the client
            status = 500
            outcome = {"message": f"Scoring failed inside the model: {type(error).__name__}. Request id {request_id}."}
            log.exception("Request %s failed", request_id)

        latency_ms = (time.perf_counter() - started) * 1000
        if config.data.get("insights"):
            telemetry.add(
                {
                    "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                    "request_id": request_id,
                    "status": status,
                    "latency_ms": latency_ms,
                    "rows": rows,
                    "payload_bytes": len(body),
                    "model_version": config.data["model_version"],
                    "input_sample": body[:SAMPLE_CHARS].decode(errors="replace") if config.data.get("samples") else None,
                    "output_sample": json.dumps(outcome)[:SAMPLE_CHARS] if config.data.get("samples") else None,
                }
            )
        return JSONResponse(outcome, status_code=status, headers={"x-ms-request-id": request_id})

    return app


SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Scoring API</title>
  <link rel="stylesheet" href="swagger-ui/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="swagger-ui/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "swagger.json", dom_id: "#swagger-ui"});
  </script>
</body>
</html>
"""
