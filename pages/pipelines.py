"""Pipelines: define the training as steps, publish it to a REST endpoint, run it, monitor it, schedule it."""

import json

import pandas as pd
import streamlit as st

from opml import OpmlError, ui
from opml.automl.settings import PRIMARY_METRICS, AutoMLSettings
from opml.deployments import default_deployment_name
from opml.pipelines.definition import DEPLOY_CONDITIONS, PipelineDefinition
from opml.pipelines.snippets import TOKEN_VARIABLE, curl_snippet, python_snippet

workspace = ui.page("Pipelines")
service = workspace.pipelines


def submit(start) -> None:
    """Start a run with ``start()``; select it on the Runs tab, or show the error in place."""
    try:
        run = start()
    except OpmlError as error:
        st.error(error.message)
        return
    st.session_state["selected_pipeline_run"] = run.id
    st.session_state["submitted_pipeline_run"] = run.id
    st.rerun()


# The API server serves the published endpoints and fires schedules. The dashboard starts it on
# demand, unless someone stopped it on purpose.
server = workspace.api.status()
needed = service.list_published() or service.list_schedules()
if server.state != "Running" and needed and not workspace.api.stopped_on_request():
    try:
        with st.spinner("Starting the API server…"):
            server = workspace.api.ensure_running()
    except OpmlError as error:
        st.error(error.message)
server_column, button_column = st.columns([4, 1])
if server.state == "Running":
    server_column.caption(f"API server running at {server.base_uri} (pid {server.pid}); it serves published endpoints and fires schedules.")
    if button_column.button("Stop API server"):
        ui.act(workspace.api.stop, "Stopped the API server; endpoints and schedules are paused until it starts again.")
else:
    server_column.caption(f"API server {server.state}. {server.error or ''}")
    if button_column.button("Start API server"):
        ui.act(workspace.api.ensure_running, "Started the API server.")

# Keyed, so a rerun that adds a message above the tabs keeps the selected tab.
pipelines_tab, runs_tab, schedules_tab, tokens_tab = st.tabs(
    ["Pipelines", "Runs", "Schedules", "Tokens"], key="pipelines_page_tab", on_change="rerun"
)


