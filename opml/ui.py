"""Streamlit helpers shared by the dashboard pages: the cached workspace and charts.

Pages call these to stay a plain description of the screen; nothing here
decides anything a service would.
"""

from __future__ import annotations

import json
import os
import re

import altair as alt
import pandas as pd
import streamlit as st

import opml
from opml import charts
from opml.profiling import ColumnProfile
from opml.records import ChildRun, DatasetVersion, PipelineStep, Run

FLASH_KEY = "flash_message"


def use_app_navigation() -> None:
    """Rerun through app.py when Streamlit started this page on its own.

    Streamlit 1.67 runs a file of ``pages/`` directly when a browser opens
    its URL before any session has run app.py. The page then lacks the
    navigation and page settings app.py declares. Clearing Streamlit's
    pages-folder flag makes every later run go through app.py's
    ``st.navigation``, which still selects the requested page.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def page(title: str) -> opml.Workspace:
    """Start a page: route it through app.py, show its title and last flash message, open the workspace.

    A workspace that cannot be opened stops the page with the error shown.
    """
    use_app_navigation()
    st.title(title)
    show_flash()
    try:
        return workspace()
    except opml.OpmlError as error:
        st.error(error.message)
        st.stop()


def workspace() -> opml.Workspace:
    """Return the workspace at OPML_HOME, opened once per server process."""
    return _open_workspace(os.environ.get("OPML_HOME", ""))


@st.cache_resource(show_spinner=False)
def _open_workspace(home: str) -> opml.Workspace:
    return opml.connect(home or None)


@st.cache_data(show_spinner=False, max_entries=32)
def preview(home: str, name: str, version: int, sha256: str, rows: int) -> pd.DataFrame:
    """Return the first rows of a version; ``sha256`` keys the cache to the content."""
    del sha256
    return _open_workspace(home).datasets.preview(name, version, rows=rows)


def flash(message: str) -> None:
    """Keep a success message to show after the next rerun."""
    st.session_state[FLASH_KEY] = message


def show_flash() -> None:
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.success(message)


def escape_markdown(text: str) -> str:
    """Escape the characters Markdown would read as formatting, such as the underscores of run ids."""
    return re.sub(r"([\\`*_{}\[\]<>()#+!|~$])", r"\\\1", text)


def requested_in_url(parameter: str) -> str | None:
    """Return the URL's query ``parameter`` when it differs from the value the page last showed, else None.

    Pages call ``show_in_url`` after their selection box, so the URL names what is on screen and can be shared.
    """
    value = st.query_params.get(parameter)
    if value is None or value == st.session_state.get(f"url_{parameter}"):
        return None
    st.session_state[f"url_{parameter}"] = value
    return value


def select_from_url(
    parameter: str, key: str, options: list[str], noun: str, aliases: dict[str, str] | None = None
) -> None:
    """Select the option that the URL's query ``parameter`` names in the box keyed ``key``.

    ``aliases`` maps other accepted values to options, such as a model name to its latest version.
    """
    value = requested_in_url(parameter)
    if value is None:
        return
    value = (aliases or {}).get(value, value)
    if value in options:
        st.session_state[key] = value
    else:
        warn_of_missing_link(parameter, f"{noun} {value!r} from the link was not found; choose one of the {len(options)} below.")


def warn_of_missing_link(parameter: str, message: str) -> None:
    """Show ``message`` and leave the URL as it is for this run, so a reload shows the warning again."""
    st.warning(message)
    st.session_state[f"url_{parameter}_missing"] = True


def show_in_url(parameter: str, value: object) -> None:
    """Put the selected value in the URL's query ``parameter``, unless the URL named something missing in this run."""
    if st.session_state.pop(f"url_{parameter}_missing", False):
        return
    st.query_params[parameter] = str(value)
    st.session_state[f"url_{parameter}"] = str(value)


def act(action, success: str) -> None:
    """Run one operation; flash ``success`` and rerun, or show its error in place.

    A result with ``state`` Failed, such as a deployment whose service did not start, counts as an error.
    """
    try:
        with st.spinner("Working…"):
            result = action()
    except opml.OpmlError as error:
        st.error(error.message)
        return
    if getattr(result, "state", None) == "Failed":
        st.error(f"{result.name} failed: {result.error}")
        return
    flash(success)
    st.rerun()


