"""Scoring playground: score rows from a form or a table through the real endpoint, take the code away."""

import json

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from opml import OpmlError, charts, scoring, ui

workspace = ui.page("Scoring playground")

deployments = workspace.deployments.list()
source = st.radio("Endpoint", ["A deployment", "Any scoring URI"], horizontal=True, key="playground_source")
if source == "A deployment":
    if not deployments:
        st.info("Nothing is deployed yet; deploy a model on the Deployments page, or choose Any scoring URI.")
        st.stop()
    name = st.selectbox("Deployment", [item.name for item in deployments], key="playground_deployment")
    target = workspace.deployments.scoring_target(name)
    deployment = next(item for item in deployments if item.name == name)
    if deployment.state != "Healthy":
        st.warning(f"{name} is {deployment.state}; requests will fail until it is started.")
else:
    uri = st.text_input("Scoring URI", placeholder="http://127.0.0.1:8000/score", key="playground_uri")
    key = st.text_input("Key (empty for none)", type="password", key="playground_key")
    if not uri:
        st.stop()
    target = scoring.ScoringTarget(scoring_uri=uri.strip(), key=key.strip() or None)

rows_key = f"rows_{target.scoring_uri}"
st.session_state.setdefault(rows_key, [])
schema = target.schema

st.subheader("Request")
if schema is not None:
    if st.button("Random row from the training data", key="random_row"):
        for column, value in workspace.deployments.training_row(name).items():
            st.session_state[f"field_{column}"] = value

    with st.form("row_form"):
        columns = st.columns(3)
        current = {}
        for index, feature in enumerate(schema["features"]):
            cell = columns[index % 3]
            field_key = f"field_{feature['name']}"
            default = schema["example"][feature["name"]]
            if feature.get("categories") is not None:
                options = feature["categories"]
                st.session_state.setdefault(field_key, str(default) if str(default) in options else options[0])
                current[feature["name"]] = cell.selectbox(feature["name"], options, key=field_key)
            else:
                st.session_state.setdefault(field_key, float(default))
                value = cell.number_input(
                    feature["name"], key=field_key, help=f"seen in training: {feature['min']:g} to {feature['max']:g}", format="%g"
                )
                current[feature["name"]] = int(value) if feature["dtype"] == "integer" and float(value).is_integer() else value
        add = st.form_submit_button("Add row to the request")
    if add:
        st.session_state[rows_key].append(current)

    example = scoring.classic_example()
    if scoring.fits_schema(example, schema) and st.button("Use the classic two-row example", key="classic_example"):
        st.session_state[rows_key] = list(example["data"])

    rows = st.session_state[rows_key] or [current]
    st.caption(f"The request holds {len(rows)} row(s)" + ("" if st.session_state[rows_key] else ": the form's row"))
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    if st.session_state[rows_key] and st.button("Clear rows", key="clear_rows"):
        st.session_state[rows_key] = []
        st.rerun()
    method = st.radio("Method", ["predict_proba", "predict"], horizontal=True, key="playground_method")
    body = scoring.request_body(rows, method)
else:
    editor_key = f"body_{target.scoring_uri}"
    if st.button("Load the example from swagger.json", key="load_swagger"):
        try:
            st.session_state[editor_key] = json.dumps(scoring.swagger_example(target), indent=2)
        except OpmlError as error:
            st.error(error.message)
    text = st.text_area("Request body (JSON)", key=editor_key, height=240, placeholder='{"data": [{...}]}')
    try:
        body = json.loads(text) if text else None
    except json.JSONDecodeError as error:
        st.error(f"The request body is not valid JSON: {error}.")
        body = None
    method = "predict"
    if body is None:
        st.stop()

if st.button("Send", type="primary", key="send"):
    try:
        st.session_state["last_result"] = scoring.send(target, body)
    except OpmlError as error:
        st.session_state.pop("last_result", None)
        st.error(error.message)