def definition_form(datasets) -> None:
    """Show the create-or-edit form, with defaults from a pipeline to edit or from an AutoML run's settings."""
    sources = {"New pipeline": None}
    for item in service.list():
        sources[f"Edit {item.name} (newest version {item.version})"] = ("edit", item.name)
    for run in workspace.runs.list():
        if run.status == "Completed":
            label = (
                f"Settings of AutoML run {run.id} ({run.dataset_ref}, {run.primary_metric}, "
                f"{run.created_at:%Y-%m-%d %H:%M})"
            )
            sources[label] = ("run", run.id)
    source = sources[st.selectbox("Start from", list(sources), key="pipeline_source")]

    name_default, description_default = service.suggest_name("Bankmarketing Train"), ""
    base: PipelineDefinition | None = None
    if source is not None and source[0] == "edit":
        pipeline = service.get(source[1])
        base = PipelineDefinition.from_dict(pipeline.definition)
        name_default, description_default = pipeline.name, pipeline.description
    elif source is not None:
        base = service.definition_from_run(source[1])
        name_default = service.suggest_name(f"{base.dataset_name} training")

    names = [item.name for item in datasets]
    dataset_default = base.dataset_name if base and base.dataset_name in names else names[0]
    with st.form("pipeline_definition"):
        name_column, experiment_column = st.columns(2)
        name = name_column.text_input("Pipeline name", value=name_default)
        experiment = experiment_column.text_input(
            "Experiment", value=base.experiment if base else f"{dataset_default}-pipeline"
        )
        description = st.text_input("Description", value=description_default)
        st.markdown("**1. Dataset**")
        dataset_column, version_column, split_column = st.columns(3)
        dataset_name = dataset_column.selectbox("Dataset", names, index=names.index(dataset_default))
        version_text = version_column.text_input(
            "Version (latest or a number)", value=str(base.dataset_version) if base and base.dataset_version else "latest"
        )
        test_fraction = split_column.number_input(
            "Test fraction (0 for none)", min_value=0.0, max_value=0.5, step=0.05, value=base.test_fraction if base else 0.2
        )
        st.markdown("**2. AutoML**")
        settings = base.automl if base else AutoMLSettings(label_column_name="y", experiment_timeout_seconds=60)
        label_column, metric_column, budget_column, folds_column = st.columns(4)
        label = label_column.text_input("Label column", value=settings.label_column_name)
        metric = metric_column.selectbox("Primary metric", PRIMARY_METRICS, index=PRIMARY_METRICS.index(settings.primary_metric))
        budget = budget_column.number_input(
            "Time budget (s)", min_value=1, value=max(1, round(settings.experiment_timeout_seconds)), step=5
        )
        folds = folds_column.number_input("Folds", min_value=2, max_value=20, value=settings.n_cross_validations or 5)
        st.markdown("**3. Evaluate** on the test split, or on a named dataset when the test fraction is 0")
        evaluate_dataset = st.text_input("Evaluate dataset (NAME[:VERSION], optional)", value=base.evaluate_dataset or "" if base else "")
        st.markdown("**4. Register**")
        model_name = st.text_input("Model name", value=base.model_name if base else f"{dataset_default}-model")
        st.markdown("**5. Deploy** (optional)")
        deployment_column, condition_column, threshold_column = st.columns(3)
        deployment_name = deployment_column.text_input(
            "Deployment (empty to skip)", value=(base.deployment_name or "") if base else default_deployment_name(dataset_default)
        )
        condition = condition_column.selectbox(
            "Deploy when", DEPLOY_CONDITIONS, index=DEPLOY_CONDITIONS.index(base.deploy_condition if base else "better"),
            help="always; threshold: the primary metric reaches the threshold; better: it beats the model deployed now.",
        )
        threshold = threshold_column.number_input(
            "Threshold", min_value=0.0, max_value=1.0, step=0.01,
            value=base.deploy_threshold if base and base.deploy_threshold is not None else 0.9,
        )
        allow_reuse = st.checkbox("Reuse the output of unchanged steps", value=base.allow_reuse if base else True)
        st.caption("Saving under the name of an existing pipeline adds a version to it; an unchanged definition keeps its version.")
        submitted = st.form_submit_button("Save pipeline", type="primary")

    if submitted:
        try:
            version = None if version_text.strip() in ("", "latest") else int(version_text)
        except ValueError:
            st.error(f"Invalid dataset version {version_text!r}: give latest or a whole number such as 1.")
            return
        try:
            definition = PipelineDefinition(
                dataset_name=dataset_name,
                dataset_version=version,
                test_fraction=float(test_fraction),
                automl=AutoMLSettings(**{
                    **settings.to_dict(),
                    "blocked_models": tuple(settings.blocked_models),
                    "label_column_name": label,
                    "primary_metric": metric,
                    "experiment_timeout_seconds": float(budget),
                    "n_cross_validations": int(folds),
                    "validation_size": None,
                }),
                evaluate_dataset=evaluate_dataset.strip() or None,
                model_name=model_name.strip(),
                deployment_name=deployment_name.strip() or None,
                deploy_condition=condition,
                deploy_threshold=float(threshold) if condition == "threshold" else None,
                experiment=experiment.strip(),
                allow_reuse=allow_reuse,
            )
            pipeline = service.create(name.strip(), definition, description)
        except OpmlError as error:
            st.error(error.message)
            return
        ui.flash(f"Saved pipeline {pipeline.ref}.")
        st.session_state.pop(f"pipeline_version_{pipeline.name}", None)
        st.session_state["selected_pipeline"] = pipeline.name
        st.rerun()


