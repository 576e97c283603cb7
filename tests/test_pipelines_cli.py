"""The ``opml pipelines``, ``opml api`` and ``opml quickstart`` commands, run as separate processes."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from tests.conftest import small_sample_csv
from tests.test_cli import run_opml

PIPELINE = "Bankmarketing Train"


def check(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_pipeline_commands_from_create_to_schedule(tmp_path: Path, sample_csv: Path) -> None:
    home = tmp_path / "workspace"
    data = tmp_path / "bm-small.csv"
    data.write_bytes(small_sample_csv(sample_csv))
    check(run_opml(home, "datasets", "register", "--name", "bm-small", "--file", str(data)))

    created = check(run_opml(
        home, "pipelines", "create", PIPELINE, "--dataset", "bm-small", "--label", "y", "--budget", "8", "--cv", "3",
        "--model-name", "cli-model", "--experiment", "cli-pipeline",
    ))
    assert created.strip() == f"Saved pipeline {PIPELINE}:1"
    condition_only = run_opml(
        home, "pipelines", "create", "No deploy", "--dataset", "bm-small", "--label", "y", "--model-name", "m", "--deploy-when", "always"
    )
    assert condition_only.returncode == 1
    assert "--deploy-when and --threshold apply to the deploy step: give --deployment NAME too" in condition_only.stderr
    yaml_path = tmp_path / "pipeline.yaml"
    check(run_opml(home, "pipelines", "export", PIPELINE, "-o", str(yaml_path)))
    assert "label_column_name: y" in yaml_path.read_text()
    unwritable = run_opml(home, "pipelines", "export", PIPELINE, "-o", str(tmp_path / "missing" / "p.yaml"))
    assert unwritable.returncode == 1
    assert unwritable.stderr.startswith(f"error: Could not write {tmp_path / 'missing' / 'p.yaml'}: No such file or directory")
    assert check(run_opml(home, "pipelines", "create", "Copy", "--from-yaml", str(yaml_path))).strip() == "Saved pipeline Copy:1"
    assert PIPELINE in check(run_opml(home, "pipelines", "list"))
    details = json.loads(check(run_opml(home, "pipelines", "show", f"{PIPELINE}:1", "--json")))
    assert details["parameters"]["model_name"] == "cli-model"

    triggered = run_opml(home, "pipelines", "trigger", PIPELINE, "--param", "model_name=cli-override", "--wait", "--json")
    run = json.loads(check(triggered))
    assert run["status"] == "Completed", triggered.stderr
    assert run["parameters"] == {"model_name": "cli-override"}
    assert "register Completed" in triggered.stderr
    assert run["id"] in check(run_opml(home, "pipelines", "runs"))
    limited = run_opml(home, "pipelines", "runs", "--limit", "1")
    assert run["id"] in check(limited)
    assert "(showing the newest 1; --limit N lists more)" in limited.stderr
    assert "Invalid value for '--limit': 0 is not in the range x>=1" in run_opml(home, "pipelines", "runs", "--limit", "0").stderr
    assert "registered cli-override:1" in check(run_opml(home, "pipelines", "runs", "show", run["id"]))

    secret = check(run_opml(home, "api", "token", "create", "ci")).strip()
    try:
        published_text = check(run_opml(home, "pipelines", "publish", PIPELINE))
        (published,) = json.loads(check(run_opml(home, "pipelines", "list", "--published", "--json")))
        assert f"Endpoint: {published['endpoint']}" in published_text
        assert "Running at http://127.0.0.1:" in check(run_opml(home, "api", "status"))

        response = requests.post(
            published["endpoint"], headers={"Authorization": f"Bearer {secret}"},
            json={"ExperimentName": "from-cli-test", "ParameterAssignments": {"deployment_name": None}}, timeout=30,
        )
        assert response.status_code == 200, response.text
        check(run_opml(home, "pipelines", "runs", "cancel", response.json()["Id"]))

        scheduled = check(run_opml(home, "pipelines", "schedule", "create", "nightly", "--pipeline", published["id"], "--cron", "0 3 * * *"))
        assert "cron 0 3 * * *, next run " in scheduled
        assert "03:00:00 UTC" in scheduled
        assert "nightly" in check(run_opml(home, "pipelines", "schedule", "list"))
        assert "is Paused" in check(run_opml(home, "pipelines", "schedule", "pause", "nightly"))
        assert check(run_opml(home, "pipelines", "schedule", "delete", "nightly", "--yes")).strip() == "Deleted schedule nightly"

        pinned = check(run_opml(home, "pipelines", "set-default", published["id"][:8]))
        assert pinned.strip().endswith(f"runs {published['id']} ({PIPELINE}:1)")
        assert " yes " in check(run_opml(home, "pipelines", "list", "--published"))
        disabled_default = run_opml(home, "pipelines", "disable", published["id"])
        assert f"warning: {published['id']} is the default publication of {PIPELINE}" in disabled_default.stderr
        check(run_opml(home, "pipelines", "enable", published["id"]))
        check(run_opml(home, "pipelines", "clear-default", PIPELINE))
        assert " yes " not in check(run_opml(home, "pipelines", "list", "--published"))
        unknown = run_opml(home, "pipelines", "set-default", "no-such-id")
        assert unknown.returncode == 1
        assert "Published pipeline 'no-such-id' not found" in unknown.stderr

        check(run_opml(home, "pipelines", "disable", published["id"]))
        disabled = requests.post(published["endpoint"], headers={"Authorization": f"Bearer {secret}"}, json={}, timeout=30)
        assert disabled.status_code == 404
        check(run_opml(home, "api", "token", "revoke", "ci"))
        assert "revoked" in check(run_opml(home, "api", "token", "list"))
    finally:
        stopped = run_opml(home, "api", "stop")
    assert stopped.stdout.strip() == "API server Stopped"


def test_pipeline_command_errors_name_the_value(tmp_path: Path) -> None:
    missing = run_opml(tmp_path, "pipelines", "trigger", "Nope")
    bad_param = run_opml(tmp_path, "pipelines", "trigger", "Nope", "--param", "budget")
    no_options = run_opml(tmp_path, "pipelines", "create", "X")
    bad_version = run_opml(tmp_path, "pipelines", "show", "X:zero")
    mixed = run_opml(tmp_path, "pipelines", "create", "X", "--from-yaml", "x.yaml", "--budget", "10")

    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: Pipeline 'Nope' not found; create one with: opml pipelines create."
    assert "Invalid --param 'budget': write name=value" in bad_param.stderr
    assert "Missing --dataset, --label, --model-name" in no_options.stderr
    assert "Invalid pipeline version 'zero' in 'X:zero'" in bad_version.stderr
    assert "--budget cannot be combined with --from-yaml" in mixed.stderr


def test_quickstart_runs_the_whole_workflow(tmp_path: Path) -> None:
    home = tmp_path / "workspace"
    try:
        result = run_opml(home, "quickstart", "--budget", "10", timeout=900)
    finally:
        run_opml(home, "api", "stop")
        run_opml(home, "deployments", "delete", "bankmarketing-service", "--yes")

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    steps = [line for line in lines if line.startswith("[")]
    assert [line.split("]")[0] + "]" for line in steps] == [f"[{number}/9]" for number in range(1, 10)]
    assert "bankmarketing:1, 32,950 rows" in steps[0]
    assert "bankmarketing-service created with bankmarketing-model:1, Healthy at http://127.0.0.1:" in steps[3]
    assert "HTTP 200, predictions [" in steps[4]
    assert "100 requests" in steps[5]
    assert "0 failed" in steps[5]
    assert "HTTP 200, run PipelineRun_" in steps[7]
    assert "Completed (dataset Completed, automl Completed, evaluate Completed, register Completed, deploy Completed)" in steps[8]
    assert lines[-1] == f"Done. Open the dashboard on this workspace with: OPML_HOME={home} make dashboard"
