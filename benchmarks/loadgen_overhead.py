"""Compare opml's load generator with Apache Bench against a trivial local endpoint.

Starts ``trivial_app`` (an ASGI app that does no work) on uvicorn with one
worker on 127.0.0.1, then, in the same run, measures ab and opml at the
same concurrency, request count and keep-alive setting. Prints requests
per second and mean latency of each and their ratios.

    python benchmarks/loadgen_overhead.py [--requests 20000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from opml.benchmark import parse_ab_report
from opml.loadgen import LoadSettings, run_load, summarize

PAYLOAD = json.dumps({"data": [{"age": 17}, {"age": 87}]}).encode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-keep-alive", action="store_true", help="open a connection per request (ab without -k)")
    arguments = parser.parse_args()
    keep_alive = not arguments.no_keep_alive

    port = free_port()
    uri = f"http://127.0.0.1:{port}/score"
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "trivial_app:app", "--app-dir", str(Path(__file__).parent),
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.post(uri, data=PAYLOAD, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)

        with tempfile.TemporaryDirectory() as folder:
            payload_file = Path(folder) / "data.json"
            payload_file.write_bytes(PAYLOAD)
            command = ["ab", "-q", "-n", str(arguments.requests), "-c", str(arguments.concurrency), "-p", str(payload_file), "-T", "application/json"]
            if keep_alive:
                command.append("-k")
            subprocess.run(command + [uri], capture_output=True, check=True)  # warm-up
            ab = parse_ab_report(subprocess.run(command + [uri], capture_output=True, text=True, check=True).stdout)

        settings = LoadSettings(uri, PAYLOAD, requests=arguments.requests, concurrency=arguments.concurrency, keep_alive=keep_alive, warmup=500)
        samples, wall = run_load(settings)
        ours = summarize(samples, wall, arguments.concurrency)
    finally:
        server.terminate()
        server.wait()

    print(f"trivial endpoint, uvicorn 1 worker; {arguments.requests} requests, concurrency {arguments.concurrency}, keep-alive {'on' if keep_alive else 'off'}")
    # ab prints its latency table in whole milliseconds. Its "Time per request (mean)" is
    # concurrency x wall time / requests, which is exact and equals a closed loop's mean latency.
    print(f"{'':<6}{'requests/s':>12}{'mean ms':>10}{'p99 ms':>9}{'failed':>8}")
    for name, figures in (("ab", ab), ("opml", ours)):
        print(
            f"{name:<6}{figures['requests_per_second']:>12.0f}{figures['time_per_request_ms']:>10.3f}"
            f"{figures['percentiles_ms']['99']:>9.1f}{figures['failed_requests']:>8}"
        )
    print(f"opml / ab requests per second: {ours['requests_per_second'] / ab['requests_per_second']:.2f}")
    print(f"opml / ab mean latency: {ours['time_per_request_ms'] / ab['time_per_request_ms']:.2f}")


if __name__ == "__main__":
    main()