with pipelines_tab:
    datasets = workspace.datasets.list()
    with st.expander("Create or edit a pipeline", expanded=not service.list()):
        if not datasets:
            st.info("Register a dataset first, on the Datasets page.")
        else:
            definition_form(datasets)
    with st.expander("Load a pipeline from YAML"):
        with st.form("pipeline_yaml"):
            yaml_name = st.text_input("Save as pipeline", key="yaml_name")
            upload = st.file_uploader("Definition (YAML)", type=["yaml", "yml"])
            loaded = st.form_submit_button("Save pipeline from YAML")
        if loaded:
            if upload is None:
                st.error("Choose a YAML file to load.")
            else:
                try:
                    definition, description = PipelineDefinition.from_yaml_with_description(
                        upload.getvalue().decode(errors="replace"), upload.name
                    )
                    pipeline = service.create(yaml_name.strip(), definition, description)
                except OpmlError as error:
                    st.error(error.message)
                else:
                    ui.flash(f"Saved pipeline {pipeline.ref} from {upload.name}.")
                    st.session_state["selected_pipeline"] = pipeline.name
                    st.session_state.pop(f"pipeline_version_{pipeline.name}", None)
                    st.rerun()

    pipelines = service.list()
    if not pipelines:
        st.info("No pipelines yet. Create one above.")
    else:
        names = [item.name for item in pipelines]
        if st.session_state.get("selected_pipeline") not in names:
            st.session_state["selected_pipeline"] = names[0]
        name_column, version_column = st.columns([3, 1])
        selected = name_column.selectbox("Pipeline", names, key="selected_pipeline")
        versions = [item.version for item in service.versions(selected)]
        version = version_column.selectbox("Version", list(reversed(versions)), key=f"pipeline_version_{selected}")
        pipeline = service.get(selected, version)
        definition = PipelineDefinition.from_dict(pipeline.definition)
        if pipeline.description:
            st.caption(pipeline.description)
        steps = pd.DataFrame(
            [
                {"Step": "1. dataset", "Parameters": f"{definition.dataset_label}, test fraction {definition.test_fraction:g}"},
                {"Step": "2. automl", "Parameters": f"label {definition.automl.label_column_name}, {definition.automl.primary_metric}, "
                 f"{definition.automl.experiment_timeout_seconds:g} s, {definition.automl.n_cross_validations or '-'} folds"},
                {"Step": "3. evaluate", "Parameters": definition.evaluate_dataset or ("test split" if definition.test_fraction else "validation metrics")},
                {"Step": "4. register", "Parameters": definition.model_name},
                {"Step": "5. deploy", "Parameters": "skipped" if not definition.deployment_name else
                 f"{definition.deployment_name} when {definition.deploy_condition}"
                 + (f" {definition.deploy_threshold:g}" if definition.deploy_condition == "threshold" else "")},
            ]
        )
        st.dataframe(steps, hide_index=True)
        submitted_run = st.session_state.get("submitted_pipeline_run")
        if submitted_run:
            current = service.get_run(submitted_run)
            st.success(f"Submitted pipeline run {current.id} of {current.pipeline_ref}: {current.status}. Follow its steps on the Runs tab.")
            if not current.is_active:
                # Shown once more with its final status, then cleared.
                del st.session_state["submitted_pipeline_run"]
        submit_column, publish_column, download_column = st.columns(3)
        if submit_column.button("Submit run", type="primary"):
            submit(lambda: service.submit(pipeline.name, pipeline.version, trigger="dashboard"))
        if publish_column.button("Publish"):
            def publish() -> None:
                workspace.api.ensure_running()
                service.publish(pipeline.name, pipeline.version)

            ui.act(publish, f"Published {pipeline.ref}.")
        download_column.download_button(
            "Download YAML", definition.to_yaml(pipeline.description), file_name=f"{pipeline.name.replace(' ', '_')}-{pipeline.version}.yaml"
        )

    published_items = service.list_published()
    st.subheader("Published pipelines")
    if not published_items:
        st.info("Nothing is published yet. Publish a pipeline to give it a REST endpoint.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {"Id": item.id, "Name": item.name, "Version": item.pipeline_version, "Status": item.status,
                     "Default": "yes" if item.is_default else "", "Endpoint": item.endpoint,
                     "Published": item.created_at.strftime("%Y-%m-%d %H:%M")}
                    for item in published_items
                ]
            ),
            hide_index=True,
        )
        by_id = {item.id: item for item in published_items}
        chosen = by_id[
            st.selectbox(
                "Published pipeline",
                list(by_id),
                # The label leaves out the status: a label that changes makes Streamlit treat the box as new.
                format_func=lambda key: f"{by_id[key].name}:{by_id[key].pipeline_version} ({key[:8]})",
                key="selected_published",
            )
        ]
        st.caption(f"Status: {chosen.status}")
        experiment = service.definition(chosen.name, chosen.pipeline_version).experiment
        if chosen.status != "Active":
            st.warning(
                f"{chosen.name}:{chosen.pipeline_version} ({chosen.id[:8]}) is Disabled: its endpoint returns 404. "
                "Enable it to run it."
            )
        elif chosen.endpoint:
            st.markdown(f"REST endpoint: `{chosen.endpoint}`")
            default = next((item for item in published_items if item.name == chosen.name and item.is_default), None)
            if default is None:
                st.caption(
                    f"`{workspace.api.name_endpoint(chosen.name)}` runs the newest Active publication of "
                    f"{chosen.name}, so clients keep working when a new version is published."
                )
            else:
                st.caption(
                    f"`{workspace.api.name_endpoint(chosen.name)}` runs the default publication of {chosen.name}, "
                    f"{default.name}:{default.pipeline_version} ({default.id[:8]}), until another one is made the default."
                )
            st.caption(f"Create a token on the Tokens tab and put it in the environment variable {TOKEN_VARIABLE}.")
            st.code(python_snippet(chosen.endpoint, experiment), language="python")
            st.code(curl_snippet(chosen.endpoint, experiment), language="bash")
        toggle_column, default_column, run_column = st.columns(3)
        if chosen.status == "Active":
            if toggle_column.button("Disable"):
                by_name = (
                    f" As the default of {chosen.name}, it also makes the by-name endpoint return 404."
                    if chosen.is_default else ""
                )
                ui.act(lambda: service.disable(chosen.id), f"Disabled {chosen.id}; its endpoint returns 404.{by_name}")
        elif toggle_column.button("Enable"):
            ui.act(lambda: service.enable(chosen.id), f"Enabled {chosen.id}.")
        if chosen.is_default:
            if default_column.button("Follow the newest version", help="The by-name endpoint runs the newest Active publication."):
                ui.act(lambda: service.clear_default(chosen.name), f"The endpoint of {chosen.name} follows its newest Active publication.")
        elif default_column.button(
            "Make default", disabled=chosen.status != "Active",
            help="The by-name endpoint runs this publication, also after newer versions are published."
            + ("" if chosen.status == "Active" else " Enable it first."),
        ):
            ui.act(lambda: service.set_default(chosen.id), f"The endpoint of {chosen.name} runs {chosen.id}.")
        if run_column.button("Submit run of the published pipeline", disabled=chosen.status != "Active"):
            submit(lambda: service.submit_published(chosen.id, trigger="dashboard"))


