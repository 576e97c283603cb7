"""Scoring as a client: send rows to a scoring URI, score a table in chunks, write client code.

Everything goes over HTTP through the endpoint's public contract, so it
works against opml deployments and any Azure ML endpoint alike.
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import requests

from opml.errors import OpmlError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_CHUNK_ROWS = 500


@dataclass(frozen=True)
class ScoringTarget:
    """The destination of scoring requests: a URI, its key and, when known, the model's schema."""

    scoring_uri: str
    key: str | None = field(default=None, repr=False)
    schema: dict | None = None
    name: str | None = None
    """The deployment name, for targets opml manages."""

    @property
    def swagger_uri(self) -> str:
        return self.scoring_uri.rsplit("/", 1)[0] + "/swagger.json"

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers


@dataclass(frozen=True)
class ScoringResult:
    status: int
    results: list | None
    latency_ms: float
    request_body: dict
    response_body: object


@dataclass(frozen=True)
class BatchResult:
    scored: pd.DataFrame
    """The input rows with a ``prediction`` column and one ``probability_<class>`` column per class."""
    metrics: dict[str, float] | None
    """accuracy and AUC_weighted when the label column was present."""
    confusion_matrix: list[list[int]] | None
    classes: list[str]


def request_body(rows: list[dict], method: str = "predict") -> dict:
    """Return the Azure ML request body for ``rows``: the short form for predict."""
    if method == "predict":
        return {"data": rows}
    return {"Inputs": {"data": rows}, "GlobalParameters": {"method": method}}


def send(target: ScoringTarget, body: dict, timeout_s: float = DEFAULT_TIMEOUT_S) -> ScoringResult:
    """POST ``body`` to the scoring URI and return what came back; connection problems raise OpmlError."""
    if not target.scoring_uri.startswith(("http://", "https://")):
        raise OpmlError(f"Invalid scoring URI {target.scoring_uri!r}: give an http:// or https:// address ending in /score.")
    started = time.perf_counter()
    try:
        response = requests.post(target.scoring_uri, data=json.dumps(body), headers=target.headers(), timeout=timeout_s)
    except requests.Timeout as error:
        raise OpmlError(f"Timed out after {timeout_s:g} s waiting for {target.scoring_uri}; the service may be overloaded or stopped.") from error
    except requests.ConnectionError as error:
        raise OpmlError(
            f"Could not connect to {target.scoring_uri}: the connection was refused or the host is unreachable. "
            "Check the URI and that the service is running."
        ) from error
    latency_ms = (time.perf_counter() - started) * 1000

    try:
        payload = response.json()
    except ValueError:
        payload = response.text
    results = payload.get("Results") if isinstance(payload, dict) and response.status_code == 200 else None
    return ScoringResult(response.status_code, results, latency_ms, body, payload)


def error_message(result: ScoringResult) -> str:
    """Describe a non-200 response in one line, with the endpoint's own message when it sent one."""
    detail = result.response_body.get("message") if isinstance(result.response_body, dict) else None
    detail = detail or str(result.response_body)[:300] or "no message"
    hint = " Check the key." if result.status == 401 else ""
    return f"The endpoint rejected the request with HTTP {result.status}: {detail}{hint}"


def score_rows(target: ScoringTarget, rows: list[dict], method: str = "predict", timeout_s: float = DEFAULT_TIMEOUT_S) -> ScoringResult:
    result = send(target, request_body(rows, method), timeout_s)
    if result.status != 200:
        raise OpmlError(error_message(result))
    return result


