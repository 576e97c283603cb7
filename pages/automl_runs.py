"""AutoML runs: start a run, watch it, read its leaderboard and charts, register the best model."""

import streamlit as st

from opml import OpmlError, ui
from opml.deployments import default_deployment_name
from opml.automl.settings import ALGORITHMS, PRIMARY_METRICS, AutoMLSettings

LEADERBOARD_METRICS = ("AUC_weighted", "accuracy", "f1_score_weighted", "average_precision_score_weighted", "log_loss")

workspace = ui.page("AutoML runs")

datasets = workspace.datasets.list()

with st.expander("Start a run", expanded=not workspace.runs.list(limit=1)):
    if not datasets:
        st.info("Register a dataset first, on the Datasets page.")
    else:
        names = [item.name for item in datasets]
        dataset_column, version_column = st.columns([3, 1])
        dataset_name = dataset_column.selectbox("Dataset", names, key="run_dataset")
        versions = next(item.versions for item in datasets if item.name == dataset_name)
        dataset_version = version_column.selectbox("Version", list(reversed(versions)), key="run_dataset_version")
        columns = [column.name for column in workspace.datasets.get(dataset_name, dataset_version).profile.column_profiles]

        with st.form("start_run"):
            label_column, metric_column, budget_column = st.columns(3)
            label = label_column.selectbox(
                "Label column", columns, index=columns.index("y") if "y" in columns else len(columns) - 1, key="run_label"
            )
            metric = metric_column.selectbox("Primary metric", PRIMARY_METRICS, key="run_metric")
            budget = budget_column.number_input("Time budget (seconds)", min_value=5, value=60, step=5, key="run_budget")
            validation = st.radio(
                "Validation", ["Cross-validation", "Validation fraction"], horizontal=True, key="run_validation"
            )
            folds_column, fraction_column = st.columns(2)
            folds = folds_column.number_input("Folds", min_value=2, max_value=20, value=5, key="run_folds")
            fraction = fraction_column.number_input(
                "Validation fraction", min_value=0.05, max_value=0.5, value=0.2, step=0.05, key="run_fraction"
            )
            with st.expander("More settings"):
                blocked = st.multiselect("Blocked models", list(ALGORITHMS), key="run_blocked")
                iterations = st.number_input("Max child runs (0 for no limit)", min_value=0, value=0, key="run_iterations")
                early_stopping = st.checkbox("Early stopping", value=True, key="run_early_stopping")
                ensemble = st.checkbox("Try a VotingEnsemble", value=True, key="run_ensemble")
                seed = st.number_input("Random seed", min_value=0, value=0, key="run_seed")
            submitted = st.form_submit_button("Start run", type="primary")

        if submitted:
            settings = AutoMLSettings(
                label_column_name=label,
                primary_metric=metric,
                experiment_timeout_seconds=float(budget),
                iterations=int(iterations) or None,
                n_cross_validations=int(folds) if validation == "Cross-validation" else None,
                validation_size=float(fraction) if validation == "Validation fraction" else None,
                enable_early_stopping=early_stopping,
                blocked_models=tuple(blocked),
                enable_voting_ensemble=ensemble,
                random_seed=int(seed),
            )
            try:
                run = workspace.runs.submit_automl_run(dataset_name, settings, version=dataset_version)
            except OpmlError as error:
                st.error(error.message)
            else:
                ui.flash(f"Started run {run.id} on {run.dataset_ref}.")
                st.session_state["selected_run"] = run.id
                st.rerun()

runs = workspace.runs.list()
if not runs:
    st.info("No runs yet. Start one above.")
    st.stop()


@st.fragment(run_every="2s" if any(run.is_active for run in runs) else None)
def runs_table() -> None:
    current = workspace.runs.list()
    st.subheader("Runs")
    for run in current:
        if run.is_active:
            ui.automl_progress(run)
    st.dataframe(ui.runs_table(current), hide_index=True)
    if not any(run.is_active for run in current) and any(run.is_active for run in runs):
        st.rerun()


runs_table()

run_ids = [run.id for run in runs]
ui.select_from_url("run", "selected_run", run_ids, "AutoML run")
if st.session_state.get("selected_run") not in run_ids:
    st.session_state["selected_run"] = run_ids[0]