STATUS_COLORS = {
    "NotStarted": "#e0e0e0", "Running": "#90caf9", "Completed": "#a5d6a7", "Reused": "#c5e1a5",
    "Failed": "#ef9a9a", "Skipped": "#f5f5f5", "Canceled": "#ffe082",
}


def step_graph(run) -> str:
    """Return the run's steps as a Graphviz chain, each node colored by its status."""
    nodes = []
    for step in run.steps:
        duration = "" if step.duration_s is None else f"\\n{step.duration_s:.1f} s"
        nodes.append(
            f'"{step.name}" [label="{step.position + 1}. {step.name}\\n{step.status}{duration}", '
            f'style=filled, fillcolor="{STATUS_COLORS.get(step.status, "#ffffff")}", shape=box]'
        )
    edges = " -> ".join(f'"{step.name}"' for step in run.steps)
    return "digraph { rankdir=LR; " + "; ".join(nodes) + f"; {edges} }}"


def run_monitor(run) -> None:
    """Show one run: its step graph with live status, the steps' outputs, cancel and the logs."""
    st.subheader(f"Run {run.id}: {run.status}")
    if run.error:
        st.error(run.error)
    st.graphviz_chart(step_graph(run))

    st.dataframe(
        pd.DataFrame(
            [
                {"Step": step.name, "Status": step.status,
                 "Duration (s)": "" if step.duration_s is None else f"{step.duration_s:.1f}",
                 "Reused from": step.reused_from or ""}
                for step in run.steps
            ]
        ),
        hide_index=True,
    )
    # A list rather than table cells, so long summaries and errors wrap instead of being cut.
    st.markdown("\n".join(
        f"{step.position + 1}. **{step.name}**: {ui.escape_markdown(step.summary or step.status)}"
        + (f" · error: {ui.escape_markdown(step.error)}" if step.error else "")
        for step in run.steps
    ))
    automl_step = next(step for step in run.steps if step.name == "automl")
    if automl_step.status == "Running" and "automl_run" in automl_step.outputs:
        ui.automl_progress(workspace.runs.get(automl_step.outputs["automl_run"]))

    links = [link for step in run.steps for link in ui.step_links(step)]
    if links:
        st.markdown("**Open what the run produced**")
        for label, target, query in links:
            st.page_link(target, label=label, query_params=query, icon=":material/arrow_forward:")
    with st.expander("Step outputs as JSON"):
        st.json({step.name: step.outputs for step in run.steps}, expanded=1)

    if run.parameters:
        st.caption(f"Parameter assignments: {json.dumps(run.parameters)}")
    if run.is_active and st.button("Cancel run"):
        ui.act(lambda: service.cancel(run.id), f"Cancel requested for {run.id}.")
    log_step = st.selectbox("Log", ["run", "dataset", "automl", "evaluate", "register", "deploy"], key="pipeline_log_step")
    st.code(service.logs(run.id, None if log_step == "run" else log_step, tail=200) or "(empty)", language="log", wrap_lines=True)


