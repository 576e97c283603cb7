"""Benchmark: load-test a deployment or any scoring URI and see where the time goes."""

import json

import streamlit as st

from opml import OpmlError, charts, ui
from opml.benchmark import BenchmarkJob, ab_command_line, find_job

workspace = ui.page("Benchmark")

service = workspace.benchmarks
deployments = workspace.deployments.list()

with st.expander("Run a load test", expanded=True):
    target_kind = st.radio("Target", ["A deployment", "Any scoring URI"], horizontal=True, key="bench_target")
    deployment = uri = key = None
    payload = None
    if target_kind == "A deployment":
        if not deployments:
            st.info("Nothing is deployed yet; deploy a model first, or choose Any scoring URI.")
        else:
            deployment = st.selectbox("Deployment", [item.name for item in deployments], key="bench_deployment")
            payload_kind = st.radio(
                "Payload", ["The model's example row", "Rows from a dataset", "A JSON file"], horizontal=True, key="bench_payload"
            )
            if payload_kind == "Rows from a dataset":
                datasets = workspace.datasets.list()
                if datasets:
                    dataset = st.selectbox("Dataset", [item.name for item in datasets], key="bench_dataset")
                    rows = st.number_input("Rows per request", min_value=1, max_value=1000, value=2, key="bench_rows")
                    label = workspace.deployments.scoring_target(deployment).schema["label"]
                    payload = service.payload_from_dataset(dataset, None, int(rows), drop=label)
            elif payload_kind == "A JSON file":
                upload = st.file_uploader("Request body (JSON)", type=["json"], key="bench_payload_file")
                if upload is not None:
                    try:
                        json.loads(upload.getvalue())
                        payload = upload.getvalue()
                    except (UnicodeDecodeError, json.JSONDecodeError) as error:
                        st.error(f"{upload.name} is not JSON: {error}. Give a request body such as {{\"data\": [...]}}.")
    else:
        uri = st.text_input("Scoring URI", key="bench_uri", placeholder="http://127.0.0.1:8000/score") or None
        key = st.text_input("Key (empty for none)", type="password", key="bench_key") or None
        body = st.text_area("Request body (JSON)", key="bench_body", placeholder='{"data": [{...}]}')
        if body:
            try:
                json.loads(body)
                payload = body.encode()
            except json.JSONDecodeError as error:
                st.error(f"The request body is not valid JSON: {error}.")

    mode_column, count_column, concurrency_column = st.columns(3)
    mode = mode_column.radio("Stop after", ["a number of requests", "a duration"], key="bench_mode")
    if mode == "a number of requests":
        request_count = count_column.number_input("Requests", min_value=1, value=200, key="bench_requests")
        duration = None
    else:
        duration = count_column.number_input("Duration (seconds)", min_value=1.0, value=10.0, key="bench_duration")
        request_count = None
    concurrency = concurrency_column.number_input("Concurrency", min_value=1, value=4, key="bench_concurrency")
    keep_alive_column, timeout_column, warmup_column = st.columns(3)
    keep_alive = keep_alive_column.checkbox("Keep-alive", value=True, key="bench_keep_alive")
    timeout = timeout_column.number_input("Timeout (seconds)", min_value=0.1, value=30.0, key="bench_timeout")
    warmup = warmup_column.number_input("Warm-up requests (not counted)", min_value=0, value=10, key="bench_warmup")
    with_ab = st.checkbox("Also run Apache Bench (ab) with the same settings", key="bench_with_ab")

    settings = None
    if deployment or uri:
        try:
            settings, context = service.settings_for(
                deployment=deployment,
                scoring_uri=uri,
                key=key,
                payload=payload,
                requests=None if request_count is None else int(request_count),
                duration_s=duration,
                concurrency=int(concurrency),
                keep_alive=keep_alive,
                timeout_s=float(timeout),
                warmup=int(warmup),
            )
        except OpmlError as error:
            st.error(error.message)
    if settings is not None:
        st.markdown("Equivalent ab command line")
        st.code(ab_command_line(settings), language="bash")
        job = find_job(st.session_state.get("bench_job"))
        if st.button("Run", type="primary", key="bench_run", disabled=job is not None and job.running):
            st.session_state["bench_job"] = BenchmarkJob(service, settings, context, with_ab).start().id
            st.rerun()


active_job = find_job(st.session_state.get("bench_job"))


@st.fragment(run_every="1s" if active_job is not None and active_job.running else None)
def job_status() -> None:
    job = find_job(st.session_state.get("bench_job"))
    if job is None:
        return
    if job.running:
        progress = job.progress
        fraction = progress.done / progress.total if progress.total else min(progress.elapsed_s / max(duration or 1, 1), 1.0)
        st.progress(
            min(fraction, 1.0),
            text=f"{job.phase}: {progress.done:,} requests, {progress.failed:,} failed, {progress.elapsed_s:.1f} s",
        )
        if st.button("Cancel", key="bench_cancel"):
            job.cancel()
        return
    if job.error:
        st.error(job.error)
    elif job.results:
        st.success("Finished: " + ", ".join(f"{result.id} ({result.tool})" for result in job.results))
    st.session_state.pop("bench_job", None)
    st.session_state["bench_selected"] = [result.id for result in job.results]
    st.rerun(scope="app")


job_status()

history = service.list()
if not history:
    st.info("No benchmark results yet.")
    st.stop()

st.subheader("History")
st.dataframe(ui.benchmark_table(history), hide_index=True)

labels = {result.id: result.label for result in history}
default = [item for item in st.session_state.get("bench_selected", []) if item in labels] or [history[0].id]
chosen_ids = st.multiselect(
    "Results to show and compare", list(labels), default=default, format_func=labels.get, key="bench_chosen", max_selections=4
)
chosen = [service.get(benchmark_id) for benchmark_id in chosen_ids]
if chosen:
    st.subheader("Results")
    st.dataframe(ui.benchmark_comparison(chosen), hide_index=True)
    for result in chosen:
        st.caption(f"{result.id}: {result.command}")
    histogram_column, cdf_column = st.columns(2)
    histogram_column.plotly_chart(charts.latency_histogram(chosen), width="stretch")
    cdf_column.plotly_chart(charts.latency_cdf(chosen), width="stretch")
    latency_column, throughput_column = st.columns(2)
    latency_column.plotly_chart(charts.latency_over_time(chosen), width="stretch")
    throughput_column.plotly_chart(charts.throughput_over_time(chosen), width="stretch")
