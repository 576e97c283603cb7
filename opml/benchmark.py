"""The benchmarks service: load-test a deployment or any scoring URI, with opml or with ab.

Results of both tools are stored in the same record shape, with the
settings, target and time, so they can be listed and compared.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from opml.backends.local.activity import record_activity
from opml.backends.local.store import MetadataStore, utc_now
from opml.errors import NotFoundError, OpmlError
from opml.loadgen import LoadProgress, LoadSettings, Sample, run_load, summarize, time_series

log = logging.getLogger(__name__)

MAX_STORED_LATENCIES = 100_000


@dataclass(frozen=True)
class BenchmarkResult:
    id: str
    created_at: datetime
    tool: str
    """``opml`` or ``ab``."""
    scoring_uri: str
    deployment: str | None
    model_version: int | None
    insights_enabled: bool | None
    settings: dict
    summary: dict
    series: list[dict] = field(repr=False)
    latencies_ms: list[float] = field(repr=False)
    command: str = ""
    """The equivalent ab command line."""

    @property
    def label(self) -> str:
        target = self.deployment or self.scoring_uri
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.tool} {target} c={self.settings['concurrency']}"


def ab_command(settings: LoadSettings, payload_path: str = "data.json", gnuplot_path: str | None = None) -> list[str]:
    """Return the ab command with the same settings; ab needs a request count, so a duration maps to ``-t``."""
    command = ["ab"]
    if settings.requests is not None:
        command += ["-n", str(settings.requests)]
    else:
        command += ["-t", f"{settings.duration_s:g}", "-n", "50000000"]
    command += ["-c", str(settings.concurrency), "-s", f"{max(1, round(settings.timeout_s))}", "-p", payload_path, "-T", "application/json"]
    if settings.key:
        command += ["-H", f"Authorization: Bearer {settings.key}"]
    if settings.keep_alive:
        command.append("-k")
    if gnuplot_path:
        command += ["-g", gnuplot_path]
    return command + [settings.scoring_uri]


def ab_command_line(settings: LoadSettings) -> str:
    return " ".join(shlex.quote(part) for part in ab_command(settings))


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Raise OpmlError unless a TCP connection to the URI's host and port opens."""
    parts = urlsplit(uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as error:
        raise OpmlError(
            f"Could not connect to {uri}: {error.strerror or error}. Check the URI and that the service is running."
        ) from error


def _number(pattern: str, report: str, default: float | None = None) -> float:
    match = re.search(pattern, report, re.M)
    if match is None:
        if default is not None:
            return default
        raise OpmlError(f"Could not read {pattern!r} from the ab report; is it Apache Bench output?")
    return float(match.group(1))


def parse_ab_report(report: str) -> dict:
    """Turn Apache Bench's text report into the summary shape of ``opml.loadgen.summarize``."""
    complete = int(_number(r"^Complete requests:\s+(\d+)", report))
    failed = int(_number(r"^Failed requests:\s+(\d+)", report))
    non_2xx = int(_number(r"^Non-2xx responses:\s+(\d+)", report, 0))
    total = re.search(r"^Total:\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+(\d+)", report, re.M)
    summary = {
        "complete_requests": complete,
        "failed_requests": failed + non_2xx,
        # ab's failed requests are connection, receive, length and exception errors;
        # it reports neither timeouts apart nor the status codes of non-2xx responses.
        "failures": {"non_2xx": {"any": non_2xx} if non_2xx else {}, "timeout": 0, "connection": failed},
        "wall_time_s": _number(r"^Time taken for tests:\s+([\d.]+)", report),
        "requests_per_second": _number(r"^Requests per second:\s+([\d.]+)", report),
        "time_per_request_ms": _number(r"^Time per request:\s+([\d.]+) \[ms\] \(mean\)$", report),
        "time_per_request_all_ms": _number(r"^Time per request:\s+([\d.]+) \[ms\] \(mean, across", report),
        "transfer_rate_kb_s": _number(r"^Transfer rate:\s+([\d.]+)", report),
        "percentiles_ms": {
            match.group(1): float(match.group(2))
            for match in re.finditer(r"^\s+(\d+)%\s+(\d+)", report, re.M)
        },
    }
    if total:
        summary["latency_ms"] = {
            "min": float(total.group(1)),
            "mean": float(total.group(2)),
            "sd": float(total.group(3)),
            "median": float(total.group(4)),
            "max": float(total.group(5)),
        }
    return summary


def _samples_from_gnuplot(path: Path) -> list[Sample]:
    """Read ab's ``-g`` file: one line per request with its start (seconds since epoch) and total time (ms)."""
    rows = []
    for line in path.read_text().splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) >= 6:
            rows.append((float(fields[1]), float(fields[4])))
    if not rows:
        return []
    start = min(seconds for seconds, _ in rows)
    return [Sample(seconds - start, total, 200, "ok", 0) for seconds, total in rows]


