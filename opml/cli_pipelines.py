"""The ``opml pipelines``, ``opml api`` and ``opml quickstart`` commands."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import click

import opml
from opml.cli_output import print_json as _print_json
from opml.cli_output import to_jsonable as _to_jsonable
from opml.errors import OpmlError
from opml.pipelines.definition import DEPLOY_CONDITIONS, PipelineDefinition
from opml.pipelines.snippets import TOKEN_VARIABLE, curl_snippet
from opml.records import PipelineRun


def parse_pipeline_ref(ref: str) -> tuple[str, int | None]:
    """Split ``name`` or ``name:version``; names may contain spaces."""
    name, separator, version_text = ref.rpartition(":")
    if not separator:
        return ref, None
    if not version_text.isdigit() or not 1 <= int(version_text) < 2**31:
        raise OpmlError(f"Invalid pipeline version {version_text!r} in {ref!r}: give a whole number from 1, as in {name}:1.")
    return name, int(version_text)


def parse_assignments(items: tuple[str, ...]) -> dict:
    """Read ``--param name=value`` options; a value that is valid JSON (a number, null, true) is read as JSON."""
    assignments = {}
    for item in items:
        name, separator, text = item.partition("=")
        if not separator or not name.strip():
            raise OpmlError(f"Invalid --param {item!r}: write name=value, as in experiment_timeout_seconds=60.")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        assignments[name.strip()] = value
    return assignments


@click.group()
def pipelines() -> None:
    """Create, publish, trigger and schedule training pipelines."""


@pipelines.command("create")
@click.argument("name")
@click.option("--from-yaml", "yaml_path", type=click.Path(dir_okay=False), help="Read the definition from a YAML file.")
@click.option("--dataset", "dataset_ref", metavar="NAME[:VERSION]", help="Training dataset (latest version unless given).")
@click.option("--label", help="Label column name.")
@click.option("--metric", default="AUC_weighted", show_default=True, help="Primary metric (Azure name).")
@click.option("--budget", default=120.0, show_default=True, type=float, help="AutoML time budget in seconds.")
@click.option("--iterations", type=int, help="Maximum number of child runs.")
@click.option("--cv", "folds", default=5, show_default=True, type=int, help="Cross-validation folds.")
@click.option("--test-fraction", type=float, help="Rows held out for the evaluate step: 0.2 unless --evaluate-dataset is given, 0 for none.")
@click.option("--evaluate-dataset", metavar="NAME[:VERSION]", help="Evaluate on this labelled dataset instead of a test split.")
@click.option("--model-name", help="Name to register the best model under.")
@click.option("--deployment", help="Deployment to create or update with the new model; omit to stop after registering.")
@click.option("--deploy-when", type=click.Choice(DEPLOY_CONDITIONS), default="better", show_default=True, help="When to deploy: always, when the metric reaches --threshold, or when it beats the deployed model.")
@click.option("--threshold", type=float, help="Primary metric needed to deploy with --deploy-when threshold.")
@click.option("--experiment", default="pipeline", show_default=True, help="Experiment the runs are grouped under.")
@click.option("--no-reuse", is_flag=True, help="Always execute every step, even when its inputs are unchanged.")
@click.option("--description", default="", help="What the pipeline is for.")
@click.pass_context
def pipelines_create(context: click.Context, name, yaml_path, dataset_ref, label, metric, budget, iterations, folds, test_fraction, evaluate_dataset, model_name, deployment, deploy_when, threshold, experiment, no_reuse, description) -> None:
    """Save a pipeline from options or a YAML file; an edited definition becomes a new version."""
    from opml.automl.settings import AutoMLSettings
    from opml.datasets import parse_dataset_ref

    workspace = opml.connect()
    if yaml_path:
        conflicting = [
            f"--{parameter.name.replace('_', '-')}"
            for parameter in context.command.params
            if parameter.name not in ("name", "yaml_path", "description")
            and context.get_parameter_source(parameter.name) == click.core.ParameterSource.COMMANDLINE
        ]
        if conflicting:
            raise OpmlError(
                f"{', '.join(conflicting)} cannot be combined with --from-yaml: edit the YAML file, or create without it."
            )
        pipeline = workspace.pipelines.create_from_yaml(name, yaml_path, description)
    else:
        missing = [option for option, value in (("--dataset", dataset_ref), ("--label", label), ("--model-name", model_name)) if not value]
        if missing:
            pronoun = "it" if len(missing) == 1 else "them"
            raise OpmlError(f"Missing {', '.join(missing)}: give {pronoun}, or a definition with --from-yaml FILE.")
        explicit_condition = context.get_parameter_source("deploy_when") == click.core.ParameterSource.COMMANDLINE
        if not deployment and (explicit_condition or threshold is not None):
            raise OpmlError(
                "--deploy-when and --threshold apply to the deploy step: give --deployment NAME too, or leave them out."
            )
        dataset_name, dataset_version = parse_dataset_ref(dataset_ref)
        if test_fraction is None:
            test_fraction = 0.0 if evaluate_dataset else 0.2
        definition = PipelineDefinition(
            dataset_name=dataset_name,
            dataset_version=dataset_version,
            test_fraction=test_fraction,
            evaluate_dataset=evaluate_dataset,
            automl=AutoMLSettings(
                label_column_name=label,
                primary_metric=metric,
                experiment_timeout_seconds=budget,
                iterations=iterations,
                n_cross_validations=folds,
            ),
            model_name=model_name,
            deployment_name=deployment,
            deploy_condition=deploy_when,
            deploy_threshold=threshold,
            experiment=experiment,
            allow_reuse=not no_reuse,
        )
        pipeline = workspace.pipelines.create(name, definition, description)
    click.echo(f"Saved pipeline {pipeline.ref}")


@pipelines.command("list")
@click.option("--published", is_flag=True, help="List published pipelines and their endpoints instead.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def pipelines_list(published: bool, as_json: bool) -> None:
    """List pipelines (latest version of each) or published pipelines."""
    workspace = opml.connect()
    if published:
        items = workspace.pipelines.list_published()
        if as_json:
            _print_json([_to_jsonable(item) for item in items])
            return
        if not items:
            click.echo("Nothing is published yet; publish a pipeline with: opml pipelines publish NAME")
            return
        click.echo(f"{'ID':<32}  {'STATUS':<8}  {'DEFAULT':<7}  {'PIPELINE':<30}  ENDPOINT")
        for item in items:
            reference = f"{item.name}:{item.pipeline_version}"
            default = "yes" if item.is_default else ""
            click.echo(f"{item.id}  {item.status:<8}  {default:<7}  {reference:<30}  {item.endpoint or '(API server not started)'}")
        return
    items = workspace.pipelines.list()
    if as_json:
        _print_json([_to_jsonable(item) for item in items])
        return
    if not items:
        click.echo("No pipelines yet; create one with: opml pipelines create NAME --dataset ... --label ... --model-name ...")
    if items:
        click.echo(f"{'PIPELINE':<40}  {'SAVED':<16}  DESCRIPTION")
    for item in items:
        click.echo(f"{item.ref:<40}  {item.created_at:%Y-%m-%d %H:%M}  {item.description}")


@pipelines.command("show")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("--yaml", "as_yaml", is_flag=True, help="Print the definition as YAML, ready for --from-yaml.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def pipelines_show(ref: str, as_yaml: bool, as_json: bool) -> None:
    """Show a pipeline version's definition and parameters."""
    name, version = parse_pipeline_ref(ref)
    workspace = opml.connect()
    pipeline = workspace.pipelines.get(name, version)
    definition = PipelineDefinition.from_dict(pipeline.definition)
    if as_yaml:
        click.echo(definition.to_yaml(pipeline.description), nl=False)
        return
    if as_json:
        _print_json({**_to_jsonable(pipeline), "parameters": definition.parameters()})
        return
    click.echo(f"{pipeline.ref}  saved {pipeline.created_at:%Y-%m-%d %H:%M}  {pipeline.description}")
    click.echo(definition.to_yaml(), nl=False)
    click.echo("Parameters a run can override (--param NAME=VALUE, or ParameterAssignments over REST):")
    for parameter, value in definition.parameters().items():
        click.echo(f"  {parameter} = {json.dumps(value)}")