def score_batch(
    target: ScoringTarget,
    frame: pd.DataFrame,
    *,
    label: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """Score every row of ``frame`` in chunks of ``chunk_rows`` with predict_proba.

    The label column, when given and present, is left out of the requests
    and used for accuracy, AUC_weighted and a confusion matrix.
    """
    from opml.automl.metrics import classification_metrics

    if frame.empty:
        raise OpmlError("The table to score has no rows.")
    if chunk_rows < 1:
        raise OpmlError(f"Invalid chunk size {chunk_rows}: give 1 or more rows.")
    classes = _classes(target)
    features = frame.drop(columns=[label]) if label and label in frame.columns else frame
    if target.schema is not None:
        missing = [item["name"] for item in target.schema["features"] if item["name"] not in features.columns]
        if missing:
            raise OpmlError(f"The table lacks the model's column(s) {', '.join(map(repr, missing))}.")
        features = features[[item["name"] for item in target.schema["features"]]]

    probabilities = []
    for start in range(0, len(features), chunk_rows):
        chunk = features.iloc[start : start + chunk_rows]
        rows = json.loads(chunk.to_json(orient="records"))
        probabilities.extend(score_rows(target, rows, "predict_proba").results)
        if progress is not None:
            progress(min(start + chunk_rows, len(features)), len(features))

    matrix = np.asarray(probabilities, dtype=float)
    names = [str(value) for value in classes] if classes else [str(index) for index in range(matrix.shape[1])]
    scored = frame.copy()
    scored["prediction"] = [classes[index] if classes else index for index in matrix.argmax(axis=1)]
    for column, name in enumerate(names):
        scored[f"probability_{name}"] = matrix[:, column]

    metrics = confusion = None
    if label and label in frame.columns and classes:
        position = {str(value): index for index, value in enumerate(classes)}
        truth = frame[label].astype(str).map(position)
        known = truth.notna().to_numpy()
        if known.any():
            y = truth[known].astype(int).to_numpy()
            all_metrics = classification_metrics(y, matrix[known])
            metrics = {"accuracy": all_metrics["accuracy"], "AUC_weighted": all_metrics["AUC_weighted"], "rows": int(known.sum())}
            from sklearn.metrics import confusion_matrix

            confusion = confusion_matrix(y, matrix[known].argmax(axis=1), labels=list(range(len(classes)))).tolist()
    return BatchResult(scored=scored, metrics=metrics, confusion_matrix=confusion, classes=names)


def classic_example() -> dict:
    """Return the two-row bankmarketing request body of the classic Azure ML ``endpoint.py`` client."""
    from importlib import resources

    return json.loads(resources.files("opml.sample_data").joinpath("scoring_example.json").read_text())


def fits_schema(body: dict, schema: dict | None) -> bool:
    """Return True when every row of a ``{"data": [...]}`` body has exactly the schema's columns."""
    if schema is None:
        return False
    names = {feature["name"] for feature in schema["features"]}
    return all(set(row) == names for row in body.get("data", []))


def _classes(target: ScoringTarget) -> list:
    return list(target.schema["classes"]) if target.schema else []


def swagger_example(target: ScoringTarget, timeout_s: float = 10.0) -> dict:
    """Return the example request body from the endpoint's swagger.json, for endpoints without a known schema."""
    try:
        response = requests.get(target.swagger_uri, headers=target.headers(), timeout=timeout_s)
        response.raise_for_status()
        document = response.json()
    except requests.RequestException as error:
        raise OpmlError(f"Could not read {target.swagger_uri}: {error}. Write the request body by hand.") from error
    except ValueError as error:
        raise OpmlError(f"{target.swagger_uri} did not return JSON. Write the request body by hand.") from error
    definitions = document.get("definitions") or document.get("components", {}).get("schemas", {})
    example = definitions.get("ServiceInput", {}).get("example")
    if not isinstance(example, dict):
        raise OpmlError(f"{target.swagger_uri} has no ServiceInput example. Write the request body by hand.")
    return example


def python_snippet(target: ScoringTarget, body: dict) -> str:
    """Return a script that writes data.json, posts it and prints the response, as Azure's endpoint.py does."""
    key_line = f"key = {target.key!r}\n" if target.key else "key = None\n"
    return (
        "import json\n\nimport requests\n\n"
        f"scoring_uri = {target.scoring_uri!r}\n"
        f"{key_line}\n"
        f"data = {json.dumps(body, indent=4)}\n\n"
        "with open(\"data.json\", \"w\") as file:\n"
        "    json.dump(data, file)\n\n"
        "headers = {\"Content-Type\": \"application/json\"}\n"
        "if key:\n"
        "    headers[\"Authorization\"] = f\"Bearer {key}\"\n\n"
        "response = requests.post(scoring_uri, data=json.dumps(data), headers=headers)\n"
        "print(response.status_code)\n"
        "print(response.json())\n"
    )


def curl_snippet(target: ScoringTarget, body: dict) -> str:
    parts = ["curl", "-sS", "-X", "POST", target.scoring_uri, "-H", "Content-Type: application/json"]
    if target.key:
        parts += ["-H", f"Authorization: Bearer {target.key}"]
    parts += ["-d", json.dumps(body)]
    return " ".join(shlex.quote(part) for part in parts)


def ab_snippet(target: ScoringTarget, requests_count: int = 100, concurrency: int = 4) -> str:
    """Return the Apache Bench command line that posts data.json, as written by the Python snippet."""
    parts = ["ab", "-n", str(requests_count), "-c", str(concurrency), "-p", "data.json", "-T", "application/json"]
    if target.key:
        parts += ["-H", f"Authorization: Bearer {target.key}"]
    parts.append(target.scoring_uri)
    return " ".join(shlex.quote(part) for part in parts)