def format_bytes(size: int) -> str:
    """Format a byte count with a decimal unit: 980 B, 12.3 kB, 3.9 MB, 1.2 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def name_from_file(filename: str) -> str:
    """Derive a dataset name from an uploaded file's name: ``Bank Data (2).csv`` gives ``Bank-Data-2``."""
    stem = filename.split(".")[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:100]


def _statistic(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def profile_table(version: DatasetVersion) -> pd.DataFrame:
    """Build the profile table: per column the type, missing and distinct counts, statistics or top values."""
    return pd.DataFrame(
        [
            {
                "column": column.name,
                "type": column.dtype,
                "kind": column.kind,
                "missing": column.missing,
                "distinct": column.distinct,
                "min": _statistic(column.min),
                "max": _statistic(column.max),
                "mean": _statistic(column.mean),
                "std": _statistic(column.std),
                "most frequent": ", ".join(f"{item.value} ({item.count:,})" for item in column.top_values[:3]),
            }
            for column in version.profile.column_profiles
        ]
    )


def distribution_chart(column: ColumnProfile, height: int = 180) -> alt.Chart:
    """Build a histogram for a numeric column, or a bar per frequent value for a categorical one."""
    if column.kind == "numeric":
        bins = pd.DataFrame([{"start": item.start, "end": item.end, "rows": item.count} for item in column.histogram])
        return (
            alt.Chart(bins, title=column.name, height=height)
            .mark_bar()
            .encode(
                x=alt.X("start:Q", bin="binned", title=column.name),
                x2="end:Q",
                y=alt.Y("rows:Q", title="rows"),
                tooltip=["start:Q", "end:Q", "rows:Q"],
            )
        )

    values = [{"value": item.value, "rows": item.count} for item in column.top_values]
    if column.other_count:
        values.append({"value": "(other values)", "rows": column.other_count})
    counts = pd.DataFrame(values)
    # Every category gets room for its label; Vega-Lite hides labels that overlap.
    return (
        alt.Chart(counts, title=column.name, height=max(height, 20 * len(values)))
        .mark_bar()
        .encode(
            x=alt.X("rows:Q", title="rows"),
            y=alt.Y("value:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False, labelLimit=120)),
            tooltip=["value:N", "rows:Q"],
        )
    )


def automl_progress(run: Run) -> None:
    """Show an active AutoML run's budget use, child runs and best metric so far as a progress bar."""
    progress = run.progress
    best = "" if progress.best_metric is None else f", best {run.primary_metric} {progress.best_metric:.4f}"
    st.progress(
        progress.fraction,
        text=f"AutoML run {run.id} {run.status}: {progress.elapsed_s:.0f} of {progress.budget_s:.0f} s, "
        f"{progress.child_runs} child runs{best}",
    )


def runs_table(runs: list[Run]) -> pd.DataFrame:
    """Build the runs table: one row per run with status, data, best metric and timing."""
    return pd.DataFrame(
        [
            {
                "run": run.id,
                "status": run.status,
                "dataset": run.dataset_ref,
                "label": run.settings["label_column_name"],
                "primary metric": run.primary_metric,
                "best": run.progress.best_metric,
                "child runs": run.progress.child_runs,
                "elapsed (s)": round(run.progress.elapsed_s),
                "created (UTC)": run.created_at.strftime("%Y-%m-%d %H:%M"),
            }
            for run in runs
        ]
    )


def leaderboard(children: list[ChildRun], primary_metric: str, metric_names: tuple[str, ...]) -> pd.DataFrame:
    """Build the child-run leaderboard, best primary metric first."""
    shown = [primary_metric] + [name for name in metric_names if name != primary_metric]
    rows = [
        {
            "child run": child.iteration,
            "algorithm": child.algorithm,
            **{name: child.metrics.get(name) for name in shown},
            "duration (s)": round(child.duration_s, 2),
            "model kept": child.has_model,
        }
        for child in children
    ]
    return pd.DataFrame(rows).sort_values(primary_metric, ascending=False)


def evaluation_charts(chart_data: dict, importance: list[dict] | None) -> None:
    """Show the evaluation charts two to a row, then the feature importance when known."""
    figures = [build(chart_data) for build in charts.ALL_CHARTS]
    for start in range(0, len(figures), 2):
        for cell, figure in zip(st.columns(2), figures[start : start + 2]):
            cell.plotly_chart(figure, width="stretch")
    if importance:
        st.plotly_chart(charts.feature_importance(importance), width="stretch")
    else:
        st.caption("Feature importance is computed for child runs that kept their model.")


def schema_table(schema: dict) -> pd.DataFrame:
    """Build the input schema table: per feature its type, range or allowed categories."""
    return pd.DataFrame(
        [
            {
                "feature": feature["name"],
                "type": feature["dtype"],
                "min": feature.get("min"),
                "max": feature.get("max"),
                "categories": ", ".join(feature.get("categories") or []),
                "nullable": feature.get("nullable", False),
            }
            for feature in schema["features"]
        ]
    )


def mask(secret: str) -> str:
    """Show the first four characters of a key and hide the rest."""
    return secret[:4] + "•" * 12


def benchmark_table(results: list) -> pd.DataFrame:
    """Build the benchmark history: one row per stored result."""
    return pd.DataFrame(
        [
            {
                "id": result.id,
                "tool": result.tool,
                "target": result.deployment or result.scoring_uri,
                "model version": result.model_version,
                "insights": {None: "", True: "on", False: "off"}[result.insights_enabled],
                "concurrency": result.settings["concurrency"],
                "requests/s": round(result.summary["requests_per_second"], 1),
                "mean (ms)": round(result.summary["time_per_request_ms"], 2),
                "failed": result.summary["failed_requests"],
                "created (UTC)": result.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            }
            for result in results
        ]
    )


def benchmark_comparison(results: list) -> pd.DataFrame:
    """Build a side-by-side table of Apache Bench's figures, one column per result."""
    rows = {}
    for result in results:
        summary = result.summary
        column = {
            "tool": result.tool,
            "target": result.deployment or result.scoring_uri,
            "model version": "" if result.model_version is None else str(result.model_version),
            "insights": {None: "", True: "on", False: "off"}[result.insights_enabled],
            "concurrency": str(result.settings["concurrency"]),
            "complete requests": f"{summary['complete_requests']:,}",
            "failed requests": f"{summary['failed_requests']:,}",
            "failures by cause": json.dumps(summary["failures"]),
            "requests per second": f"{summary['requests_per_second']:.2f}",
            "time per request (ms, mean)": f"{summary['time_per_request_ms']:.3f}",
            "time per request (ms, mean across concurrent)": f"{summary['time_per_request_all_ms']:.3f}",
            "transfer rate (KB/s)": f"{summary['transfer_rate_kb_s']:.2f}",
        }
        for name, value in summary.get("latency_ms", {}).items():
            column[f"latency {name} (ms)"] = f"{value:.2f}"
        for percent, value in summary.get("percentiles_ms", {}).items():
            column[f"{percent}% within (ms)"] = f"{value:.1f}"
        rows[result.id] = column
    return pd.DataFrame(rows).reset_index(names="figure")


def step_links(step: PipelineStep) -> list[tuple[str, str, dict[str, str]]]:
    """Return ``(label, page, query parameters)`` for each object that a pipeline step produced or used."""
    outputs = step.outputs
    if step.name == "dataset":
        kinds = {"dataset": "Dataset", "train_dataset": "Training split", "test_dataset": "Test split"}
        return [
            (f"{kind} {outputs[key]}", "pages/datasets.py", {"dataset": outputs[key]})
            for key, kind in kinds.items()
            if outputs.get(key)
        ]
    if step.name == "automl" and "automl_run" in outputs:
        return [(f"AutoML run {outputs['automl_run']}", "pages/automl_runs.py", {"run": outputs["automl_run"]})]
    if step.name == "register" and "model" in outputs:
        return [(f"Model {outputs['model']}", "pages/models.py", {"model": outputs["model"]})]
    if step.name == "deploy" and outputs.get("action") in ("created", "updated", "unchanged"):
        return [(f"Deployment {outputs['deployment']}", "pages/deployments.py", {"deployment": outputs["deployment"]})]
    return []