class BenchmarkService:
    def __init__(self, store: MetadataStore, deployments, datasets) -> None:
        self._store = store
        self._deployments = deployments
        self._datasets = datasets

    def payload_from_dataset(self, name: str, version: int | None, rows: int, drop: str | None = None) -> bytes:
        """Return a request body of the first ``rows`` rows of a dataset version, without the ``drop`` column."""
        if rows < 1:
            raise OpmlError(f"Invalid number of payload rows {rows}: give 1 or more.")
        frame = self._datasets.preview(name, version, rows=rows)
        if drop and drop in frame.columns:
            frame = frame.drop(columns=[drop])
        return json.dumps({"data": json.loads(frame.to_json(orient="records"))}).encode()

    @staticmethod
    def payload_from_file(path: str | Path) -> bytes:
        """Read a JSON request body from a file, checking that it is JSON."""
        source = Path(path)
        if not source.is_file():
            raise OpmlError(f"Payload file not found: {str(path)!r}; give a JSON file such as data.json.")
        data = source.read_bytes()
        try:
            json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise OpmlError(f"Payload file {str(path)!r} is not JSON: {error}. Give a request body such as {{\"data\": [...]}}.") from error
        return data

    def settings_for(
        self,
        *,
        deployment: str | None = None,
        scoring_uri: str | None = None,
        key: str | None = None,
        payload: bytes | None = None,
        **load: object,
    ) -> tuple[LoadSettings, dict]:
        """Build validated load settings for a deployment (its key and example payload) or a URI."""
        context: dict = {"deployment": None, "model_version": None, "insights_enabled": None}
        if deployment is not None:
            target = self._deployments.scoring_target(deployment)
            record = self._deployments.get(deployment)
            scoring_uri, key = target.scoring_uri, key or target.key
            if payload is None:
                payload = json.dumps({"data": [target.schema["example"]]}).encode()
            context = {"deployment": deployment, "model_version": record.model_version, "insights_enabled": record.insights_enabled}
        if not scoring_uri:
            raise OpmlError("Give a deployment or a scoring URI to load-test.")
        if payload is None:
            raise OpmlError(
                f"Missing payload for {scoring_uri}: give a JSON request body (--payload FILE or --rows-from DATASET "
                "in the CLI), or name the deployment instead of its URI so opml takes its example."
            )
        return LoadSettings(scoring_uri=scoring_uri, key=key, payload=payload, **load).validate(), context

    def run(
        self,
        settings: LoadSettings,
        context: dict,
        *,
        progress: Callable[[LoadProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> BenchmarkResult:
        """Run opml's load generator and store the result."""
        log.info("Benchmark of %s: %s", settings.scoring_uri, settings.settings_dict())
        check_reachable(settings.scoring_uri)
        samples, wall = run_load(settings, progress=progress, cancel=cancel)
        if cancel is not None and cancel.is_set():
            raise OpmlError(f"The benchmark was canceled after {len(samples)} requests; nothing was stored.")
        return self._store_result("opml", settings, context, samples, summarize(samples, wall, settings.concurrency))

    def run_ab(self, settings: LoadSettings, context: dict) -> BenchmarkResult:
        """Run Apache Bench with the same settings, parse its report and store it."""
        if shutil.which("ab") is None:
            raise OpmlError("ab is not installed; install Debian's apache2-utils to compare with Apache Bench.")
        check_reachable(settings.scoring_uri)
        if settings.warmup:
            log.info("ab has no warm-up; its run counts every request")
        with tempfile.TemporaryDirectory() as folder:
            payload, gnuplot = Path(folder) / "data.json", Path(folder) / "ab.tsv"
            payload.write_bytes(settings.payload)
            completed = subprocess.run(
                ab_command(settings, str(payload), str(gnuplot)), capture_output=True, text=True, timeout=3600
            )
            if completed.returncode != 0 and "Complete requests" not in completed.stdout:
                detail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
                raise OpmlError(f"ab failed against {settings.scoring_uri}: {detail}")
            summary = parse_ab_report(completed.stdout)
            samples = _samples_from_gnuplot(gnuplot) if gnuplot.exists() else []
        return self._store_result("ab", settings, context, samples, summary)

    def list(self, limit: int = 100) -> list[BenchmarkResult]:
        with self._store.read() as connection:
            rows = connection.execute("SELECT * FROM benchmarks ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
        return [_to_result(row) for row in rows]

    def get(self, benchmark_id: str) -> BenchmarkResult:
        with self._store.read() as connection:
            row = connection.execute("SELECT * FROM benchmarks WHERE id = ?", (benchmark_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"Benchmark {benchmark_id!r} not found; list them with: opml benchmark list")
        return _to_result(row)

    def _store_result(self, tool: str, settings: LoadSettings, context: dict, samples: list[Sample], summary: dict) -> BenchmarkResult:
        benchmark_id = f"bench_{uuid.uuid4().hex[:10]}"
        latencies = [round(sample.latency_ms, 3) for sample in samples[:MAX_STORED_LATENCIES]]
        with self._store.write() as connection:
            connection.execute(
                "INSERT INTO benchmarks (id, created_at, tool, scoring_uri, deployment, model_version, insights_enabled,"
                " settings_json, summary_json, series_json, latencies_json, command) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    benchmark_id,
                    utc_now(),
                    tool,
                    settings.scoring_uri,
                    context.get("deployment"),
                    context.get("model_version"),
                    None if context.get("insights_enabled") is None else int(context["insights_enabled"]),
                    json.dumps(settings.settings_dict()),
                    json.dumps(summary),
                    json.dumps(time_series(samples)),
                    json.dumps(latencies),
                    ab_command_line(settings),
                ),
            )
            record_activity(
                connection,
                "benchmark",
                f"Benchmark {benchmark_id} ({tool}) of {context.get('deployment') or settings.scoring_uri}: "
                f"{summary['requests_per_second']:.1f} requests/s, {summary['failed_requests']} failed",
            )
        return self.get(benchmark_id)


def _to_result(row) -> BenchmarkResult:
    return BenchmarkResult(
        id=row["id"],
        created_at=datetime.fromisoformat(row["created_at"]),
        tool=row["tool"],
        scoring_uri=row["scoring_uri"],
        deployment=row["deployment"],
        model_version=row["model_version"],
        insights_enabled=None if row["insights_enabled"] is None else bool(row["insights_enabled"]),
        settings=json.loads(row["settings_json"]),
        summary=json.loads(row["summary_json"]),
        series=json.loads(row["series_json"]),
        latencies_ms=json.loads(row["latencies_json"]),
        command=row["command"],
    )


class BenchmarkJob:
    """A benchmark running in a background thread, so a dashboard page can poll it and cancel it."""

    def __init__(self, service: BenchmarkService, settings: LoadSettings, context: dict, with_ab: bool) -> None:
        self.id = uuid.uuid4().hex
        self.progress = LoadProgress(total=settings.requests)
        self.cancel_event = threading.Event()
        self.results: list[BenchmarkResult] = []
        self.error: str | None = None
        self.phase = "opml"
        self._thread = threading.Thread(
            target=self._run, args=(service, settings, context, with_ab), name=f"benchmark-{self.id}", daemon=True
        )

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> BenchmarkJob:
        _JOBS[self.id] = self
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.cancel_event.set()

    def _run(self, service: BenchmarkService, settings: LoadSettings, context: dict, with_ab: bool) -> None:
        try:
            self.results.append(service.run(settings, context, progress=self._update, cancel=self.cancel_event))
            if with_ab and not self.cancel_event.is_set():
                self.phase = "ab"
                self.results.append(service.run_ab(settings, context))
        except OpmlError as error:
            self.error = error.message
        except Exception as error:  # no caller sees a background thread's exception, so record it
            log.exception("Benchmark job %s failed", self.id)
            self.error = f"The benchmark failed: {error}"

    def _update(self, progress: LoadProgress) -> None:
        self.progress = progress


_JOBS: dict[str, BenchmarkJob] = {}


def find_job(job_id: str | None) -> BenchmarkJob | None:
    return _JOBS.get(job_id) if job_id else None
