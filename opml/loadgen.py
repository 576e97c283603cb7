"""An HTTP load generator for scoring endpoints, in the manner of Apache Bench.

Each of ``concurrency`` asyncio tasks keeps its own connection and sends
the same pre-encoded POST request in turn, so the generator spends little
CPU per request and does not become the bottleneck it measures. Requests
go only to the host and port of the given URI.
"""

from __future__ import annotations

import asyncio
import ssl
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from opml.errors import OpmlError

PERCENTILES = (50, 66, 75, 80, 90, 95, 98, 99, 100)
MAX_REQUESTS = 1_000_000
MAX_CONCURRENCY = 1000


@dataclass(frozen=True)
class LoadSettings:
    scoring_uri: str
    payload: bytes = field(repr=False)
    key: str | None = field(default=None, repr=False)
    requests: int | None = 100
    """Requests to send, warm-up excluded; None when ``duration_s`` is used instead."""
    duration_s: float | None = None
    concurrency: int = 1
    keep_alive: bool = True
    timeout_s: float = 30.0
    warmup: int = 0
    """Requests sent first and left out of the figures."""

    def validate(self) -> LoadSettings:
        parts = urlsplit(self.scoring_uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OpmlError(f"Invalid URI {self.scoring_uri!r}: give an http:// or https:// scoring URI.")
        if (self.requests is None) == (self.duration_s is None):
            raise OpmlError("Give either a number of requests or a duration, not both and not neither.")
        if self.requests is not None and not 1 <= self.requests <= MAX_REQUESTS:
            raise OpmlError(f"Invalid number of requests {self.requests}: give 1 to {MAX_REQUESTS:,}.")
        if self.duration_s is not None and not 0 < self.duration_s <= 3600:
            raise OpmlError(f"Invalid duration {self.duration_s:g} s: give more than 0 and at most 3600 seconds.")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise OpmlError(f"Invalid concurrency {self.concurrency}: give 1 to {MAX_CONCURRENCY}.")
        if self.requests is not None and self.concurrency > self.requests:
            raise OpmlError(
                f"Concurrency {self.concurrency} is above the number of requests {self.requests}; "
                "lower the concurrency or send more requests."
            )
        if not self.timeout_s > 0:
            raise OpmlError(f"Invalid timeout {self.timeout_s:g} s: give a number of seconds greater than 0.")
        if self.warmup < 0:
            raise OpmlError(f"Invalid warm-up {self.warmup}: give 0 or more requests.")
        return self

    def settings_dict(self) -> dict:
        data = asdict(self)
        del data["payload"], data["key"]
        data["payload_bytes"] = len(self.payload)
        return data


@dataclass(frozen=True)
class Sample:
    started_s: float
    """Since the start of the measured part."""
    latency_ms: float
    status: int | None
    cause: str
    """``ok``, ``non-2xx``, ``timeout`` or ``connection``."""
    received_bytes: int


@dataclass
class LoadProgress:
    done: int = 0
    total: int | None = None
    elapsed_s: float = 0.0
    failed: int = 0


class _Connection:
    def __init__(self, host: str, port: int, use_tls: bool) -> None:
        self.host, self.port, self.use_tls = host, port, use_tls
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, int, bool]:
        """Send one request; return status, bytes received, and whether the server keeps the connection."""
        if self.writer is None:
            context = ssl.create_default_context() if self.use_tls else None
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, ssl=context)
        self.writer.write(raw)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        received = len(status_line)
        length, chunked, close = None, False, False
        while True:
            line = await self.reader.readline()
            received += len(line)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            while True:
                size_line = await self.reader.readline()
                size = int(size_line.split(b";")[0], 16)
                received += len(size_line) + size + 2
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length is not None:
            received += length
            await self.reader.readexactly(length)
        else:
            received += len(await self.reader.read())
            close = True
        return status, received, not close

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def build_request(settings: LoadSettings) -> bytes:
    parts = urlsplit(settings.scoring_uri)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    headers = [
        f"POST {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "User-Agent: opml-loadgen",
        "Content-Type: application/json",
        f"Content-Length: {len(settings.payload)}",
        f"Connection: {'keep-alive' if settings.keep_alive else 'close'}",
    ]
    if settings.key:
        headers.append(f"Authorization: Bearer {settings.key}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + settings.payload


def run_load(
    settings: LoadSettings,
    *,
    progress: Callable[[LoadProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[Sample], float]:
    """Send the load and return the measured samples and the measured wall time in seconds."""
    settings.validate()
    try:
        import uvloop  # about twice as fast at opening connections as asyncio's own loop
    except ImportError:
        return asyncio.run(_run(settings, progress, cancel or threading.Event()))
    return uvloop.run(_run(settings, progress, cancel or threading.Event()))


async def _run(settings: LoadSettings, progress, cancel: threading.Event) -> tuple[list[Sample], float]:
    parts = urlsplit(settings.scoring_uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    raw = build_request(settings)
    samples: list[Sample] = []
    state = {"issued": 0, "warmup_left": settings.warmup, "start": None, "deadline": None}
    status = LoadProgress(total=settings.requests)

    def take_ticket() -> str | None:
        """Return ``warmup`` or ``measure`` for the next request, or None when the load is done."""
        if cancel.is_set():
            return None
        if state["warmup_left"] > 0:
            state["warmup_left"] -= 1
            return "warmup"
        now = time.perf_counter()
        if state["start"] is None:
            state["start"] = now
            if settings.duration_s is not None:
                state["deadline"] = now + settings.duration_s
        if settings.requests is not None and state["issued"] >= settings.requests:
            return None
        if state["deadline"] is not None and now >= state["deadline"]:
            return None
        state["issued"] += 1
        return "measure"

    async def worker() -> None:
        connection = _Connection(parts.hostname, port, parts.scheme == "https")
        try:
            while (ticket := take_ticket()) is not None:
                begun = time.perf_counter()
                try:
                    code, received, keep = await asyncio.wait_for(connection.request(raw), settings.timeout_s)
                    cause = "ok" if 200 <= code < 300 else "non-2xx"
                    if not (keep and settings.keep_alive):
                        connection.close()
                except asyncio.TimeoutError:
                    code, received, cause = None, 0, "timeout"
                    connection.close()
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    code, received, cause = None, 0, "connection"
                    connection.close()
                if ticket == "measure":
                    ended = time.perf_counter()
                    samples.append(Sample(begun - state["start"], (ended - begun) * 1000, code, cause, received))
                    status.done += 1
                    status.failed += cause != "ok"
        finally:
            connection.close()

    async def reporter() -> None:
        while True:
            await asyncio.sleep(0.25)
            if state["start"] is not None:
                status.elapsed_s = time.perf_counter() - state["start"]
            progress(status)

    report_task = asyncio.create_task(reporter()) if progress else None
    await asyncio.gather(*(worker() for _ in range(settings.concurrency)))
    wall = time.perf_counter() - state["start"] if state["start"] is not None else 0.0
    if report_task:
        report_task.cancel()
        status.elapsed_s = wall
        progress(status)
    return samples, wall


def summarize(samples: list[Sample], wall_s: float, concurrency: int) -> dict:
    """Return Apache Bench's figures and more, from measured samples."""
    complete = len(samples)
    latencies = sorted(sample.latency_ms for sample in samples)
    causes = Counter(sample.cause for sample in samples)
    non_2xx = Counter(str(sample.status) for sample in samples if sample.cause == "non-2xx")
    received = sum(sample.received_bytes for sample in samples)
    failed = complete - causes.get("ok", 0)
    summary = {
        "complete_requests": complete,
        "failed_requests": failed,
        "failures": {"non_2xx": dict(non_2xx), "timeout": causes.get("timeout", 0), "connection": causes.get("connection", 0)},
        "wall_time_s": wall_s,
        "requests_per_second": complete / wall_s if wall_s else 0.0,
        "time_per_request_ms": concurrency * wall_s * 1000 / complete if complete else 0.0,
        "time_per_request_all_ms": wall_s * 1000 / complete if complete else 0.0,
        "transfer_rate_kb_s": received / 1024 / wall_s if wall_s else 0.0,
    }
    if latencies:
        summary["latency_ms"] = {
            "min": latencies[0],
            "mean": statistics.fmean(latencies),
            "sd": statistics.pstdev(latencies),
            "median": statistics.median(latencies),
            "max": latencies[-1],
        }
        summary["percentiles_ms"] = {str(p): _percentile(latencies, p) for p in PERCENTILES}
    return summary


def _percentile(ordered: list[float], percent: int) -> float:
    """Return the latency within which ``percent`` % of requests were served, as ab reports it."""
    index = max(0, min(len(ordered) - 1, int(round(percent / 100 * len(ordered))) - 1))
    return ordered[index]


def time_series(samples: list[Sample], bucket_s: float = 1.0) -> list[dict]:
    """Return per-bucket throughput and mean latency, by request start time."""
    buckets: dict[int, list[Sample]] = {}
    for sample in samples:
        buckets.setdefault(int(sample.started_s // bucket_s), []).append(sample)
    return [
        {
            "second": index * bucket_s,
            "requests_per_second": len(items) / bucket_s,
            "mean_latency_ms": statistics.fmean(item.latency_ms for item in items),
            "failed": sum(item.cause != "ok" for item in items),
        }
        for index, items in sorted(buckets.items())
    ]
