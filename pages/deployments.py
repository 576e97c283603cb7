"""Deployments: deploy a model as a scoring service, operate it, watch its requests."""

import pandas as pd
import streamlit as st

from opml import charts, insights, ui
from opml.deployments import default_deployment_name

workspace = ui.page("Deployments")

service = workspace.deployments
models = workspace.models.list()
deployments = service.list()


with st.expander("Deploy a model", expanded=not deployments):
    if not models:
        st.info("Register a model first, on the AutoML runs page.")
    else:
        with st.form("deploy"):
            refs = [model.ref for model in reversed(models)]
            model_ref = st.selectbox("Model", refs, key="deploy_model")
            name = st.text_input("Deployment name", value=default_deployment_name(model_ref.split(":")[0]), key="deploy_name")
            port = st.number_input("Port (0 for a free port)", min_value=0, max_value=65535, value=0, key="deploy_port")
            policy = st.radio(
                "Categories not seen in training",
                ["accept", "reject"],
                horizontal=True,
                key="deploy_policy",
                help="accept: score them like a missing category; reject: respond with 422 naming the value.",
            )
            no_auth = st.checkbox("Turn key authentication off (anyone who reaches the port can score)", key="deploy_no_auth")
            submitted = st.form_submit_button("Deploy", type="primary")
        if submitted:
            model_name, model_version = model_ref.rsplit(":", 1)
            ui.act(
                lambda: service.deploy(
                    model_name,
                    name,
                    model_version=int(model_version),
                    auth_enabled=not no_auth,
                    port=int(port) or None,
                    unknown_categories=policy,
                ),
                f"Deployed {model_ref} as {name}.",
            )

if not deployments:
    st.info("Nothing is deployed yet.")
    st.stop()

st.dataframe(
    pd.DataFrame(
        [
            {
                "name": item.name,
                "state": item.state,
                "model": item.model_ref,
                "auth": "key" if item.auth_enabled else "off",
                "insights": "on" if item.insights_enabled else "off",
                "scoring URI": item.scoring_uri,
            }
            for item in deployments
        ]
    ),
    hide_index=True,
)

names = [item.name for item in deployments]
ui.select_from_url("deployment", "selected_deployment", names, "Deployment")
if st.session_state.get("selected_deployment") not in names:
    st.session_state["selected_deployment"] = names[0]
selected = st.selectbox("Deployment", names, key="selected_deployment")
ui.show_in_url("deployment", selected)
deployment = next(item for item in deployments if item.name == selected)

st.subheader(deployment.name)
state, auth = st.columns(2)
state.metric("State", deployment.state)
auth.metric("Auth", "key" if deployment.auth_enabled else "off")
st.markdown(f"Serving model `{deployment.model_ref}`")
if deployment.error:
    st.error(deployment.error)

st.markdown("**Scoring URI**")
st.code(deployment.scoring_uri or "-", language="text")
st.markdown("**Swagger URI**")
st.code(deployment.swagger_uri or "-", language="text")
if deployment.base_uri:
    st.markdown(f"[Open Swagger UI]({deployment.base_uri}/swagger)")

overview, keys, operations, monitoring, logs = st.tabs(["Insights", "Keys", "Operations", "Requests", "Logs"])

with keys:
    if not deployment.auth_enabled:
        st.warning("Key authentication is off for this deployment.")
    reveal = st.toggle("Reveal keys", key=f"reveal_{deployment.name}")
    for which in ("primary", "secondary"):
        key = getattr(deployment, f"{which}_key")
        st.markdown(f"**{which.capitalize()} key**")
        st.code(key if reveal else ui.mask(key), language="text")
        if st.button(f"Regenerate {which} key", key=f"regenerate_{which}"):
            ui.act(lambda which=which: service.regenerate_key(deployment.name, which), f"Regenerated the {which} key.")

with overview:
    enabled = st.toggle("Insights (per-request telemetry)", value=deployment.insights_enabled, key=f"insights_{deployment.name}")
    samples = st.checkbox(
        "Record input and output samples", value=deployment.insights_samples, key=f"samples_{deployment.name}"
    )
    if enabled != deployment.insights_enabled or (enabled and samples != deployment.insights_samples):
        ui.act(
            lambda: service.set_insights(deployment.name, enabled, samples=samples),
            f"Insights {'on' if enabled else 'off'} for {deployment.name}.",
        )
    frame = insights.requests_frame(service.requests(deployment.name))
    if frame.empty:
        st.info("No requests recorded. Turn insights on and send requests to the scoring URI.")
    else:
        summary = insights.summarize(frame)
        rate_column, latency_column, error_column = st.columns(3)
        rate_column.plotly_chart(charts.request_rate(summary), width="stretch")
        latency_column.plotly_chart(charts.latency_percentiles(summary), width="stretch")
        error_column.plotly_chart(charts.error_rate(summary), width="stretch")

with monitoring:
    recent = insights.requests_frame(service.requests(deployment.name, limit=100))
    if recent.empty:
        st.info("No requests recorded.")
    else:
        st.dataframe(recent.sort_values("at", ascending=False), hide_index=True)

with operations:
    stop_column, start_column, restart_column = st.columns(3)
    if stop_column.button("Stop", key="stop", disabled=deployment.state == "Stopped"):
        ui.act(lambda: service.stop(deployment.name), f"Stopped {deployment.name}.")
    if start_column.button("Start", key="start", disabled=deployment.state in ("Healthy", "Transitioning")):
        ui.act(lambda: service.start(deployment.name), f"Started {deployment.name}.")
    if restart_column.button("Restart", key="restart"):
        ui.act(lambda: service.restart(deployment.name), f"Restarted {deployment.name}.")

    versions = [model.ref for model in reversed(models)]
    target = st.selectbox("Serve another model version", versions, key="update_model")
    if st.button("Update", key="update", disabled=target == deployment.model_ref):
        target_name, target_version = target.rsplit(":", 1)
        ui.act(
            lambda: service.update(deployment.name, model_version=int(target_version), model_name=target_name),
            f"{deployment.name} now serves {target}.",
        )

    st.warning(f"Deleting {deployment.name} stops its service and removes its keys and telemetry.")
    confirmation = st.text_input(f"Type {deployment.name} to confirm", key="delete_deployment_confirmation")
    if st.button(f"Delete {deployment.name}", key="delete_deployment", disabled=confirmation != deployment.name):
        st.session_state.pop("delete_deployment_confirmation", None)
        ui.act(lambda: service.delete(deployment.name), f"Deleted {deployment.name}.")

with logs:
    st.code(service.logs(deployment.name, tail=200) or "(empty)", language="text")
