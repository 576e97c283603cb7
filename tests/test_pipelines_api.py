"""Published pipeline endpoints on a real API server process, called with requests."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests

import opml
from tests.conftest import register_small
from tests.test_pipelines import PIPELINE, RUN_TIMEOUT_S, small_definition


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, sample_csv: Path):
    """A published pipeline without a deploy step, a running API server and a token; all stopped afterwards."""
    workspace = opml.connect(tmp_path_factory.mktemp("api") / "workspace")
    register_small(workspace, sample_csv)
    workspace.pipelines.create(PIPELINE, small_definition(deployment_name=None))
    server = workspace.api.start()
    published = workspace.pipelines.publish(PIPELINE, description="Train on the small sample.")
    token, secret = workspace.pipelines.create_token("tests")
    try:
        yield workspace, server, published, {"Authorization": f"Bearer {secret}"}
    finally:
        workspace.api.stop()
        for run in workspace.pipelines.list_runs():
            if run.is_active:
                try:
                    workspace.pipelines.cancel(run.id)
                except opml.OpmlError:
                    pass  # it ended meanwhile
                workspace.pipelines.wait(run.id, timeout_s=60)


def test_valid_token_starts_a_run(api) -> None:
    workspace, server, published, auth_header = api

    response = requests.post(
        published.endpoint, headers=auth_header, json={"ExperimentName": "rest-trigger", "ParameterAssignments": {}}, timeout=30
    )

    assert response.status_code == 200, response.text
    body = response.json()
    run = workspace.pipelines.wait(body["Id"], timeout_s=RUN_TIMEOUT_S)
    assert run.status == "Completed", run.error
    assert (run.trigger, run.experiment, run.published_id) == ("rest", "rest-trigger", published.id)
    assert body["StatusUrl"] == f"{server.base_uri}/runs/{run.id}"
    status = requests.get(body["StatusUrl"], headers=auth_header, timeout=30).json()
    assert status["Status"] == "Completed"
    assert [step["Name"] for step in status["Steps"]] == ["dataset", "automl", "evaluate", "register", "deploy"]
    assert status["Steps"][-1]["Status"] == "Skipped"


def test_parameter_overrides_reach_the_run(api) -> None:
    workspace, _, published, auth_header = api

    response = requests.post(
        published.endpoint,
        headers=auth_header,
        json={"ExperimentName": "overrides", "ParameterAssignments": {"model_name": "rest-model", "test_fraction": 0.25}},
        timeout=30,
    )

    assert response.status_code == 200, response.text
    run = workspace.pipelines.wait(response.json()["Id"], timeout_s=RUN_TIMEOUT_S)
    assert run.status == "Completed", run.error
    assert run.parameters == {"model_name": "rest-model", "test_fraction": 0.25}
    assert run.definition["steps"]["dataset"]["test_fraction"] == 0.25
    assert workspace.datasets.get("bm-small-test").rows == 150
    register = next(step for step in run.steps if step.name == "register")
    assert register.outputs["model"] == "rest-model:1"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing bearer token"),
        ({"Authorization": "Bearer opml_not-a-token"}, "Invalid or revoked token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Malformed Authorization header"),
    ],
)
def test_missing_or_wrong_token_is_401(api, headers: dict, message: str) -> None:
    workspace, _, published, _ = api
    before = len(workspace.pipelines.list_runs())

    response = requests.post(published.endpoint, headers=headers, json={}, timeout=30)

    assert response.status_code == 401
    assert message in response.json()["error"]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert len(workspace.pipelines.list_runs()) == before


def test_revoked_token_is_401(api) -> None:
    workspace, _, published, _ = api
    token, secret = workspace.pipelines.create_token("short-lived")
    headers = {"Authorization": f"Bearer {secret}"}
    described = requests.get(published.endpoint, headers=headers, timeout=30)

    workspace.pipelines.revoke_token(token.id)
    response = requests.post(published.endpoint, headers=headers, json={}, timeout=30)

    assert described.status_code == 200
    assert described.json()["Name"] == PIPELINE
    assert response.status_code == 401
    assert "Invalid or revoked token" in response.json()["error"]
    listed = {item.id: item for item in workspace.pipelines.list_tokens()}
    assert not listed[token.id].active
    assert listed[token.id].last_used_at is not None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"ParameterAssignments": {"budget": 5}}, "Unknown pipeline parameter budget:"),
        ({"ParameterAssignments": {"test_fraction": "half"}}, "Invalid value 'half' for test_fraction"),
        ({"ParameterAssignments": {"deploy_condition": "sometimes"}}, "Invalid deploy condition 'sometimes'"),
        ({"ParameterAssignments": {"dataset_name": "missing"}}, "Dataset 'missing' not found"),
        ({"ParameterAssignments": {"label_column_name": "Y"}}, "Label column 'Y' not found in bm-small:1"),
        ({"ParameterAssignments": [1, 2]}, "ParameterAssignments must be a JSON object"),
        ({"ExperimentName": 7}, "Invalid ExperimentName 7"),
        ({"ExperimentName": "has space"}, "Invalid experiment name 'has space'"),
        ({"ExperimentName": ""}, "Invalid experiment name ''"),
        ({"Experiment": "x"}, "Unknown fields Experiment"),
    ],
)
def test_bad_parameters_are_rejected_with_their_names(api, body: dict, message: str) -> None:
    workspace, _, published, auth_header = api
    before = len(workspace.pipelines.list_runs())

    response = requests.post(published.endpoint, headers=auth_header, json=body, timeout=30)

    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert len(workspace.pipelines.list_runs()) == before


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"ParameterAssignments": {"deploy_threshold": NaN}}', "Invalid value nan for deploy_threshold"),
        (b'{"ParameterAssignments": {"experiment_timeout_seconds": 1e400}}', "Invalid value inf for experiment_timeout_seconds"),
    ],
)
def test_numbers_that_are_not_finite_are_400(api, raw: bytes, message: str) -> None:
    workspace, _, published, auth_header = api
    before = len(workspace.pipelines.list_runs())

    response = requests.post(published.endpoint, headers=json_headers(auth_header), data=raw, timeout=30)

    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert len(workspace.pipelines.list_runs()) == before


def test_malformed_json_is_400(api) -> None:
    _, _, published, auth_header = api

    response = requests.post(published.endpoint, headers=json_headers(auth_header), data=b"{not json", timeout=30)

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


def test_plain_text_body_is_415(api) -> None:
    workspace, _, published, auth_header = api
    before = len(workspace.pipelines.list_runs())
    headers = {**auth_header, "Content-Type": "text/plain"}

    response = requests.post(published.endpoint, headers=headers, data=b'{"ExperimentName": "plain"}', timeout=30)

    assert response.status_code == 415, response.text
    assert "'text/plain'" in response.json()["error"]
    assert "application/json" in response.json()["error"]
    assert len(workspace.pipelines.list_runs()) == before


def json_headers(auth_header: dict) -> dict:
    return {**auth_header, "Content-Type": "application/json; charset=utf-8"}


def test_disabled_and_unknown_pipelines_are_404(api) -> None:
    workspace, server, published, auth_header = api

    workspace.pipelines.disable(published.id)
    disabled = requests.post(published.endpoint, headers=auth_header, json={}, timeout=30)
    workspace.pipelines.enable(published.id)
    unknown = requests.post(f"{server.base_uri}/pipelines/0123456789abcdef", headers=auth_header, json={}, timeout=30)

    assert disabled.status_code == 404
    assert "is Disabled" in disabled.json()["error"]
    assert unknown.status_code == 404
    assert "not found" in unknown.json()["error"]


def test_killed_server_restarts_on_demand_and_schedules_resume(api) -> None:
    workspace, server, published, auth_header = api
    workspace.pipelines.create_schedule("every-2s", published.id, every="2s", parameters={"model_name": "scheduled"})
    fired_before = _scheduled_runs(workspace)
    deadline = time.monotonic() + 30
    while not _scheduled_runs(workspace) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _scheduled_runs(workspace), "the schedule never fired"

    os.kill(workspace.api.status().pid, signal.SIGKILL)
    time.sleep(0.5)
    down = workspace.api.status()
    fired_while_down = len(_scheduled_runs(workspace))
    restarted = workspace.api.ensure_running()
    deadline = time.monotonic() + 30
    while len(_scheduled_runs(workspace)) <= fired_while_down and time.monotonic() < deadline:
        time.sleep(0.5)

    assert fired_before == []
    assert down.state == "Unhealthy"
    assert "is gone" in down.error
    assert restarted.state == "Running"
    assert restarted.port == server.port
    assert restarted.pid != server.pid
    assert len(_scheduled_runs(workspace)) > fired_while_down, "the schedule did not resume after the restart"
    assert requests.post(published.endpoint, headers=auth_header, json={"ParameterAssignments": {"model_name": "after"}}, timeout=30).status_code == 200
    workspace.pipelines.pause_schedule("every-2s")


def _scheduled_runs(workspace: opml.Workspace) -> list:
    return [run for run in workspace.pipelines.list_runs() if run.trigger == "schedule:every-2s"]


def test_api_status_and_stop(tmp_path: Path) -> None:
    workspace = opml.connect(tmp_path / "workspace")

    assert workspace.api.status().state == "Stopped"
    started = workspace.api.start()
    health = requests.get(started.base_uri + "/", timeout=10)
    stopped = workspace.api.stop()

    assert started.state == "Running"
    assert health.json() == {"status": "Healthy"}
    assert stopped.state == "Stopped"
    assert stopped.port == started.port
    with pytest.raises(requests.ConnectionError):
        requests.get(started.base_uri + "/", timeout=10)


def test_name_endpoint_follows_the_newest_active_version(api) -> None:
    workspace, _, first, auth_header = api
    workspace.pipelines.create(PIPELINE, small_definition(deployment_name=None, test_fraction=0.3))
    second = workspace.pipelines.publish(PIPELINE)
    endpoint = workspace.api.name_endpoint(PIPELINE)

    newest = requests.post(endpoint, headers=auth_header, json={"ParameterAssignments": {"deployment_name": None}}, timeout=30)
    workspace.pipelines.disable(second.id)
    fallback = requests.post(endpoint, headers=auth_header, json={}, timeout=30)
    workspace.pipelines.disable(first.id)
    none_active = requests.post(endpoint, headers=auth_header, json={}, timeout=30)
    workspace.pipelines.enable(first.id)
    workspace.pipelines.enable(second.id)

    assert endpoint.endswith("/pipelines/by-name/Bankmarketing%20Train")
    assert newest.status_code == 200, newest.text
    assert newest.json()["PipelineVersion"] == 2
    assert fallback.json()["PipelineVersion"] == 1
    assert none_active.status_code == 404
    assert "No Active published pipeline is named 'Bankmarketing Train'" in none_active.json()["error"]
    assert "enable one with: opml pipelines enable " in none_active.json()["error"]
    unknown = requests.post(workspace.api.name_endpoint("Nope"), headers=auth_header, json={}, timeout=30)
    assert unknown.status_code == 404
    assert unknown.json()["error"].startswith("No published pipeline is named 'Nope'; list them with:")
    for response in (newest, fallback):
        workspace.pipelines.cancel(response.json()["Id"])


def test_name_endpoint_runs_the_default_publication(api) -> None:
    workspace, _, first, auth_header = api
    newer = workspace.pipelines.publish(PIPELINE)
    endpoint = workspace.api.name_endpoint(PIPELINE)
    body = {"ParameterAssignments": {"deployment_name": None}}

    assert workspace.pipelines.set_default(first.id).is_default
    pinned = requests.post(endpoint, headers=auth_header, json=body, timeout=30)
    workspace.pipelines.disable(first.id)
    disabled_default = requests.post(endpoint, headers=auth_header, json=body, timeout=30)
    with pytest.raises(opml.OpmlError, match=f"Published pipeline {first.id} is Disabled; enable it first"):
        workspace.pipelines.set_default(first.id)
    workspace.pipelines.enable(first.id)
    workspace.pipelines.clear_default(PIPELINE)
    following = requests.post(endpoint, headers=auth_header, json=body, timeout=30)

    assert pinned.status_code == 200, pinned.text
    assert pinned.json()["PublishedPipelineId"] == first.id
    assert disabled_default.status_code == 404
    assert f"The default publication {first.id} of 'Bankmarketing Train' is Disabled" in disabled_default.json()["error"]
    assert following.status_code == 200, following.text
    assert following.json()["PublishedPipelineId"] == newer.id
    assert not workspace.pipelines.published(first.id).is_default
    for response in (pinned, following):
        workspace.pipelines.cancel(response.json()["Id"])


def test_cancel_over_rest(api) -> None:
    workspace, server, published, auth_header = api
    started = requests.post(
        published.endpoint, headers=auth_header, json={"ParameterAssignments": {"experiment_timeout_seconds": 120}}, timeout=30
    ).json()

    canceled = requests.post(f"{server.base_uri}/runs/{started['Id']}/cancel", headers=auth_header, timeout=30)
    run = workspace.pipelines.wait(started["Id"], timeout_s=60)

    assert canceled.status_code == 200
    assert run.status == "Canceled"
    again = requests.post(f"{server.base_uri}/runs/{started['Id']}/cancel", headers=auth_header, timeout=30)
    assert again.status_code == 400
    assert "already Canceled" in again.json()["error"]


def test_concurrent_starts_run_one_server(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    home = tmp_path / "workspace"
    opml.connect(home)
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            servers = list(pool.map(lambda _: opml.connect(home).api.ensure_running(), range(3)))

        assert {server.pid for server in servers} == {servers[0].pid}
        assert all(server.state == "Running" for server in servers)
        assert len(_api_processes(home)) == 1
    finally:
        opml.connect(home).api.stop()
        for pid in _api_processes(home):
            os.kill(pid, signal.SIGKILL)


def _api_processes(home: Path) -> list[int]:
    """Return the pids of API server processes of the workspace ``home``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, PermissionError, ProcessLookupError, NotADirectoryError):
            continue
        if b"opml.api" in arguments and str(home).encode() in arguments:
            found.append(int(entry.name))
    return found


def test_quickstart_publish_step_repeats_cleanly(tmp_path: Path, sample_csv: Path) -> None:
    from opml.quickstart import Tour, _publish

    workspace = opml.connect(tmp_path / "workspace")
    register_small(workspace, sample_csv)
    first, second = Tour(dataset="bm-small:1"), Tour(dataset="bm-small:1")
    try:
        _publish(workspace, first, 10)
        _publish(workspace, second, 10)

        assert second.endpoint == first.endpoint
        assert len(workspace.pipelines.list_published()) == 1
        assert workspace.pipelines.authenticate(first.secret) is None
        assert workspace.pipelines.authenticate(second.secret) is not None
    finally:
        workspace.api.stop()
