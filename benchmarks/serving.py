"""Benchmark a deployed bankmarketing model under Apache Bench (ab).

Prints the in-process time to validate and score the classic two-row
payload, the compute floor. Then it prints ab's figures against the
deployed endpoint at concurrency 1 and 8, with insights off and on. Each
throughput is also given as a ratio to the 2-core floor (2 x 1000 /
predict ms).

    python benchmarks/serving.py [--budget 60] [--requests 2000]
    python benchmarks/serving.py --home .opml --model bankmarketing-model:1

Without --home, it trains a model on the bundled sample in a temporary
workspace first. ab comes from Debian's apache2-utils.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

import opml
from opml.automl.settings import AutoMLSettings
from opml.models import parse_model_ref
from opml.serving.validation import parse_body, rows_to_frame

PAYLOAD = {
    "data": [
        {
            "age": age, "campaign": 1, "cons.conf.idx": -46.2, "cons.price.idx": 92.893, "contact": "cellular",
            "day_of_week": "mon", "default": "no", "duration": duration, "education": "university.degree",
            "emp.var.rate": -1.8, "euribor3m": 1.299, "housing": "yes", "job": "blue-collar", "loan": "yes",
            "marital": "married", "month": "may", "nr.employed": 5099.1, "pdays": 999, "poutcome": "failure",
            "previous": 1,
        }
        for age, duration in ((17, 971), (87, 471))
    ]
}


def predict_ms(workspace: opml.Workspace, name: str, version: int, repeats: int = 300) -> float:
    """Return the median time to parse, validate and score the two-row body in-process."""
    model = workspace.models.load(name, version)
    schema = workspace.models.get(name, version).schema
    body = json.dumps(PAYLOAD).encode()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        rows, _ = parse_body(body)
        model.predict_proba(rows_to_frame(rows, schema))
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings[repeats // 10 :])


def run_ab(uri: str, key: str, payload: Path, requests: int, concurrency: int) -> dict:
    command = [
        "ab", "-q", "-n", str(requests), "-c", str(concurrency), "-p", str(payload), "-T", "application/json",
        "-H", f"Authorization: Bearer {key}", uri,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return {
        "requests_per_second": float(re.search(r"Requests per second:\s+([\d.]+)", output).group(1)),
        "mean_ms": float(re.search(r"Time per request:\s+([\d.]+) \[ms\] \(mean\)", output).group(1)),
        "p50_ms": float(re.search(r"^\s+50%\s+(\d+)", output, re.M).group(1)),
        "p99_ms": float(re.search(r"^\s+99%\s+(\d+)", output, re.M).group(1)),
        "failed": int(re.search(r"Failed requests:\s+(\d+)", output).group(1)),
        "non_2xx": int(match.group(1)) if (match := re.search(r"Non-2xx responses:\s+(\d+)", output)) else 0,
    }


def trained_model(home: str, budget: float) -> tuple[opml.Workspace, str, int]:
    workspace = opml.connect(home)
    dataset = workspace.datasets.register_sample().version
    run = workspace.runs.submit_automl_run(dataset.name, AutoMLSettings(label_column_name="y", experiment_timeout_seconds=budget))
    run = workspace.runs.wait(run.id)
    if run.status != "Completed":
        raise SystemExit(f"training failed: {run.error}")
    model = workspace.models.register(run.id, "bankmarketing-model")
    return workspace, model.name, model.version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="existing workspace to take the model from")
    parser.add_argument("--model", help="NAME[:VERSION] in that workspace")
    parser.add_argument("--budget", type=float, default=60.0, help="AutoML budget in seconds when training here")
    parser.add_argument("--requests", type=int, default=2000, help="requests per ab run")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    arguments = parser.parse_args()
    if shutil.which("ab") is None:
        raise SystemExit("ab not found: install Debian's apache2-utils")

    with tempfile.TemporaryDirectory() as temporary:
        if arguments.home:
            workspace = opml.connect(arguments.home)
            name, version = parse_model_ref(arguments.model)
            version = workspace.models.get(name, version).version
        else:
            workspace, name, version = trained_model(temporary, arguments.budget)

        model = workspace.models.get(name, version)
        floor_ms = predict_ms(workspace, name, version)
        floor_rps = 2 * 1000 / floor_ms
        print(f"model: {model.ref} ({model.algorithm}); cores: {len(os.sched_getaffinity(0))}")
        print(f"in-process validate + predict, two rows: {floor_ms:.2f} ms median; 2-core floor {floor_rps:.1f} requests/s")

        deployment = workspace.deployments.deploy(name, "benchmark-service", model_version=version, workers=arguments.workers)
        payload = Path(temporary) / "data.json"
        payload.write_text(json.dumps(PAYLOAD))
        try:
            rows = []
            for insights in (False, True):
                workspace.deployments.set_insights(deployment.name, insights)
                run_ab(deployment.scoring_uri, deployment.primary_key, payload, 200, 8)  # warm-up, not counted
                for concurrency in (1, 8):
                    figures = run_ab(deployment.scoring_uri, deployment.primary_key, payload, arguments.requests, concurrency)
                    rows.append({"insights": "on" if insights else "off", "concurrency": concurrency, **figures})
            time.sleep(2)  # telemetry is written once a second
            recorded = len(workspace.deployments.requests(deployment.name, limit=1_000_000))
        finally:
            workspace.deployments.delete(deployment.name)

    table = pd.DataFrame(rows)
    table["ratio_to_floor"] = table["requests_per_second"] / floor_rps
    print(table.to_string(index=False, float_format=lambda value: f"{value:.2f}"))
    off = table[(table.insights == "off") & (table.concurrency == 8)].requests_per_second.iloc[0]
    on = table[(table.insights == "on") & (table.concurrency == 8)].requests_per_second.iloc[0]
    print(f"throughput with insights on / off at concurrency 8: {on / off:.2f}")
    print(f"requests recorded by insights: {recorded}")


if __name__ == "__main__":
    main()
