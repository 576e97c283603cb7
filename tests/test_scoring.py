"""The scoring client and the playground page against a real deployment."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import opml
from opml import scoring
from tests.conftest import SCORING_EXAMPLE, free_port
from tests.test_pages import metric_values, open_page
from tests.test_pages_automl import button


@pytest.fixture(scope="module")
def target(deployed) -> scoring.ScoringTarget:
    workspace, deployment = deployed
    return workspace.deployments.scoring_target(deployment.name)


def test_classic_example_bundled() -> None:
    assert scoring.classic_example() == SCORING_EXAMPLE


def test_score_rows_both_methods(target: scoring.ScoringTarget) -> None:
    predicted = scoring.score_rows(target, SCORING_EXAMPLE["data"])
    probabilities = scoring.score_rows(target, SCORING_EXAMPLE["data"], "predict_proba")

    assert predicted.status == 200
    assert len(predicted.results) == 2
    assert len(probabilities.results[0]) == 2
    assert probabilities.request_body["GlobalParameters"] == {"method": "predict_proba"}
    assert predicted.latency_ms > 0


def test_batch_of_thousand_rows(deployed, target: scoring.ScoringTarget, sample_csv: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(sample_csv, nrows=1000)
    seen = []

    batch = scoring.score_batch(target, frame, label="y", chunk_rows=300, progress=lambda done, total: seen.append(done))

    assert seen == [300, 600, 900, 1000]
    assert len(batch.scored) == 1000
    assert set(batch.scored["prediction"]) <= {"yes", "no"}
    assert list(batch.scored.columns[-2:]) == ["probability_no", "probability_yes"]
    assert batch.metrics["rows"] == 1000
    assert 0.5 < batch.metrics["AUC_weighted"] <= 1.0
    assert sum(map(sum, batch.confusion_matrix)) == 1000
    expected_accuracy = (batch.scored["prediction"] == frame["y"]).mean()
    assert batch.metrics["accuracy"] == pytest.approx(expected_accuracy)


def test_batch_missing_column_named(target: scoring.ScoringTarget, sample_csv: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(sample_csv, nrows=5).drop(columns=["age"])

    with pytest.raises(opml.OpmlError, match="lacks the model's column\\(s\\) 'age'"):
        scoring.score_batch(target, frame, label="y")


def test_unreachable_uri_message() -> None:
    target = scoring.ScoringTarget(scoring_uri=f"http://127.0.0.1:{free_port()}/score", key="k")

    with pytest.raises(opml.OpmlError, match="Could not connect to http://127.0.0.1:\\d+/score"):
        scoring.score_rows(target, SCORING_EXAMPLE["data"])


def test_wrong_key_message(target: scoring.ScoringTarget) -> None:
    wrong = scoring.ScoringTarget(scoring_uri=target.scoring_uri, key="not-the-key")

    with pytest.raises(opml.OpmlError, match="HTTP 401: Missing or wrong key.*Check the key"):
        scoring.score_rows(wrong, SCORING_EXAMPLE["data"])


def test_swagger_example_for_any_endpoint(target: scoring.ScoringTarget) -> None:
    anonymous = scoring.ScoringTarget(scoring_uri=target.scoring_uri, key=target.key)

    example = scoring.swagger_example(anonymous)

    assert scoring.score_rows(anonymous, example["data"]).status == 200


def test_python_snippet_runs(target: scoring.ScoringTarget, tmp_path: Path) -> None:
    script = tmp_path / "endpoint.py"
    script.write_text(scoring.python_snippet(target, SCORING_EXAMPLE))

    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "200"
    assert json.loads((tmp_path / "data.json").read_text()) == SCORING_EXAMPLE


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_snippet_runs(target: scoring.ScoringTarget) -> None:
    command = scoring.curl_snippet(target, SCORING_EXAMPLE) + " -o /dev/null -w '%{http_code}'"

    result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)

    assert result.stdout == "200", result.stderr


@pytest.mark.skipif(shutil.which("ab") is None and os.environ.get("OPML_REQUIRE_TOOLS") != "1", reason="ab is not installed")
def test_ab_snippet_runs(target: scoring.ScoringTarget, tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text(json.dumps(SCORING_EXAMPLE))

    result = subprocess.run(scoring.ab_snippet(target, 50, 2), shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert re.search(r"Complete requests:\s+50", result.stdout)
    assert re.search(r"Failed requests:\s+0", result.stdout)
    assert "Non-2xx" not in result.stdout


def test_playground_form_gets_prediction(deployed, monkeypatch) -> None:
    workspace, deployment = deployed
    monkeypatch.setenv("OPML_HOME", str(workspace.home))
    app = open_page("pages/playground.py")
    app.selectbox(key="playground_deployment").select(deployment.name).run()

    app.number_input(key="field_age").set_value(35)
    app.selectbox(key="field_job").select("technician")
    button(app, "Add row to the request").click().run()
    button(app, "Send").click().run()

    assert not app.exception, app.exception
    assert metric_values(app)["Rows scored"] == "1"
    assert any(text.startswith("**Predicted class:** ") for text in (item.value for item in app.markdown))
    assert len(app.get("plotly_chart")) == 1
    python_code = app.code[0].value
    assert '"age": 35' in python_code
    assert '"job": "technician"' in python_code


def test_playground_classic_example_and_batch(deployed, monkeypatch) -> None:
    workspace, deployment = deployed
    monkeypatch.setenv("OPML_HOME", str(workspace.home))
    app = open_page("pages/playground.py")

    button(app, "Use the classic two-row example").click().run()
    button(app, "Send").click().run()
    assert metric_values(app)["Rows scored"] == "2"

    app.number_input(key="batch_rows").set_value(200).run()
    button(app, "Score the rows").click().run()

    assert not app.exception, app.exception
    assert set(metric_values(app)) >= {"accuracy", "AUC_weighted", "Rows with a label"}
    assert metric_values(app)["Rows with a label"] == "200"


def test_playground_reports_unreachable_and_wrong_key(deployed, monkeypatch) -> None:
    workspace, deployment = deployed
    monkeypatch.setenv("OPML_HOME", str(workspace.home))
    app = open_page("pages/playground.py")
    app.radio(key="playground_source").set_value("Any scoring URI").run()
    unreachable = f"http://127.0.0.1:{free_port()}/score"
    app.text_input(key="playground_uri").input(unreachable).run()
    app.text_area(key=f"body_{unreachable}").input(json.dumps(SCORING_EXAMPLE)).run()
    button(app, "Send").click().run()
    assert "Could not connect to" in app.error[0].value

    app.text_input(key="playground_uri").input(deployment.scoring_uri).run()
    app.text_input(key="playground_key").input("wrong-key").run()
    app.text_area(key=f"body_{deployment.scoring_uri}").input(json.dumps(SCORING_EXAMPLE)).run()
    button(app, "Send").click().run()

    assert not app.exception, app.exception
    assert "HTTP 401" in app.error[0].value


def test_random_training_row_fits_form(deployed) -> None:
    workspace, deployment = deployed
    schema = workspace.deployments.scoring_target(deployment.name).schema

    row = workspace.deployments.training_row(deployment.name)

    assert list(row) == [feature["name"] for feature in schema["features"]]
    assert isinstance(row["age"], float)
    assert row["job"] in next(feature["categories"] for feature in schema["features"] if feature["name"] == "job")


def test_playground_random_row_fills_form(deployed, monkeypatch) -> None:
    workspace, deployment = deployed
    monkeypatch.setenv("OPML_HOME", str(workspace.home))
    app = open_page("pages/playground.py")
    app.selectbox(key="playground_deployment").select(deployment.name).run()

    button(app, "Random row from the training data").click().run()

    assert not app.exception, app.exception
    training = workspace.datasets.load("bm-small")
    filled = {name: app.session_state[f"field_{name}"] for name in ("age", "duration", "job")}
    matches = training[(training["age"] == filled["age"]) & (training["duration"] == filled["duration"])]
    assert filled["job"] in set(matches["job"])
