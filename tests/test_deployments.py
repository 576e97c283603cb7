"""A deployed model served by a real uvicorn process, called as Azure ML clients call it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from openapi_spec_validator import validate

from tests.conftest import SCORING_EXAMPLE


def auth(deployment, key: str | None = None) -> dict:
    return {"Authorization": f"Bearer {key or deployment.primary_key}"}


def wait_for(predicate, timeout_s: float, poll_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(poll_s)
    return predicate()


def test_health_check(deployed) -> None:
    _, deployment = deployed

    response = requests.get(deployment.base_uri + "/", timeout=10)

    assert response.status_code == 200
    assert response.text == "Healthy"


def test_scores_classic_example(deployed) -> None:
    _, deployment = deployed

    response = requests.post(deployment.scoring_uri, json=SCORING_EXAMPLE, headers=auth(deployment), timeout=10)

    assert response.status_code == 200, response.text
    results = response.json()["Results"]
    assert len(results) == 2
    assert set(results) <= {"yes", "no"}
    assert response.headers["x-ms-request-id"]


def test_inputs_shape_and_predict_proba(deployed) -> None:
    workspace, deployment = deployed
    body = {"Inputs": {"data": SCORING_EXAMPLE["data"]}, "GlobalParameters": {"method": "predict_proba"}}

    response = requests.post(deployment.scoring_uri, json=body, headers=auth(deployment), timeout=10)

    probabilities = np.array(response.json()["Results"])
    model = workspace.models.load(deployment.model_name, deployment.model_version)
    expected = model.predict_proba(pd.DataFrame(SCORING_EXAMPLE["data"]))
    assert response.status_code == 200
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_results_in_input_order(deployed) -> None:
    _, deployment = deployed
    rows = SCORING_EXAMPLE["data"]
    body = {"Inputs": {"data": rows}, "GlobalParameters": {"method": "predict_proba"}}
    reversed_body = {"Inputs": {"data": rows[::-1]}, "GlobalParameters": {"method": "predict_proba"}}

    forward = requests.post(deployment.scoring_uri, json=body, headers=auth(deployment), timeout=10).json()
    backward = requests.post(deployment.scoring_uri, json=reversed_body, headers=auth(deployment), timeout=10).json()

    assert forward["Results"] == backward["Results"][::-1]
    assert forward["Results"][0] != forward["Results"][1]


def test_key_order_in_rows_ignored(deployed) -> None:
    _, deployment = deployed
    shuffled = [dict(reversed(list(row.items()))) for row in SCORING_EXAMPLE["data"]]

    straight = requests.post(deployment.scoring_uri, json=SCORING_EXAMPLE, headers=auth(deployment), timeout=10)
    reordered = requests.post(deployment.scoring_uri, json={"data": shuffled}, headers=auth(deployment), timeout=10)

    assert reordered.json() == straight.json()


@pytest.mark.parametrize("version", ["", "?version=3"])
def test_swagger_documents_valid(deployed, version: str) -> None:
    _, deployment = deployed

    document = requests.get(deployment.swagger_uri + version, timeout=10).json()

    validate(document)
    assert ("openapi" in document) == bool(version)
    definitions = document["components"]["schemas"] if version else document["definitions"]
    assert set(definitions["InputRow"]["properties"]) == set(SCORING_EXAMPLE["data"][0])
    assert "admin." in definitions["InputRow"]["properties"]["job"]["enum"]
    assert definitions["ServiceInput"]["example"]["data"][0]["age"] > 0


def test_swagger_ui_works_offline(deployed) -> None:
    _, deployment = deployed

    page = requests.get(deployment.base_uri + "/swagger", timeout=10)

    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources
    for source in sources:
        assert not source.startswith(("http:", "https:", "//")), source
        assert requests.get(f"{deployment.base_uri}/{source}", timeout=10).status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer wrong-key", "Basic abc", "Bearer "])
def test_missing_or_wrong_key_rejected(deployed, header: str | None) -> None:
    _, deployment = deployed
    headers = {} if header is None else {"Authorization": header}

    response = requests.post(deployment.scoring_uri, json=SCORING_EXAMPLE, headers=headers, timeout=10)

    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["message"]


def test_scheme_is_case_insensitive(deployed) -> None:
    _, deployment = deployed

    response = requests.post(
        deployment.scoring_uri, json=SCORING_EXAMPLE, headers={"Authorization": f"bearer {deployment.primary_key}"}, timeout=10
    )

    assert response.status_code == 200


def test_unknown_path_gets_message(deployed) -> None:
    _, deployment = deployed

    response = requests.get(deployment.base_uri + "/predict", timeout=10)

    assert response.status_code == 404
    assert "POST /score" in response.json()["message"]


def test_global_parameters_with_short_body(deployed) -> None:
    _, deployment = deployed
    body = {**SCORING_EXAMPLE, "GlobalParameters": {"method": "predict_proba"}}

    response = requests.post(deployment.scoring_uri, json=body, headers=auth(deployment), timeout=10)

    assert isinstance(response.json()["Results"][0], list)


def test_secondary_key_accepted(deployed) -> None:
    _, deployment = deployed

    response = requests.post(
        deployment.scoring_uri, json=SCORING_EXAMPLE, headers=auth(deployment, deployment.secondary_key), timeout=10
    )

    assert response.status_code == 200


def test_regenerated_key_applies_without_restart(deployed) -> None:
    workspace, deployment = deployed
    pid_before = workspace.deployments.get(deployment.name).pid

    updated = workspace.deployments.regenerate_key(deployment.name, "secondary")

    old = requests.post(deployment.scoring_uri, json=SCORING_EXAMPLE, headers=auth(deployment, deployment.secondary_key), timeout=10)
    new = requests.post(deployment.scoring_uri, json=SCORING_EXAMPLE, headers=auth(updated, updated.secondary_key), timeout=10)
    assert updated.secondary_key != deployment.secondary_key
    assert old.status_code == 401
    assert new.status_code == 200
    assert workspace.deployments.get(deployment.name).pid == pid_before


def bad_requests(deployment) -> list[tuple[dict, int, str]]:
    row = SCORING_EXAMPLE["data"][0]
    without_age = {key: value for key, value in row.items() if key != "age"}
    headers = {**auth(deployment), "Content-Type": "application/json"}
    return [
        ({"data": "not json"}, 400, "not valid JSON"),
        ({"data": json.dumps([row])}, 400, "must be a JSON object"),
        ({"data": json.dumps({"data": []})}, 422, '"data" is empty'),
        ({"data": json.dumps({"data": [without_age]})}, 422, "missing column(s) 'age'"),
        ({"data": json.dumps({"data": [{**row, "salary": 1}]})}, 422, "unknown column(s) 'salary'"),
        ({"data": json.dumps({"data": [{**row, "age": "old"}]})}, 422, "column 'age': expected a number, received 'old'"),
        ({"data": json.dumps({"data": [row]}), "headers": {**auth(deployment), "Content-Type": "text/csv"}}, 415, "Unsupported content type 'text/csv'"),
        ({"data": json.dumps({"data": [row] * 40000})}, 413, "more than the limit"),
        ({"data": json.dumps({"Inputs": {"data": [row]}, "GlobalParameters": {"method": "explain"}})}, 422, "Unknown method 'explain'"),
    ], headers


def test_bad_input_gets_4xx_message(deployed) -> None:
    _, deployment = deployed
    cases, headers = bad_requests(deployment)

    for case, status, message in cases:
        response = requests.post(
            deployment.scoring_uri, data=case["data"], headers=case.get("headers", headers), timeout=30
        )

        assert response.status_code == status, (message, response.text)
        assert message in response.json()["message"]


def test_unseen_category_accepted_by_default(deployed) -> None:
    _, deployment = deployed
    row = {**SCORING_EXAMPLE["data"][0], "job": "astronaut"}

    response = requests.post(deployment.scoring_uri, json={"data": [row]}, headers=auth(deployment), timeout=10)

    assert response.status_code == 200


def test_errors_logged_with_request_id(deployed) -> None:
    workspace, deployment = deployed

    response = requests.post(deployment.scoring_uri, json={"data": []}, headers=auth(deployment), timeout=10)

    request_id = response.headers["x-ms-request-id"]
    assert wait_for(lambda: request_id in workspace.deployments.logs(deployment.name), timeout_s=5)


def test_insights_toggle_recorded(deployed) -> None:
    workspace, deployment = deployed
    service = workspace.deployments
    service.set_insights(deployment.name, False)
    before = len(service.requests(deployment.name))
    requests.post(deployment.scoring_uri, json=SCORING_EXAMPLE, headers=auth(deployment), timeout=10)
    time.sleep(1.5)
    assert len(service.requests(deployment.name)) == before

    service.set_insights(deployment.name, True)
    for _ in range(3):
        requests.post(deployment.scoring_uri, json=SCORING_EXAMPLE, headers=auth(deployment), timeout=10)
    requests.post(deployment.scoring_uri, json={"data": []}, headers=auth(deployment), timeout=10)
    recorded = wait_for(lambda: len(service.requests(deployment.name)) >= before + 4 and service.requests(deployment.name), 10)

    latest = recorded[:4]
    assert [record["status"] for record in latest] == [422, 200, 200, 200]
    assert latest[1]["rows"] == 2
    assert latest[1]["model_version"] == deployment.model_version
    assert latest[1]["payload_bytes"] > 0
    assert latest[1]["input_sample"] is None

    service.set_insights(deployment.name, False)
    requests.post(deployment.scoring_uri, json=SCORING_EXAMPLE, headers=auth(deployment), timeout=10)
    time.sleep(1.5)
    assert len(service.requests(deployment.name)) == len(recorded)


@pytest.mark.skipif(shutil.which("ab") is None and os.environ.get("OPML_REQUIRE_TOOLS") != "1", reason="ab (apache2-utils) is not installed")
def test_apache_bench_no_failures(deployed, tmp_path: Path) -> None:
    _, deployment = deployed
    payload = tmp_path / "data.json"
    payload.write_text(json.dumps(SCORING_EXAMPLE))

    result = subprocess.run(
        ["ab", "-n", "200", "-c", "4", "-p", str(payload), "-T", "application/json",
         "-H", f"Authorization: Bearer {deployment.primary_key}", deployment.scoring_uri],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert re.search(r"Complete requests:\s+200", result.stdout)
    assert re.search(r"Failed requests:\s+0", result.stdout)
    assert "Non-2xx responses" not in result.stdout