run_id = st.selectbox("Run", run_ids, key="selected_run")
ui.show_in_url("run", run_id)
run = workspace.runs.get(run_id)

@st.fragment(run_every="2s" if run.is_active else None)
def run_view() -> None:
    """Show the run's status, progress and leaderboard; while it runs, this part refreshes itself."""
    current = workspace.runs.get(run_id)
    st.subheader(f"Run {current.id}")
    status, best_metric, children = st.columns(3)
    status.metric("Status", current.status)
    best_metric.metric(
        f"Best {current.primary_metric}",
        "—" if current.progress.best_metric is None else f"{current.progress.best_metric:.4f}",
    )
    children.metric("Child runs", current.progress.child_runs)
    st.caption(
        f"Dataset {current.dataset_ref} · label {current.settings['label_column_name']} · "
        f"budget {current.progress.budget_s:g} s · elapsed {current.progress.elapsed_s:.0f} s"
    )
    if current.is_active:
        st.progress(current.progress.fraction, text=f"{current.status}: {current.progress.elapsed_s:.0f} of {current.progress.budget_s:.0f} s")
    if current.error:
        st.error(current.error)
    if current.is_active and st.button("Cancel run", key="cancel_run"):
        try:
            workspace.runs.cancel(current.id)
        except OpmlError as error:
            st.error(error.message)
        else:
            ui.flash(f"Cancel requested for {current.id}.")
            st.rerun(scope="app")

    child_runs = workspace.runs.children(current.id)
    if child_runs:
        st.markdown("**Leaderboard** (metrics on held-out data; sort by clicking a column)")
        st.dataframe(ui.leaderboard(child_runs, current.primary_metric, LEADERBOARD_METRICS), hide_index=True)
    if run.is_active and not current.is_active:
        st.rerun(scope="app")


run_view()
run = workspace.runs.get(run_id)
child_runs = workspace.runs.children(run.id)

if run.status == "Completed":
    with st.form("register_model"):
        st.markdown(f"Best model: child run {run.best_iteration} ({run.result.get('best_algorithm')})")
        model_name = st.text_input("Model name", value=f"{run.dataset_name}-model", key="model_name")
        description = st.text_input("Description", key="model_description")
        register = st.form_submit_button("Register best model", type="primary")
    if register:
        try:
            model = workspace.models.register(run.id, model_name, description=description)
        except OpmlError as error:
            st.error(error.message)
        else:
            ui.flash(f"Registered model {model.ref} ({model.algorithm}).")
            st.rerun()

    with st.form("register_and_deploy"):
        st.markdown("Register the best model and deploy it as a scoring service")
        deploy_model_name = st.text_input("Model name", value=f"{run.dataset_name}-model", key="deploy_model_name")
        deployment_name = st.text_input("Deployment name", value=default_deployment_name(run.dataset_name), key="run_deployment_name")
        deploy = st.form_submit_button("Register and deploy")
    if deploy:
        try:
            with st.spinner("Registering and starting the scoring service…"):
                model = workspace.models.register(run.id, deploy_model_name)
                deployment = workspace.deployments.deploy(model.name, deployment_name, model_version=model.version)
        except OpmlError as error:
            st.error(error.message)
        else:
            if deployment.state == "Healthy":
                ui.flash(f"Deployed {model.ref} as {deployment.name}: {deployment.scoring_uri}")
                st.rerun()
            st.error(f"{deployment.name} is {deployment.state}: {deployment.error}")

if child_runs:
    by_iteration = {child.iteration: child for child in child_runs}
    default = run.best_iteration if run.best_iteration is not None else max(
        child_runs, key=lambda child: child.metrics[run.primary_metric]
    ).iteration
    chosen = st.selectbox(
        "Charts of child run",
        list(by_iteration),
        index=list(by_iteration).index(default),
        format_func=lambda iteration: f"{iteration}: {by_iteration[iteration].algorithm}"
        f" ({by_iteration[iteration].metrics[run.primary_metric]:.4f})",
        key=f"chart_child_{run.id}",
    )
    child = by_iteration[chosen]
    ui.evaluation_charts(child.charts, child.feature_importance)
    with st.expander("Hyperparameters"):
        st.json(child.hyperparameters)

with st.expander("Log"):
    st.code(workspace.runs.logs(run.id, tail=200) or "(empty)", language="text")
