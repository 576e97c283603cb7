"""Datasets: register from a URL, an upload or the bundled sample; browse versions and profiles."""

import pandas as pd
import streamlit as st

from opml import OpmlError, ui
from opml.datasets import SAMPLE_NAME, SAMPLE_URL

PREVIEW_ROWS = 50
CHARTS_PER_ROW = 3

workspace = ui.page("Datasets")
service = workspace.datasets
datasets = service.list()


def register(action, *args, **kwargs) -> None:
    """Run one registration call, then select the result or show the error in place."""
    try:
        registration = action(*args, **kwargs)
    except OpmlError as error:
        st.error(error.message)
        return
    version = registration.version
    if registration.created:
        ui.flash(f"Registered {version.ref}: {version.rows:,} rows, {version.columns} columns.")
    else:
        ui.flash(f"The content equals {version.ref}, so no new version was created.")
    st.session_state["dataset_name"] = version.name
    st.session_state["dataset_version"] = version.version
    st.rerun()


with st.expander("Register a dataset", expanded=not datasets):
    url_tab, upload_tab, sample_tab = st.tabs(["From a URL", "Upload a file", "Bundled sample"])

    with url_tab:
        with st.form("register_url"):
            url_name = st.text_input("Name", key="url_name", help="An existing name gets a new version.")
            url = st.text_input("URL of a CSV or Parquet file", key="url", placeholder=SAMPLE_URL)
            url_description = st.text_input("Description", key="url_description")
            url_submitted = st.form_submit_button("Register from URL")
        if url_submitted:
            bar = st.progress(0.0, text="Downloading…")

            def show_progress(received: int, total: int | None) -> None:
                fraction = min(received / total, 1.0) if total else 0.0
                bar.progress(fraction, text=f"Downloaded {received / 1e6:.1f} MB")

            register(service.register_from_url, url_name, url, description=url_description, progress=show_progress)

    with upload_tab:
        upload = st.file_uploader("CSV or Parquet file", type=["csv", "txt", "tsv", "gz", "parquet"], key="upload")
        upload_name = st.text_input(
            "Name", key="upload_name", help="An existing name gets a new version; empty takes the file name."
        )
        upload_description = st.text_input("Description", key="upload_description")
        if st.button("Register upload", key="register_upload", disabled=upload is None):
            register(
                service.register_from_bytes,
                upload_name.strip() or ui.name_from_file(upload.name),
                upload.getvalue(),
                filename=upload.name,
                description=upload_description,
            )

    with sample_tab:
        st.markdown(
            "The Bank Marketing training data of the Azure ML AutoML samples: 32,950 calls of a "
            "Portuguese bank's marketing campaigns, 20 features and the label `y` (did the client "
            "subscribe a term deposit). UCI Machine Learning Repository, Moro, Cortez and Rita (2014), "
            "licensed CC BY 4.0."
        )
        if st.button(f"Register the sample as {SAMPLE_NAME}", key="register_sample", type="primary"):
            register(service.register_sample)

if not datasets:
    st.info("No datasets yet. Register one above; the bundled sample takes one click.")
    st.stop()

st.subheader("Registered datasets")
st.dataframe(
    pd.DataFrame(
        [
            {
                "name": item.name,
                "latest version": item.latest.version,
                "versions": ", ".join(map(str, item.versions)),
                "rows": item.latest.rows,
                "columns": item.latest.columns,
                "registered (UTC)": item.latest.created_at.strftime("%Y-%m-%d %H:%M"),
                "description": item.description,
            }
            for item in datasets
        ]
    ),
    hide_index=True,
    key="datasets_table",
    column_config={
        "rows": st.column_config.NumberColumn(format="localized"),
        "latest version": st.column_config.NumberColumn(format="plain"),
    },
)

names = [item.name for item in datasets]
requested = ui.requested_in_url("dataset")
if requested is not None:
    requested_name, _, requested_version = requested.partition(":")
    known = {item.name: item.versions for item in datasets}
    if requested_name not in known:
        ui.warn_of_missing_link("dataset", f"Dataset {requested!r} from the link was not found; choose one of the {len(names)} below.")
    else:
        st.session_state["dataset_name"] = requested_name
        st.session_state["dataset_version"] = int(requested_version) if requested_version.isdigit() else None
        if requested_version and st.session_state["dataset_version"] not in known[requested_name]:
            ui.warn_of_missing_link("dataset", f"Dataset version {requested!r} from the link was not found; showing the latest version.")
previous = st.session_state.get("dataset_name")
if previous not in names:
    if previous is not None:
        st.info(f"Dataset {previous!r} is no longer registered; showing {names[0]!r}.")
        st.session_state.pop("delete_confirmation", None)
    st.session_state["dataset_name"] = names[0]
name_column, version_column = st.columns([3, 1])
name = name_column.selectbox(
    "Dataset", names, key="dataset_name", on_change=lambda: st.session_state.pop("dataset_version", None)
)
versions = next(item.versions for item in datasets if item.name == name)
if st.session_state.get("dataset_version") not in versions:
    st.session_state["dataset_version"] = versions[-1]
version_number = version_column.selectbox("Version", list(reversed(versions)), key="dataset_version")
version = service.get(name, version_number)
ui.show_in_url("dataset", version.ref)

rows, columns, size, registered = st.columns(4)
rows.metric("Rows", f"{version.rows:,}")
columns.metric("Columns", version.columns)
size.metric("Source size", ui.format_bytes(version.size_bytes))
registered.metric("Registered", version.created_at.strftime("%Y-%m-%d"), help=f"{version.created_at:%H:%M:%S} UTC")
st.markdown(version.description or "_No description._")
source_format = version.source_format.upper() + (f", delimiter `{version.delimiter}`" if version.delimiter else "")
st.caption(f"Origin: {version.origin} · format {source_format} · sha256 `{version.sha256}`")

profile_tab, preview_tab, delete_tab = st.tabs(["Profile", "Preview", "Delete"])

with profile_tab:
    st.dataframe(ui.profile_table(version), hide_index=True, key="profile_table")
    st.markdown("**Distributions**")
    profiles = version.profile.column_profiles
    for start in range(0, len(profiles), CHARTS_PER_ROW):
        for cell, column in zip(st.columns(CHARTS_PER_ROW), profiles[start : start + CHARTS_PER_ROW]):
            cell.altair_chart(ui.distribution_chart(column), width="stretch")

with preview_tab:
    st.caption(f"The first {PREVIEW_ROWS} rows of {version.ref}.")
    st.dataframe(
        ui.preview(str(workspace.home), version.name, version.version, version.sha256, PREVIEW_ROWS),
        key="preview_table",
    )

with delete_tab:
    st.warning(f"Deleting {version.ref} removes its files and cannot be undone. Other versions stay.")
    confirmation = st.text_input(f"Type {version.ref} to confirm", key="delete_confirmation")
    if st.button(f"Delete {version.ref}", key="delete_version", type="primary", disabled=confirmation != version.ref):
        try:
            service.delete_version(version.name, version.version)
        except OpmlError as error:
            st.error(error.message)
        else:
            ui.flash(f"Deleted {version.ref}.")
            st.session_state.pop("dataset_version", None)
            st.session_state.pop("delete_confirmation", None)
            st.rerun()
