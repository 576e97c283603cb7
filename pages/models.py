"""Models: the registry's versions with metrics, schema, lineage and charts."""

import pandas as pd
import streamlit as st

from opml import OpmlError, ui
from opml.deployments import default_deployment_name

workspace = ui.page("Models")

models = workspace.models.list()
if not models:
    st.info("No models yet. Complete an AutoML run and register its best model on the AutoML runs page.")
    st.stop()

st.dataframe(
    pd.DataFrame(
        [
            {
                "model": model.ref,
                "algorithm": model.algorithm,
                "primary metric": model.primary_metric,
                "value": model.metrics[model.primary_metric],
                "dataset": f"{model.dataset_name}:{model.dataset_version}",
                "run": model.run_id,
                "registered (UTC)": model.created_at.strftime("%Y-%m-%d %H:%M"),
            }
            for model in models
        ]
    ),
    hide_index=True,
)

refs = [model.ref for model in reversed(models)]
latest_refs = {model.name: model.ref for model in models}  # models come ordered by version, so the latest one wins
ui.select_from_url("model", "selected_model", refs, "Model", aliases=latest_refs)
if st.session_state.get("selected_model") not in refs:
    st.session_state["selected_model"] = refs[0]
ref = st.selectbox("Model", refs, key="selected_model")
ui.show_in_url("model", ref)
model = next(item for item in models if item.ref == ref)

st.subheader(model.ref)
st.metric(model.primary_metric, f"{model.metrics[model.primary_metric]:.4f}")
st.markdown(
    f"**{model.algorithm}**, trained on dataset `{model.dataset_name}:{model.dataset_version}` "
    f"by run `{model.run_id}` (child run {model.child_iteration})"
)
dataset_link, run_link = st.columns(2)
dataset_ref = f"{model.dataset_name}:{model.dataset_version}"
dataset_link.page_link("pages/datasets.py", label=f"Dataset {dataset_ref}", query_params={"dataset": dataset_ref})
run_link.page_link("pages/automl_runs.py", label=f"AutoML run {model.run_id}", query_params={"run": model.run_id})
if model.description:
    st.markdown(model.description)
st.caption(f"sha256 `{model.sha256}` · registered {model.created_at:%Y-%m-%d %H:%M:%S} UTC")

metrics_tab, schema_tab, charts_tab, deploy_tab, manage_tab = st.tabs(
    ["Metrics", "Schema", "Charts", "Deploy", "Download and delete"]
)

with metrics_tab:
    st.dataframe(
        pd.DataFrame([{"metric": name, "value": value} for name, value in model.metrics.items()]), hide_index=True
    )

with schema_tab:
    st.dataframe(ui.schema_table(model.schema), hide_index=True)
    st.markdown("**Example row** (from the training data)")
    st.json(model.schema["example"])

with charts_tab:
    ui.evaluation_charts(model.charts, model.feature_importance)

with deploy_tab:
    with st.form("deploy_model"):
        deployment_name = st.text_input("Deployment name", value=default_deployment_name(model.name), key="model_deployment_name")
        deploy = st.form_submit_button(f"Deploy {model.ref}", type="primary")
    if deploy:
        try:
            with st.spinner("Starting the scoring service…"):
                deployment = workspace.deployments.deploy(model.name, deployment_name, model_version=model.version)
        except OpmlError as error:
            st.error(error.message)
        else:
            if deployment.state == "Healthy":
                st.success(f"Deployed {model.ref} as {deployment.name}: {deployment.scoring_uri}")
                st.page_link("pages/deployments.py", label="Open Deployments", icon=":material/cloud_upload:")
            else:
                st.error(f"{deployment.name} is {deployment.state}: {deployment.error}")

with manage_tab:
    path = workspace.models.file_path(model.name, model.version)
    st.download_button(
        "Download model file (joblib)",
        data=path.read_bytes(),
        file_name=f"{model.name}-{model.version}.joblib",
        key="download_model",
    )
    st.warning(f"Deleting {model.ref} removes its file and cannot be undone.")
    confirmation = st.text_input(f"Type {model.ref} to confirm", key="delete_model_confirmation")
    if st.button(f"Delete {model.ref}", key="delete_model", disabled=confirmation != model.ref):
        try:
            workspace.models.delete(model.name, model.version)
        except OpmlError as error:
            st.error(error.message)
        else:
            ui.flash(f"Deleted {model.ref}.")
            st.session_state.pop("selected_model", None)
            st.session_state.pop("delete_model_confirmation", None)
            st.rerun()
