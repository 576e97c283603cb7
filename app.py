"""The opml dashboard: the home page and the navigation to the other pages."""

import pandas as pd
import streamlit as st

from opml import OpmlError, ui

NOT_AVAILABLE = "—"


def home() -> None:
    st.title("opml")
    st.caption("From a raw dataset to a monitored, authenticated scoring endpoint, on this machine.")

    try:
        workspace = ui.workspace()
    except OpmlError as error:
        st.error(error.message)
        st.stop()

    summary = workspace.summary()
    st.subheader("Workspace")
    st.markdown(
        f"Location `{workspace.home}` · backend **{workspace.backend}** "
        f"(SQLite metadata and an artifact folder) · schema version {workspace.schema_version}"
    )

    datasets, runs, models, deployments, pipelines = st.columns(5)
    datasets.metric("Datasets", summary.datasets, help=f"{summary.dataset_versions} versions in all")
    runs.metric("Runs", NOT_AVAILABLE if summary.runs is None else summary.runs)
    models.metric("Models", NOT_AVAILABLE if summary.models is None else summary.models)
    deployments.metric("Deployments", NOT_AVAILABLE if summary.deployments is None else summary.deployments)
    pipelines.metric("Pipeline runs", summary.pipeline_runs)
    if summary.deployments is None:
        st.caption("Deployments are not available yet in this version of opml.")

    st.page_link("pages/datasets.py", label="Browse and register datasets", icon=":material/table:")
    st.page_link("pages/automl_runs.py", label="Start an AutoML run", icon=":material/model_training:")
    st.page_link("pages/pipelines.py", label="Run the training as a pipeline", icon=":material/account_tree:")

    st.subheader("Recent activity")
    activity = workspace.recent_activity(limit=15)
    if not activity:
        st.info("Nothing has happened in this workspace yet. Register a dataset to begin.")
        return
    st.dataframe(
        pd.DataFrame(
            [{"time (UTC)": item.at.strftime("%Y-%m-%d %H:%M:%S"), "kind": item.kind, "event": item.message} for item in activity]
        ),
        hide_index=True,
    )


st.set_page_config(page_title="opml", page_icon="🚀", layout="wide")
navigation = st.navigation(
    [
        st.Page(home, title="Home", icon=":material/home:", default=True),
        st.Page("pages/datasets.py", title="Datasets", icon=":material/table:"),
        st.Page("pages/automl_runs.py", title="AutoML runs", icon=":material/model_training:"),
        st.Page("pages/models.py", title="Models", icon=":material/deployed_code:"),
        st.Page("pages/deployments.py", title="Deployments", icon=":material/cloud_upload:"),
        st.Page("pages/playground.py", title="Scoring playground", icon=":material/science:"),
        st.Page("pages/benchmark.py", title="Benchmark", icon=":material/speed:"),
        st.Page("pages/pipelines.py", title="Pipelines", icon=":material/account_tree:"),
    ]
)
navigation.run()
