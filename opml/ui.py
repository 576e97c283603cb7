"""Streamlit helpers shared by the dashboard pages: the cached workspace and charts.

Pages call these to stay a plain description of the screen; nothing here
decides anything a service would.
"""

from __future__ import annotations

import os

import altair as alt
import pandas as pd
import streamlit as st

import opml
from opml.profiling import ColumnProfile
from opml.records import DatasetVersion

FLASH_KEY = "flash_message"


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
                "min": column.min,
                "max": column.max,
                "mean": column.mean,
                "std": column.std,
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
    # Every category gets room for its label; Vega-Lite drops labels that overlap.
    return (
        alt.Chart(counts, title=column.name, height=max(height, 16 * len(values)))
        .mark_bar()
        .encode(
            x=alt.X("rows:Q", title="rows"),
            y=alt.Y("value:N", sort="-x", title=None),
            tooltip=["value:N", "rows:Q"],
        )
    )
