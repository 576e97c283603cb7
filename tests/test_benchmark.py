"""The load generator and the benchmarks service, against real servers on loopback."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import opml
from opml.benchmark import ab_command_line, parse_ab_report
from opml.loadgen import LoadSettings, run_load, summarize
from tests.conftest import SCORING_EXAMPLE, free_port
from tests.test_pages import open_page
from tests.test_pages_automl import button

NEEDS_AB = pytest.mark.skipif(
    shutil.which("ab") is None and os.environ.get("OPML_REQUIRE_TOOLS") != "1", reason="ab is not installed"
)
PAYLOAD = json.dumps(SCORING_EXAMPLE).encode()


class MisbehavingHandler(BaseHTTPRequestHandler):
    """Respond to POST /500 with 500, /401 with 401, /slow after 2 s, and /ok with 200."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/slow":
            time.sleep(2)
        status = {"/500": 500, "/401": 401}.get(self.path, 200)
        body = b'{"message": "test"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture
def misbehaving_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), MisbehavingHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("path", "status"), [("/500", "500"), ("/401", "401")])
def test_non_2xx_counted_by_status(misbehaving_server: str, path: str, status: str) -> None:
    settings = LoadSettings(misbehaving_server + path, PAYLOAD, requests=20, concurrency=2)

    samples, wall = run_load(settings)
    summary = summarize(samples, wall, 2)

    assert summary["complete_requests"] == 20
    assert summary["failed_requests"] == 20
    assert summary["failures"] == {"non_2xx": {status: 20}, "timeout": 0, "connection": 0}


def test_timeouts_counted(misbehaving_server: str) -> None:
    settings = LoadSettings(misbehaving_server + "/slow", PAYLOAD, requests=4, concurrency=2, timeout_s=0.3)

    samples, wall = run_load(settings)
    summary = summarize(samples, wall, 2)

    assert summary["failures"]["timeout"] == 4
    assert all(sample.latency_ms < 1500 for sample in samples)


def test_connection_errors_counted() -> None:
    settings = LoadSettings(f"http://127.0.0.1:{free_port()}/score", PAYLOAD, requests=5)

    samples, wall = run_load(settings)

    assert summarize(samples, wall, 1)["failures"]["connection"] == 5


def test_mixed_results_and_warmup(misbehaving_server: str) -> None:
    settings = LoadSettings(misbehaving_server + "/ok", PAYLOAD, requests=50, concurrency=5, warmup=7, keep_alive=False)

    samples, wall = run_load(settings)
    summary = summarize(samples, wall, 5)

    assert summary["complete_requests"] == 50
    assert summary["failed_requests"] == 0
    assert set(summary["percentiles_ms"]) == {"50", "66", "75", "80", "90", "95", "98", "99", "100"}
    assert summary["latency_ms"]["min"] <= summary["latency_ms"]["median"] <= summary["latency_ms"]["max"]
    assert summary["time_per_request_ms"] == pytest.approx(5 * summary["time_per_request_all_ms"])


def test_duration_mode_stops(misbehaving_server: str) -> None:
    settings = LoadSettings(misbehaving_server + "/ok", PAYLOAD, requests=None, duration_s=1.0, concurrency=2)

    started = time.monotonic()
    samples, wall = run_load(settings)

    assert 0.9 < wall < 3
    assert time.monotonic() - started < 5
    assert len(samples) > 10


def test_cancel_stops_early(misbehaving_server: str) -> None:
    cancel = threading.Event()
    settings = LoadSettings(misbehaving_server + "/ok", PAYLOAD, requests=1_000_000, concurrency=2)
    threading.Timer(0.5, cancel.set).start()

    samples, _ = run_load(settings, cancel=cancel)

    assert 0 < len(samples) < 1_000_000


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"requests": 0}, "Invalid number of requests 0"),
        ({"requests": -5}, "Invalid number of requests -5"),
        ({"concurrency": 0}, "Invalid concurrency 0"),
        ({"requests": 3, "concurrency": 8}, "Concurrency 8 is above the number of requests 3"),
        ({"timeout_s": 0}, "Invalid timeout 0 s"),
        ({"warmup": -1}, "Invalid warm-up -1"),
        ({"requests": None, "duration_s": -2.0}, "Invalid duration -2 s"),
        ({"scoring_uri": "ftp://127.0.0.1/score"}, "Invalid URI 'ftp://127.0.0.1/score'"),
    ],
)
def test_bad_settings_rejected(overrides: dict, message: str) -> None:
    values = {"scoring_uri": "http://127.0.0.1:1/score", "payload": PAYLOAD, **overrides}

    with pytest.raises(opml.OpmlError, match=message):
        LoadSettings(**values).validate()