@pipelines.command("export")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), required=True, help="YAML file to write.")
def pipelines_export(ref: str, output: str) -> None:
    """Write a pipeline version's definition to a YAML file."""
    name, version = parse_pipeline_ref(ref)
    text = opml.connect().pipelines.export_yaml(name, version)
    try:
        Path(output).write_text(text)
    except OSError as error:
        raise OpmlError(f"Could not write {output}: {error.strerror}; give a path in an existing, writable folder.") from error
    click.echo(f"Wrote {output}")


@pipelines.command("publish")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("--description", default="", help="Description of the published pipeline.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def pipelines_publish(ref: str, description: str, as_json: bool) -> None:
    """Publish a pipeline version to a REST endpoint; starts the API server when it is not running."""
    name, version = parse_pipeline_ref(ref)
    workspace = opml.connect()
    workspace.api.ensure_running()
    published = workspace.pipelines.publish(name, version, description)
    if as_json:
        _print_json(_to_jsonable(published))
        return
    click.echo(f"Published {published.name}:{published.pipeline_version} as {published.id}")
    click.echo(f"Endpoint: {published.endpoint}")
    click.echo(f"By name (the default publication, else the newest Active one): {workspace.api.name_endpoint(published.name)}")
    experiment = workspace.pipelines.definition(published.name, published.pipeline_version).experiment
    click.echo(f"Trigger it with a token from 'opml api token create NAME' in ${TOKEN_VARIABLE}:")
    click.echo(f"  {curl_snippet(published.endpoint, experiment)}")


@pipelines.command("disable")
@click.argument("published")
def pipelines_disable(published: str) -> None:
    """Disable a published pipeline (by id or name): its endpoint returns 404 until enabled."""
    service = opml.connect().pipelines
    item = service.disable(service.resolve_published_id(published))
    if item.is_default:
        click.echo(
            f"warning: {item.id} is the default publication of {item.name}, so its by-name endpoint returns 404 "
            f"until you enable it or run: opml pipelines clear-default {shlex.quote(item.name)}",
            err=True,
        )
    click.echo(f"{item.id} ({item.name}:{item.pipeline_version}) is {item.status}")


@pipelines.command("enable")
@click.argument("published")
def pipelines_enable(published: str) -> None:
    """Enable a disabled published pipeline (by id or name)."""
    service = opml.connect().pipelines
    item = service.enable(service.resolve_published_id(published))
    click.echo(f"{item.id} ({item.name}:{item.pipeline_version}) is {item.status}")


@pipelines.command("set-default")
@click.argument("published_id")
def pipelines_set_default(published_id: str) -> None:
    """Make the by-name endpoint run this Active publication, also after newer versions are published."""
    workspace = opml.connect()
    item = workspace.pipelines.set_default(workspace.pipelines.resolve_published_id(published_id))
    click.echo(f"{workspace.api.name_endpoint(item.name) or 'The by-name endpoint'} runs {item.id} ({item.name}:{item.pipeline_version})")


@pipelines.command("clear-default")
@click.argument("name")
def pipelines_clear_default(name: str) -> None:
    """Let the by-name endpoint of NAME run its newest Active publication again."""
    opml.connect().pipelines.clear_default(name)
    click.echo(f"The by-name endpoint of {name} runs its newest Active publication")


@pipelines.command("trigger")
@click.argument("ref", metavar="NAME[:VERSION]|PUBLISHED_ID")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Override a parameter, as in experiment_timeout_seconds=60; repeatable.")
@click.option("--experiment", help="Experiment to group the run under (default: the pipeline's).")
@click.option("--wait", is_flag=True, help="Follow the steps until the run ends; exit 1 unless it completes.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
def pipelines_trigger(ref: str, params: tuple[str, ...], experiment: str | None, wait: bool, as_json: bool) -> None:
    """Start a run of a pipeline version or of a published pipeline, and print its id."""
    workspace = opml.connect()
    assignments = parse_assignments(params)
    ref = workspace.pipelines.resolve_published_id(ref)
    if workspace.pipelines.is_published_id(ref):
        run = workspace.pipelines.submit_published(ref, parameters=assignments, experiment=experiment, trigger="cli")
    else:
        name, version = parse_pipeline_ref(ref)
        run = workspace.pipelines.submit(name, version, parameters=assignments, experiment=experiment, trigger="cli")
    if not wait:
        _print_json(_to_jsonable(run)) if as_json else click.echo(run.id)
        return
    click.echo(run.id, err=as_json)
    run = _follow(workspace, run.id)
    if as_json:
        _print_json(_to_jsonable(run))
    if run.status != "Completed":
        raise OpmlError(f"Pipeline run {run.id} {run.status.lower()}: {run.error or 'no reason recorded'}")


def _follow(workspace, run_id: str) -> PipelineRun:
    last_line = ""
    while True:
        run = workspace.pipelines.get_run(run_id)
        line = f"{run.status}: " + ", ".join(f"{step.name} {step.status}" for step in run.steps)
        if line != last_line:
            click.echo(line, err=True)
            last_line = line
        if not run.is_active:
            return run
        time.sleep(1)


@pipelines.group("runs", invoke_without_command=True)
@click.option("--pipeline", help="Only runs of this pipeline.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Newest runs to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def pipelines_runs(context: click.Context, pipeline: str | None, limit: int, as_json: bool) -> None:
    """List pipeline runs, newest first; subcommands show, cancel and read logs of one run."""
    if context.invoked_subcommand is not None:
        return
    items = opml.connect().pipelines.list_runs(limit=limit, pipeline=pipeline)
    if as_json:
        _print_json([_to_jsonable(item) for item in items])
        return
    if not items:
        click.echo("No pipeline runs yet; start one with: opml pipelines trigger NAME")
    if items:
        click.echo(f"{'RUN':<24}  {'STATUS':<9}  {'PIPELINE':<30}  {'STARTED':<19}  {'DURATION':<8}  TRIGGER")
    for run in items:
        duration = "-" if run.duration_s is None else f"{run.duration_s:.0f} s"
        click.echo(
            f"{run.id:<24}  {run.status:<9}  {run.pipeline_ref:<30}  {run.created_at:%Y-%m-%d %H:%M:%S}  {duration:<8}  {run.trigger}"
        )
    if len(items) == limit:
        click.echo(f"(showing the newest {limit}; --limit N lists more)", err=True)


@pipelines_runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def pipelines_runs_show(run_id: str, as_json: bool) -> None:
    """Show a run's steps with their status, duration and a summary of their outputs. --json prints all outputs."""
    run = opml.connect().pipelines.get_run(run_id)
    if as_json:
        _print_json(_to_jsonable(run))
        return
    click.echo(f"{run.id}  {run.status}  {run.pipeline_ref}  experiment {run.experiment}  trigger {run.trigger}")
    if run.parameters:
        click.echo(f"parameters: {json.dumps(run.parameters)}")
    if run.error:
        click.echo(f"error: {run.error}")
    for step in run.steps:
        duration = "" if step.duration_s is None else f" {step.duration_s:.1f} s"
        reused = f" (from {step.reused_from})" if step.reused_from else ""
        click.echo(f"  {step.position + 1}. {step.name:<9} {step.status}{reused}{duration}")
        if step.summary:
            click.echo(f"     {step.summary}")
        if step.error:
            click.echo(f"     error: {step.error}")


@pipelines_runs.command("cancel")
@click.argument("run_id")
def pipelines_runs_cancel(run_id: str) -> None:
    """Cancel a Queued or Running pipeline run and its AutoML run."""
    run = opml.connect().pipelines.cancel(run_id)
    click.echo(
        f"Cancel requested for {run.id} ({run.status}); follow it with: opml pipelines runs show {run.id}. "
        "A deploy step that has started to change its deployment still completes."
    )


@pipelines_runs.command("logs")
@click.argument("run_id")
@click.option("--step", help="One step's log: dataset, automl, evaluate, register or deploy.")
@click.option("--tail", type=int, help="Only the last N lines.")
def pipelines_runs_logs(run_id: str, step: str | None, tail: int | None) -> None:
    """Print a run's log, or one step's."""
    click.echo(opml.connect().pipelines.logs(run_id, step, tail))


@pipelines.group("schedule")
def schedule() -> None:
    """Trigger a published pipeline on an interval or a cron expression; the API server fires them."""


@schedule.command("create")
@click.argument("name")
@click.option("--pipeline", "published", required=True, help="Published pipeline id, or a pipeline name for its newest publication.")
@click.option("--every", help="Interval with a unit: 30s, 30m, 6h or 1d.")
@click.option("--cron", help="Five-field cron expression in UTC, such as '0 3 * * *'.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Parameter override for every run; repeatable.")
@click.option("--experiment", help="Experiment to group the runs under.")
def schedule_create(name: str, published: str, every: str | None, cron: str | None, params: tuple[str, ...], experiment: str | None) -> None:
    """Create a schedule; starts the API server when it is not running."""
    workspace = opml.connect()
    item = workspace.pipelines.create_schedule(
        name, workspace.pipelines.resolve_published_id(published), every=every, cron=cron, parameters=parse_assignments(params), experiment=experiment
    )
    workspace.api.ensure_running()
    click.echo(f"Schedule {item.name}: {item.recurrence}, next run {_when(item.next_run_at)}")


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def schedule_list(as_json: bool) -> None:
    """List schedules with their next run time."""
    workspace = opml.connect()
    items = workspace.pipelines.list_schedules()
    if as_json:
        _print_json([_to_jsonable(item) for item in items])
        return
    if not items:
        click.echo("No schedules; create one with: opml pipelines schedule create NAME --pipeline ID --every 1d")
    if items:
        click.echo(f"{'SCHEDULE':<20} {'STATUS':<7} {'RECURRENCE':<18} {'NEXT RUN':<23} LAST RUN")
    for item in items:
        click.echo(
            f"{item.name:<20} {item.status:<7} {item.recurrence:<18} {_when(item.next_run_at):<23} "
            f"{item.last_run_id or '-'}{'  ' + item.last_error if item.last_error else ''}"
        )
    server = workspace.api.status()
    if items and server.state != "Running":
        click.echo(f"The API server is {server.state}; schedules fire only while it runs: opml api start", err=True)


def _schedule_action(verb: str, method: str, help_text: str):
    @schedule.command(verb, help=help_text)
    @click.argument("name")
    def command(name: str) -> None:
        result = getattr(opml.connect().pipelines, method)(name)
        click.echo(f"Schedule {result.name} is {result.status}; next run {_when(result.next_run_at)}")

    return command


_schedule_action("pause", "pause_schedule", "Pause a schedule: it fires no runs until resumed.")
_schedule_action("resume", "resume_schedule", "Resume a paused schedule; its next run is computed from now.")


@schedule.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Delete without asking.")
def schedule_delete(name: str, yes: bool) -> None:
    """Delete a schedule; runs it started are kept."""
    service = opml.connect().pipelines
    service.schedule(name)
    if not yes:
        click.confirm(f"Delete schedule {name}?", abort=True)
    service.delete_schedule(name)
    click.echo(f"Deleted schedule {name}")


def _when(moment) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


@click.group()
def api() -> None:
    """Start, stop and inspect the API server, and manage its tokens."""


@api.command("start")
@click.option("--port", type=int, help="Port to listen on (default: the previous one, OPML_API_PORT, or a free one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
def api_start(port: int | None, host: str) -> None:
    """Start the API server in the background."""
    server = opml.connect().api.start(host, port)
    click.echo(f"API server {server.state} at {server.base_uri} (pid {server.pid})")


@api.command("stop")
def api_stop() -> None:
    """Stop the API server; schedules pause until it starts again."""
    server = opml.connect().api.stop()
    click.echo(f"API server {server.state}")


@api.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def api_status(as_json: bool) -> None:
    """Show whether the API server runs, where, and since when."""
    server = opml.connect().api.status()
    if as_json:
        _print_json({**_to_jsonable(server), "base_uri": server.base_uri})
        return
    where = f" at {server.base_uri}" if server.base_uri and server.state == "Running" else ""
    since = f" since {server.started_at:%Y-%m-%d %H:%M:%S} UTC" if server.started_at and server.state == "Running" else ""
    click.echo(f"API server {server.state}{where}{since}")
    if server.error:
        click.echo(server.error)


@api.command("logs")
@click.option("--tail", type=int, default=50, show_default=True, help="Only the last N lines.")
def api_logs(tail: int) -> None:
    """Print the API server's log."""
    click.echo(opml.connect().api.logs(tail))


@api.group("token")
def token() -> None:
    """Create, list and revoke bearer tokens for pipeline endpoints."""


@token.command("create")
@click.argument("name")
def token_create(name: str) -> None:
    """Create a token and print it once; only its hash is stored."""
    item, secret = opml.connect().pipelines.create_token(name)
    click.echo(secret)
    click.echo(f"Created token {item.name} ({item.id}); store it now, it is not shown again.", err=True)


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def token_list(as_json: bool) -> None:
    """List tokens (never their secrets)."""
    items = opml.connect().pipelines.list_tokens()
    if as_json:
        _print_json([_to_jsonable(item) for item in items])
        return
    if not items:
        click.echo("No tokens; create one with: opml api token create NAME")
    if items:
        click.echo(f"{'ID':<12}  {'NAME':<20} {'STATE':<24} USE")
    for item in items:
        state = "active" if item.active else f"revoked {item.revoked_at:%Y-%m-%d %H:%M}"
        used = "never used" if item.last_used_at is None else f"last used {item.last_used_at:%Y-%m-%d %H:%M}"
        click.echo(f"{item.id}  {item.name:<20} {state:<24} {used}")


@token.command("revoke")
@click.argument("reference", metavar="ID|NAME")
def token_revoke(reference: str) -> None:
    """Revoke a token; requests carrying it get 401 at once."""
    item = opml.connect().pipelines.revoke_token(reference)
    click.echo(f"Revoked token {item.name} ({item.id})")


@click.command()
@click.option("--budget", default=60.0, show_default=True, type=float, help="AutoML time budget of each training, in seconds.")
def quickstart(budget: float) -> None:
    """Run the whole workflow on the bundled data: dataset, AutoML, model, deployment, scoring, benchmark, pipeline."""
    from opml.quickstart import run_quickstart

    if budget < 10:
        raise OpmlError(f"Invalid --budget {budget:g}: give at least 10 seconds.")
    workspace = opml.connect()
    click.echo(f"opml quickstart in {workspace.home}")
    if not run_quickstart(workspace, budget, click.echo):
        raise OpmlError("quickstart stopped at the failed step above.")
    click.echo(f"Done. Open the dashboard on this workspace with: OPML_HOME={workspace.home} make dashboard")


__all__ = ["api", "pipelines", "quickstart"]
