"""Insights: the recorded requests of a deployment, summarized over time."""

from __future__ import annotations

import pandas as pd

COLUMNS = ("at", "request_id", "status", "latency_ms", "rows", "payload_bytes", "model_version")


def requests_frame(records: list[dict]) -> pd.DataFrame:
    """Return recorded requests as a DataFrame, oldest first, with ``at`` as UTC timestamps."""
    if not records:
        return pd.DataFrame(columns=[*COLUMNS, "input_sample", "output_sample"])
    frame = pd.DataFrame(records)
    frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
    return frame.sort_values("at").reset_index(drop=True)


def summarize(frame: pd.DataFrame, bucket: str = "10s") -> pd.DataFrame:
    """Aggregate requests per time bucket: rate, latency percentiles and error rate.

    ``requests_per_second`` divides each bucket's count by its length;
    ``error_rate`` counts responses with status 400 or above.
    """
    if frame.empty:
        return pd.DataFrame(
            columns=["at", "requests", "requests_per_second", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "error_rate"]
        )
    seconds = pd.Timedelta(bucket).total_seconds()
    grouped = frame.set_index("at").resample(bucket)
    summary = pd.DataFrame(
        {
            "requests": grouped["status"].count(),
            "latency_p50_ms": grouped["latency_ms"].quantile(0.50),
            "latency_p95_ms": grouped["latency_ms"].quantile(0.95),
            "latency_p99_ms": grouped["latency_ms"].quantile(0.99),
            "error_rate": grouped["status"].apply(lambda statuses: float((statuses >= 400).mean()) if len(statuses) else 0.0),
        }
    )
    summary["requests_per_second"] = summary["requests"] / seconds
    return summary.reset_index()