def test_deployment_500_requests_concurrency_4(deployed) -> None:
    workspace, deployment = deployed
    settings, context = workspace.benchmarks.settings_for(deployment=deployment.name, requests=500, concurrency=4, warmup=10)

    result = workspace.benchmarks.run(settings, context)

    assert result.summary["complete_requests"] == 500
    assert result.summary["failed_requests"] == 0
    assert result.deployment == deployment.name
    assert result.model_version == deployment.model_version
    assert len(result.latencies_ms) == 500
    assert sum(point["requests_per_second"] for point in result.series) >= 500 * 0.5
    assert workspace.benchmarks.get(result.id).summary == result.summary
    assert result.id in [item.id for item in workspace.benchmarks.list()]
    assert "-c 4" in result.command
    assert "-n 500" in result.command


def test_wrong_key_reported_as_401_failures(deployed) -> None:
    workspace, deployment = deployed
    settings, context = workspace.benchmarks.settings_for(
        scoring_uri=deployment.scoring_uri, key="wrong", payload=PAYLOAD, requests=30, concurrency=3
    )

    result = workspace.benchmarks.run(settings, context)

    assert result.summary["failed_requests"] == 30
    assert result.summary["failures"]["non_2xx"] == {"401": 30}


def test_unreachable_uri_is_an_error(deployed) -> None:
    workspace, _ = deployed
    settings, context = workspace.benchmarks.settings_for(
        scoring_uri=f"http://127.0.0.1:{free_port()}/score", payload=PAYLOAD, requests=5
    )
    before = len(workspace.benchmarks.list())

    with pytest.raises(opml.OpmlError, match="Could not connect to http://127.0.0.1:\\d+/score"):
        workspace.benchmarks.run(settings, context)

    assert len(workspace.benchmarks.list()) == before


def test_payload_file_must_be_json(deployed, tmp_path: Path) -> None:
    workspace, _ = deployed
    not_json = tmp_path / "data.json"
    not_json.write_text("age=17")

    with pytest.raises(opml.OpmlError, match="Payload file '.*data.json' is not JSON"):
        workspace.benchmarks.payload_from_file(not_json)


@NEEDS_AB
def test_ab_report_parsed(deployed) -> None:
    workspace, deployment = deployed
    settings, context = workspace.benchmarks.settings_for(deployment=deployment.name, requests=200, concurrency=4)

    result = workspace.benchmarks.run_ab(settings, context)

    summary = result.summary
    assert result.tool == "ab"
    assert summary["complete_requests"] == 200
    assert summary["failed_requests"] == 0
    assert summary["requests_per_second"] > 0
    assert summary["time_per_request_ms"] == pytest.approx(4 * summary["time_per_request_all_ms"], rel=0.01)
    assert list(summary["percentiles_ms"]) == ["50", "66", "75", "80", "90", "95", "98", "99", "100"]
    assert summary["latency_ms"]["min"] <= summary["latency_ms"]["max"]
    assert len(result.latencies_ms) == 200
    assert result.command == ab_command_line(settings)


def test_parse_ab_failures_and_non_2xx() -> None:
    report = "\n".join(
        [
            "Complete requests:      100",
            "Failed requests:        3",
            "   (Connect: 0, Receive: 0, Length: 3, Exceptions: 0)",
            "Non-2xx responses:      40",
            "Time taken for tests:   0.500 seconds",
            "Requests per second:    200.00 [#/sec] (mean)",
            "Time per request:       20.000 [ms] (mean)",
            "Time per request:       5.000 [ms] (mean, across all concurrent requests)",
            "Transfer rate:          50.00 [Kbytes/sec] received",
            "Total:          2   20   3.1     19      40",
            "  50%     19",
            " 100%     40 (longest request)",
        ]
    )

    summary = parse_ab_report(report)

    assert summary["failed_requests"] == 43
    assert summary["failures"]["non_2xx"] == {"any": 40}
    assert summary["latency_ms"] == {"min": 2.0, "mean": 20.0, "sd": 3.1, "median": 19.0, "max": 40.0}
    assert summary["percentiles_ms"] == {"50": 19.0, "100": 40.0}