with runs_tab:
    runs = service.list_runs()
    if not runs:
        st.info("No pipeline runs yet. Submit one on the Pipelines tab.")
    else:
        @st.fragment(run_every="2s" if any(run.is_active for run in runs) else None)
        def runs_view() -> None:
            current = service.list_runs()

            st.dataframe(
                pd.DataFrame(
                    [
                        {"Run": run.id, "Pipeline": run.pipeline_ref, "Status": run.status, "Trigger": run.trigger,
                         "Experiment": run.experiment, "Started": run.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                         "Duration (s)": "" if run.duration_s is None else f"{run.duration_s:.1f}",
                         "Error": run.error or ""}
                        for run in current
                    ]
                ),
                hide_index=True,
            )

            run_ids = [run.id for run in current]
            if st.session_state.get("selected_pipeline_run") not in run_ids:
                st.session_state["selected_pipeline_run"] = run_ids[0]
            run_id = st.selectbox("Run", run_ids, key="selected_pipeline_run")

            run_monitor(service.get_run(run_id))

            if not any(item.is_active for item in current) and any(item.is_active for item in runs):
                st.rerun()

        runs_view()


with schedules_tab:
    active_items = [item for item in service.list_published() if item.status == "Active"]
    with st.expander("Create a schedule", expanded=not service.list_schedules()):
        if not active_items:
            st.info("Publish a pipeline first, or enable a published one; schedules trigger Active published pipelines.")
        else:
            kind = st.radio("Recurrence", ["Interval", "Cron expression (UTC)"], horizontal=True, key="schedule_kind")
            with st.form("create_schedule"):
                labels = {f"{item.name}:{item.pipeline_version} ({item.id[:8]}, Active)": item.id for item in active_items}
                target = st.selectbox("Published pipeline", list(labels))
                schedule_name = st.text_input("Schedule name", value="nightly")
                if kind == "Interval":
                    every, cron = st.text_input("Interval with a unit (30m, 6h, 1d)", value="1d"), None
                else:
                    every, cron = None, st.text_input("Cron expression: minute hour day month weekday", value="0 3 * * *")
                assignments = st.text_input(
                    "Parameter assignments (JSON object, optional)", value="{}",
                    help='Overrides for every run, such as {"experiment_timeout_seconds": 300}.',
                )
                created = st.form_submit_button("Create schedule")
            if created:
                def create() -> None:
                    try:
                        parameters = json.loads(assignments or "{}")
                    except json.JSONDecodeError as error:
                        raise OpmlError(f"Invalid parameter assignments {assignments!r}: {error.msg}; give a JSON object.") from error
                    service.create_schedule(schedule_name.strip(), labels[target], every=every, cron=cron, parameters=parameters)
                    workspace.api.ensure_running()

                ui.act(create, f"Created schedule {schedule_name}.")

    schedules = service.list_schedules()
    if not schedules:
        st.info("No schedules.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {"Schedule": item.name, "Status": item.status, "Recurrence": item.recurrence,
                     "Next run (UTC)": item.next_run_at.strftime("%Y-%m-%d %H:%M:%S") if item.next_run_at else "",
                     "Last run": item.last_run_id or "", "Note": item.last_error or ""}
                    for item in schedules
                ]
            ),
            hide_index=True,
        )
        names = [item.name for item in schedules]
        # Keyed by the options, so the box starts afresh when they change, in the browser as on the server.
        chosen_schedule = st.selectbox("Schedule", names, key=f"selected_schedule_{'|'.join(names)}")
        pause_column, resume_column, delete_column = st.columns(3)
        if pause_column.button("Pause"):
            ui.act(lambda: service.pause_schedule(chosen_schedule), f"Paused {chosen_schedule}.")
        if resume_column.button("Resume"):
            ui.act(lambda: service.resume_schedule(chosen_schedule), f"Resumed {chosen_schedule}.")
        if delete_column.button("Delete schedule"):
            ui.act(lambda: service.delete_schedule(chosen_schedule), f"Deleted {chosen_schedule}.")