result = st.session_state.get("last_result")
if result is not None and result.request_body == body:
    if result.status != 200:
        st.error(scoring.error_message(result))
    else:
        latency, count = st.columns(2)
        latency.metric("Latency", f"{result.latency_ms:.1f} ms")
        count.metric("Rows scored", len(result.results))
        classes = [str(value) for value in (schema or {}).get("classes", [])]
        if method == "predict_proba" and result.results and isinstance(result.results[0], list):
            names = classes or [str(index) for index in range(len(result.results[0]))]
            st.markdown("**Predicted class:** " + ", ".join(names[max(range(len(p)), key=p.__getitem__)] for p in result.results))
            figure = go.Figure(
                [go.Bar(name=f"row {index}", x=names, y=probabilities) for index, probabilities in enumerate(result.results)]
            )
            figure.update_layout(barmode="group", title="Class probabilities", yaxis_range=[0, 1], height=320)
            st.plotly_chart(figure, width="stretch")
        else:
            st.markdown("**Predicted class:** " + ", ".join(map(str, result.results)))
    request_column, response_column = st.columns(2)
    with request_column.expander("Raw request"):
        st.json(result.request_body)
    with response_column.expander("Raw response"):
        st.json(result.response_body)

st.subheader("Code")
python_tab, curl_tab, ab_tab = st.tabs(["Python (endpoint.py)", "curl", "ab"])
python_tab.code(scoring.python_snippet(target, body), language="python")
curl_tab.code(scoring.curl_snippet(target, body), language="bash")
ab_tab.code(scoring.ab_snippet(target), language="bash")
ab_tab.caption("Run the Python script first: it writes data.json, which ab posts.")

if schema is not None:
    st.subheader("Batch scoring")
    batch_source = st.radio("Rows", ["A registered dataset", "Upload a CSV"], horizontal=True, key="batch_source")
    frame = None
    if batch_source == "A registered dataset":
        datasets = workspace.datasets.list()
        if datasets:
            dataset_name = st.selectbox("Dataset", [item.name for item in datasets], key="batch_dataset")
            versions = next(item.versions for item in datasets if item.name == dataset_name)
            dataset_version = st.selectbox("Version", list(reversed(versions)), key="batch_version")
            frame = workspace.datasets.load(dataset_name, dataset_version)
    else:
        upload = st.file_uploader("CSV file", type=["csv"], key="batch_upload")
        if upload is not None:
            try:
                frame = pd.read_csv(upload, sep=None, engine="python")
            except (ValueError, UnicodeDecodeError) as error:
                st.error(f"{upload.name} could not be read as CSV: {error}")
    if frame is not None:
        limit = st.number_input("Rows to score (from the top)", min_value=1, max_value=len(frame), value=min(len(frame), 1000), key="batch_rows")
        label = schema["label"] if schema["label"] in frame.columns else None
        if st.button("Score the rows", key="score_batch"):
            bar = st.progress(0.0, text="Scoring…")
            try:
                st.session_state["batch_result"] = scoring.score_batch(
                    target,
                    frame.head(int(limit)),
                    label=label,
                    progress=lambda done, total: bar.progress(done / total, text=f"Scored {done:,} of {total:,} rows"),
                )
            except OpmlError as error:
                st.error(error.message)
        batch = st.session_state.get("batch_result")
        if batch is not None:
            if batch.metrics:
                accuracy, auc, counted = st.columns(3)
                accuracy.metric("accuracy", f"{batch.metrics['accuracy']:.4f}")
                auc.metric("AUC_weighted", f"{batch.metrics['AUC_weighted']:.4f}")
                counted.metric("Rows with a label", f"{batch.metrics['rows']:,}")
                st.plotly_chart(
                    charts.confusion_matrix({"classes": batch.classes, "confusion_matrix": batch.confusion_matrix}),
                    width="stretch",
                )
            st.dataframe(batch.scored, hide_index=True)
            st.download_button(
                "Download the scored rows (CSV)",
                data=batch.scored.to_csv(index=False).encode(),
                file_name="scored.csv",
                key="download_scored",
            )
