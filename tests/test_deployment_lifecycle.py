"""Deployment operations: start, stop, kill, restart, update, delete, and bad requests to deploy."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

import opml
from opml.backends.local.processes import group_members, is_alive
from tests.conftest import SCORING_EXAMPLE


@pytest.fixture(scope="module")
def registry(trained_workspace):
    """The trained workspace with two versions of one model; deployments are deleted after each test."""
    workspace, run = trained_workspace
    if not workspace.models.list("life"):
        workspace.models.register(run.id, "life")
        workspace.models.register(run.id, "life")
    yield workspace


@pytest.fixture
def workspace(registry):
    yield registry
    for item in registry.deployments.list():
        registry.deployments.delete(item.name)


def score(deployment, key: str | None = None) -> requests.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return requests.post(deployment.scoring_uri, json=SCORING_EXAMPLE, headers=headers, timeout=10)


def test_killed_server_becomes_unhealthy_then_restarts(workspace: opml.Workspace) -> None:
    deployment = workspace.deployments.deploy("life", "killed", workers=1)

    os.kill(deployment.pid, signal.SIGKILL)
    unhealthy = workspace.deployments.get("killed")
    restarted = workspace.deployments.restart("killed")

    assert unhealthy.state == "Unhealthy"
    # Right after SIGKILL the process may still be exiting, so either check can notice first.
    assert "is gone" in unhealthy.error or "health check" in unhealthy.error
    assert restarted.state == "Healthy"
    assert restarted.port == deployment.port
    assert score(restarted, restarted.primary_key).status_code == 200


def test_stop_and_start(workspace: opml.Workspace) -> None:
    deployment = workspace.deployments.deploy("life", "stopper", workers=2)

    stopped = workspace.deployments.stop("stopper")
    with pytest.raises(requests.ConnectionError):
        score(deployment, deployment.primary_key)
    started = workspace.deployments.start("stopper")

    assert stopped.state == "Stopped"
    assert not is_alive(deployment.pid, workspace.deployments.repository.server_settings("stopper")["process_start"])
    assert started.state == "Healthy"
    assert score(started, started.primary_key).status_code == 200
    with pytest.raises(opml.OpmlError, match="already Healthy"):
        workspace.deployments.start("stopper")


def test_update_to_other_version(workspace: opml.Workspace) -> None:
    deployment = workspace.deployments.deploy("life", "updated", model_version=1, workers=1)

    updated = workspace.deployments.update("updated", model_version=2)

    assert updated.model_ref == "life:2"
    assert updated.port == deployment.port
    assert updated.primary_key == deployment.primary_key
    swagger = requests.get(updated.swagger_uri, timeout=10).json()
    assert swagger["info"]["version"] == "2"


def test_delete_stops_every_process(workspace: opml.Workspace) -> None:
    deployment = workspace.deployments.deploy("life", "deleted", workers=2)
    group = deployment.pid

    workspace.deployments.delete("deleted")

    assert group_members(group) == []
    with pytest.raises(opml.NotFoundError, match="Deployment 'deleted' not found"):
        workspace.deployments.get("deleted")
    assert workspace.summary().deployments == 0


def test_auth_off_only_when_chosen(workspace: opml.Workspace) -> None:
    open_service = workspace.deployments.deploy("life", "open", auth_enabled=False, workers=1)

    response = score(open_service)

    assert response.status_code == 200
    assert "securityDefinitions" not in requests.get(open_service.swagger_uri, timeout=10).json()


def test_reject_policy_names_category(workspace: opml.Workspace) -> None:
    strict = workspace.deployments.deploy("life", "strict", unknown_categories="reject", workers=1)
    row = {**SCORING_EXAMPLE["data"][0], "job": "astronaut"}

    response = requests.post(
        strict.scoring_uri, json={"data": [row]}, headers={"Authorization": f"Bearer {strict.primary_key}"}, timeout=10
    )

    assert response.status_code == 422
    assert "column 'job': 'astronaut' was not seen in training" in response.json()["message"]


def test_port_in_use_rejected(workspace: opml.Workspace) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(opml.OpmlError, match=f"Port {port} on 127.0.0.1 is not available"):
            workspace.deployments.deploy("life", "clash", port=port, workers=1)

    assert workspace.deployments.list() == []


def test_port_of_other_deployment_rejected(workspace: opml.Workspace) -> None:
    first = workspace.deployments.deploy("life", "first", workers=1)

    with pytest.raises(opml.OpmlError, match=f"Port {first.port} on 127.0.0.1 is not available"):
        workspace.deployments.deploy("life", "second", port=first.port, workers=1)

    assert [item.name for item in workspace.deployments.list()] == ["first"]


def test_other_server_on_port_is_not_healthy(workspace: opml.Workspace) -> None:
    first = workspace.deployments.deploy("life", "first", workers=1)
    second = workspace.deployments.deploy("life", "second", workers=1)
    workspace.deployments.stop("second")
    # Point the stopped deployment at the first one's port, as a stale record would.
    workspace.deployments.repository.update("second", port=first.port, state="Healthy", pid=first.pid)

    assert workspace.deployments.get("second").state == "Unhealthy"
    assert second.port != first.port


def test_model_in_use_cannot_be_deleted(workspace: opml.Workspace) -> None:
    workspace.deployments.deploy("life", "user", model_version=1, workers=1)

    with pytest.raises(opml.OpmlError, match="Model life:1 is served by deployment\\(s\\) user"):
        workspace.models.delete("life", 1)

    assert workspace.models.get("life", 1).version == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"model_name": "life", "name": "Bad Name"}, "Invalid deployment name 'Bad Name'"),
        ({"model_name": "ghost", "name": "ghost-service"}, "Model 'ghost' not found"),
        ({"model_name": "life", "name": "p", "port": 70000}, "Invalid deployment name 'p'"),
        ({"model_name": "life", "name": "port-service", "port": 70000}, "Invalid port 70000"),
        ({"model_name": "life", "name": "policy", "unknown_categories": "maybe"}, "Invalid unknown-category policy 'maybe'"),
    ],
)
def test_bad_deploy_requests(workspace: opml.Workspace, arguments: dict, message: str) -> None:
    with pytest.raises(opml.OpmlError, match=message):
        workspace.deployments.deploy(**arguments)

    assert workspace.deployments.list() == []


def test_duplicate_name_rejected(workspace: opml.Workspace) -> None:
    workspace.deployments.deploy("life", "twice", workers=1)

    with pytest.raises(opml.OpmlError, match="Deployment 'twice' already exists"):
        workspace.deployments.deploy("life", "twice", workers=1)


def run_opml(workspace: opml.Workspace, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "opml", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "OPML_HOME": str(workspace.home)},
        timeout=120,
    )


def test_cli_deploy_and_operate(workspace: opml.Workspace) -> None:
    deployed = run_opml(workspace, "deploy", "--model", "life:1", "--name", "cli", "--workers", "1", "--json")
    shown = json.loads(deployed.stdout)
    listed = run_opml(workspace, "deployments", "list", "--json")
    keys = run_opml(workspace, "deployments", "keys", "cli", "--json")
    regenerated = run_opml(workspace, "deployments", "regenerate-key", "cli")
    insights = run_opml(workspace, "deployments", "insights", "cli", "on")
    restarted = run_opml(workspace, "deployments", "restart", "cli")
    requests.post(shown["scoring_uri"], json=SCORING_EXAMPLE, headers={"Authorization": f"Bearer {shown['secondary_key']}"}, timeout=10)
    time.sleep(1.5)
    recorded = run_opml(workspace, "deployments", "requests", "cli", "--json")
    logs = run_opml(workspace, "deployments", "logs", "cli", "--tail", "5")
    deleted = run_opml(workspace, "deployments", "delete", "cli", "--yes")

    assert deployed.returncode == 0, deployed.stderr
    assert shown["state"] == "Healthy"
    assert shown["scoring_uri"].endswith("/score")
    assert shown["primary_key"]
    assert "primary_key" not in json.loads(listed.stdout)[0]
    assert json.loads(keys.stdout)["primary_key"] == shown["primary_key"]
    assert regenerated.stdout.startswith("primary: ")
    assert regenerated.stdout.split()[1] != shown["primary_key"]
    assert insights.stdout.strip() == "Insights on for cli"
    assert restarted.stdout.strip() == "cli: Healthy"
    assert [record["status"] for record in json.loads(recorded.stdout)] == [200]
    assert logs.returncode == 0
    assert deleted.stdout.strip() == "Deleted cli"
    assert workspace.deployments.list() == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["deploy", "--model", "ghost", "--name", "x-service"], "Model 'ghost' not found"),
        (["deployments", "show", "nothing"], "Deployment 'nothing' not found"),
        (["deployments", "delete", "nothing"], "Deployment 'nothing' not found"),
        (["deployments", "insights", "nothing", "on"], "Deployment 'nothing' not found"),
    ],
)
def test_cli_bad_input_one_line(workspace: opml.Workspace, arguments: list[str], message: str) -> None:
    result = run_opml(workspace, *arguments)

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


def test_connect_marks_dead_server_unhealthy(workspace: opml.Workspace) -> None:
    deployment = workspace.deployments.deploy("life", "reopened", workers=1)
    os.kill(deployment.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_alive(deployment.pid, workspace.deployments.repository.server_settings("reopened")["process_start"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)

    opml.connect(workspace.home)

    assert workspace.deployments.repository.get("reopened").state == "Unhealthy"


@pytest.mark.parametrize(
    ("model_name", "expected"),
    [("bankmarketing-model", "bankmarketing-model-service"), ("BM_small.v2", "bm-small-v2-service"), ("___", "model-service")],
)
def test_default_name_is_valid(model_name: str, expected: str) -> None:
    from opml.deployments import default_deployment_name, validate_deployment_name

    name = default_deployment_name(model_name)

    assert name == expected
    assert validate_deployment_name(name) == name