with tokens_tab:
    secret = st.session_state.pop("new_token_secret", None)
    if secret:
        st.success("Copy this token now; it is not shown again.")
        st.code(secret, language=None)
    with st.form("create_token"):
        token_name = st.text_input("Token name", value="notebook")
        if st.form_submit_button("Create token"):
            try:
                _, st.session_state["new_token_secret"] = service.create_token(token_name.strip())
            except OpmlError as error:
                st.error(error.message)
            else:
                st.rerun()
    tokens = service.list_tokens()
    if tokens:
        st.dataframe(
            pd.DataFrame(
                [
                    {"Id": item.id, "Name": item.name, "Created": item.created_at.strftime("%Y-%m-%d %H:%M"),
                     "Status": "active" if item.active else "revoked",
                     "Last used": item.last_used_at.strftime("%Y-%m-%d %H:%M") if item.last_used_at else "never"}
                    for item in tokens
                ]
            ),
            hide_index=True,
        )
        active = {f"{item.name} ({item.id})": item.id for item in tokens if item.active}
        if active:
            revoke_label = st.selectbox("Token", list(active), key=f"revoke_token_{'|'.join(active.values())}")
            if st.button("Revoke token"):
                ui.act(lambda: service.revoke_token(active[revoke_label]), f"Revoked token {revoke_label}.")
