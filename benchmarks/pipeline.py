"""Benchmark the pipeline path: the quickstart tour, and the REST trigger of a published pipeline.

Runs ``opml quickstart`` in a temporary workspace and prints each step's
time. Then it triggers the published pipeline again through its endpoint
with the same parameters. The automl, evaluate and register steps reuse
their earlier outputs, so the figure is the overhead of a run: the HTTP
request, the runner process start, the dataset split and the deploy check.

    python benchmarks/pipeline.py [--budget 60] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

import opml
from opml.quickstart import DEPLOYMENT_NAME


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="AutoML time budget of each training, in seconds")
    parser.add_argument("--repeat", type=int, default=5, help="reused runs to time after the tour")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "workspace"
        environment = {"OPML_HOME": str(home), "PATH": "/usr/bin:/bin"}
        started = time.monotonic()
        tour = subprocess.run(
            [sys.executable, "-m", "opml", "quickstart", "--budget", str(arguments.budget)],
            capture_output=True, text=True, env=environment,
        )
        tour_s = time.monotonic() - started
        print(tour.stdout, end="")
        if tour.returncode != 0:
            print(tour.stderr, file=sys.stderr)
            sys.exit(1)
        print(f"quickstart wall time: {tour_s:.1f} s with --budget {arguments.budget:g}")

        workspace = opml.connect(home)
        try:
            (published,) = workspace.pipelines.list_published()
            _, secret = workspace.pipelines.create_token("benchmark")
            auth_header = {"Authorization": f"Bearer {secret}"}
            response_ms, wall_s, run_s = [], [], []
            for _ in range(arguments.repeat):
                sent = time.monotonic()
                response = requests.post(published.endpoint, headers=auth_header, json={"ExperimentName": "benchmark"}, timeout=30)
                response_ms.append((time.monotonic() - sent) * 1000)
                response.raise_for_status()
                run = workspace.pipelines.wait(response.json()["Id"], poll_s=0.05)
                wall_s.append(time.monotonic() - sent)
                assert run.status == "Completed", run.error
                assert [step.status for step in run.steps][1:4] == ["Reused"] * 3, run.steps
                run_s.append(run.duration_s)
            print(
                f"Reused runs, median of {arguments.repeat}: REST response {statistics.median(response_ms):.0f} ms, "
                f"request to Completed {statistics.median(wall_s):.2f} s, "
                f"runner start to end {statistics.median(run_s):.2f} s"
            )
        finally:
            workspace.api.stop()
            workspace.deployments.delete(DEPLOYMENT_NAME)


if __name__ == "__main__":
    main()