def test_parse_rejects_other_text() -> None:
    with pytest.raises(opml.OpmlError, match="Could not read"):
        parse_ab_report("this is not ab output")


def test_page_runs_short_benchmark(deployed, monkeypatch) -> None:
    workspace, deployment = deployed
    monkeypatch.setenv("OPML_HOME", str(workspace.home))
    before = len(workspace.benchmarks.list())
    app = open_page("pages/benchmark.py")
    app.selectbox(key="bench_deployment").select(deployment.name).run()
    app.number_input(key="bench_requests").set_value(100).run()
    assert "ab -n 100 -c 4" in app.code[0].value

    button(app, "Run").click().run()
    deadline = time.monotonic() + 60
    while len(workspace.benchmarks.list()) == before and time.monotonic() < deadline:
        time.sleep(0.5)
    app.run()
    app.run()

    assert not app.exception, app.exception
    assert len(workspace.benchmarks.list()) == before + 1
    newest = workspace.benchmarks.list()[0]
    assert newest.id in app.dataframe[0].value["id"].tolist()
    assert len(app.get("plotly_chart")) == 4


def test_cli_benchmark_run_list_show(deployed, tmp_path: Path) -> None:
    import subprocess
    import sys

    workspace, deployment = deployed
    environment = {**os.environ, "OPML_HOME": str(workspace.home)}

    def run(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "opml", "benchmark", *arguments], capture_output=True, text=True, env=environment, timeout=120)

    ran = run("run", "--deployment", deployment.name, "-n", "50", "-c", "2", "--json")
    results = json.loads(ran.stdout)
    listed = run("list", "--json")
    shown = run("show", results[0]["id"])
    too_many = run("run", "--deployment", deployment.name, "-n", "2", "-c", "5")
    not_json = tmp_path / "body.json"
    not_json.write_text("{")
    bad_payload = run("run", "--deployment", deployment.name, "--payload", str(not_json))
    body = tmp_path / "data.json"
    body.write_text(json.dumps(SCORING_EXAMPLE))
    wrong_key = run("run", "--uri", deployment.scoring_uri, "--key", "wrong", "--payload", str(body), "-n", "5")
    no_payload = run("run", "--uri", deployment.scoring_uri, "-n", "5")

    assert ran.returncode == 0, ran.stderr
    assert results[0]["summary"]["complete_requests"] == 50
    assert results[0]["id"] in [item["id"] for item in json.loads(listed.stdout)]
    assert "requests per second:" in shown.stdout
    assert "failed requests:              0\n" in shown.stdout
    assert "time taken for tests:" in shown.stdout
    assert re.search(r"request body: +[1-9][\d,]* bytes\n", shown.stdout), shown.stdout
    assert too_many.returncode == 1
    assert "Concurrency 5 is above the number of requests 2" in too_many.stderr
    assert bad_payload.returncode == 1
    assert "is not JSON" in bad_payload.stderr
    assert wrong_key.returncode == 0, wrong_key.stderr
    assert "warning: 5 failed requests (HTTP 401: 5); check the key" in wrong_key.stderr
    assert no_payload.returncode == 1
    assert f"Missing payload for {deployment.scoring_uri}: give a JSON request body (--payload FILE" in no_payload.stderr


def test_cli_failure_breakdown_lists_nonzero_counts() -> None:
    from opml.cli import _failure_breakdown

    assert _failure_breakdown({"non_2xx": {"503": 4}, "timeout": 1, "connection": 0}) == "  (HTTP 503: 4, timeout: 1)"
    assert _failure_breakdown({"non_2xx": {"any": 2}, "timeout": 0, "connection": 3}) == "  (non-2xx: 2, connection: 3)"
    assert _failure_breakdown({"non_2xx": {}, "timeout": 0, "connection": 0}) == ""
