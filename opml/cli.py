"""The ``opml`` command line: the same service calls as the dashboard pages.

Data goes to stdout (``--json`` for scripts); errors go to stderr as one
line starting with ``error:``, with exit status 1.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from pathlib import Path

import click

import opml
from opml.cli_output import print_json as _print_json
from opml.cli_output import to_jsonable as _to_jsonable
from opml.datasets import SAMPLE_NAME, parse_dataset_ref
from opml.errors import OpmlError
from opml.records import DatasetVersion, Registration

DASHBOARD_PORT = 8501


def main() -> None:
    try:
        cli(standalone_mode=False)
    except OpmlError as error:
        _fail(error.message)
    except click.exceptions.Abort:
        _fail("aborted; nothing was changed.")
    except click.UsageError as error:
        command = error.ctx.command_path if error.ctx else "opml"
        message = error.format_message().rstrip()
        separator = " " if message.endswith(".") else ". "
        _fail(f"{message}{separator}Run '{command} --help' for usage.", status=error.exit_code)
    except click.ClickException as error:
        _fail(error.format_message(), status=error.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted.", status=130)


def _fail(message: str, status: int = 1) -> None:
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(status)


@click.group()
@click.version_option(opml.__version__, prog_name="opml")
@click.option("-v", "--verbose", is_flag=True, help="Log what opml does to stderr.")
def cli(verbose: bool) -> None:
    """Operate datasets and models in the workspace at OPML_HOME (default ./.opml)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.CRITICAL, format="%(levelname)s %(name)s: %(message)s")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def workspace(as_json: bool) -> None:
    """Show the workspace location, schema version and counts."""
    ws = opml.connect()
    summary = ws.summary()
    info = {
        "home": str(ws.home),
        "backend": ws.backend,
        "metadata": str(ws.metadata_path),
        "schema_version": ws.schema_version,
        "datasets": summary.datasets,
        "dataset_versions": summary.dataset_versions,
    }
    if as_json:
        _print_json(info)
        return
    for key, value in info.items():
        click.echo(f"{key + ':':<18}{value}")


@cli.command()
@click.option("--port", default=DASHBOARD_PORT, show_default=True, help="Port the dashboard listens on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 serves other machines.")
@click.option("--no-sample", is_flag=True, help="Do not register the bundled sample into an empty workspace.")
def dashboard(port: int, host: str, no_sample: bool) -> None:
    """Start the dashboard; an empty workspace gets the bundled Bank Marketing sample first."""
    app = Path(__file__).resolve().parent.parent / "app.py"
    if not app.is_file():
        raise OpmlError(f"The dashboard script {app} was not found; run opml dashboard from a source checkout of opml.")

    ws = opml.connect()
    if not no_sample and not ws.datasets.list():
        registration = ws.datasets.register_sample()
        click.echo(f"Registered the bundled sample as {registration.version.ref} in {ws.home}")

    # The dashboard must open the same workspace, wherever streamlit runs from.
    os.environ["OPML_HOME"] = str(ws.home)
    # Streamlit counts its upload limit in megabytes; it follows OPML_MAX_DATASET_MB.
    upload_limit_mb = max(1, math.ceil(ws.settings.max_dataset_bytes / 1_000_000))
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.port", str(port),
        "--server.address", host,
        "--server.maxUploadSize", str(upload_limit_mb),
    ]
    os.chdir(app.parent)
    os.execv(sys.executable, command)


@cli.group()
def datasets() -> None:
    """Register, list, inspect and delete datasets."""


@datasets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def datasets_list(as_json: bool) -> None:
    """List datasets with their latest version."""
    items = opml.connect().datasets.list()
    if as_json:
        _print_json(
            [
                {
                    "name": item.name,
                    "versions": list(item.versions),
                    "latest": _version_summary(item.latest),
                }
                for item in items
            ]
        )
        return
    if not items:
        click.echo(f"No datasets in the workspace {opml.connect().home}. Register one with: opml datasets register-sample")
        return
    click.echo(f"{'NAME':<24}{'LATEST':>7}{'VERSIONS':>10}{'ROWS':>10}{'COLUMNS':>9}  REGISTERED (UTC)")
    for item in items:
        latest = item.latest
        click.echo(
            f"{item.name:<24}{latest.version:>7}{len(item.versions):>10}{latest.rows:>10,}"
            f"{latest.columns:>9}  {latest.created_at:%Y-%m-%d %H:%M}"
        )


@datasets.command("show")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts, with the full profile.")
def datasets_show(ref: str, as_json: bool) -> None:
    """Show one dataset version (the latest unless given) with its profile."""
    name, version = parse_dataset_ref(ref)
    service = opml.connect().datasets
    found = service.get(name, version)
    all_versions = [item.version for item in service.versions(name)]
    if as_json:
        _print_json({**_to_jsonable(found), "ref": found.ref, "all_versions": all_versions})
        return

    click.echo(f"{found.ref}  ({found.rows:,} rows, {found.columns} columns)")
    click.echo(f"  description:  {found.description or '-'}")
    click.echo(f"  origin:       {found.origin}")
    click.echo(f"  format:       {found.source_format}" + (f" (delimiter {found.delimiter!r})" if found.delimiter else ""))
    click.echo(f"  sha256:       {found.sha256}")
    click.echo(f"  size:         {found.size_bytes:,} bytes")
    click.echo(f"  registered:   {found.created_at:%Y-%m-%d %H:%M:%S} UTC")
    click.echo(f"  versions:     {', '.join(map(str, all_versions))}")
    click.echo("")
    click.echo(f"  {'COLUMN':<18}{'TYPE':<9}{'KIND':<13}{'MISSING':>8}{'DISTINCT':>9}  SUMMARY")
    for column in found.profile.column_profiles:
        if column.kind == "numeric":
            summary = f"min {column.min:g}, max {column.max:g}, mean {column.mean:.4g}" if column.min is not None else "-"
        else:
            summary = ", ".join(f"{item.value} ({item.count:,})" for item in column.top_values[:3])
        click.echo(f"  {column.name:<18}{column.dtype:<9}{column.kind:<13}{column.missing:>8,}{column.distinct:>9,}  {summary}")


@datasets.command("preview")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("--rows", default=10, show_default=True, help="Number of rows from the top.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON records.")
def datasets_preview(ref: str, rows: int, as_json: bool) -> None:
    """Print the first rows of a dataset version."""
    name, version = parse_dataset_ref(ref)
    frame = opml.connect().datasets.preview(name, version, rows=rows)
    if as_json:
        click.echo(frame.to_json(orient="records", indent=2))
        return
    click.echo(frame.to_string(index=False))


@datasets.command("register")
@click.option("--name", required=True, help="Dataset name; an existing name gets a new version.")
@click.option("--url", help="http(s) address of a CSV or Parquet file.")
@click.option("--file", "file_path", type=click.Path(dir_okay=False), help="Path of a local CSV or Parquet file.")
@click.option("--description", default="", help="What the data is.")
@click.option("--json", "as_json", is_flag=True, help="Print the registered version as JSON.")
def datasets_register(name: str, url: str | None, file_path: str | None, description: str, as_json: bool) -> None:
    """Register a dataset version from a URL or a local file."""
    if (url is None) == (file_path is None):
        raise OpmlError("Give exactly one of --url or --file for the data to register.")

    service = opml.connect().datasets
    if url is not None:
        registration = service.register_from_url(name, url, description=description, progress=_download_progress())
    else:
        registration = service.register_from_file(name, file_path, description=description)
    _report_registration(registration, as_json)


@datasets.command("register-sample")
@click.option("--name", default=SAMPLE_NAME, show_default=True, help="Dataset name to register the sample under.")
@click.option("--json", "as_json", is_flag=True, help="Print the registered version as JSON.")
def datasets_register_sample(name: str, as_json: bool) -> None:
    """Register the bundled Bank Marketing training data (label y)."""
    _report_registration(opml.connect().datasets.register_sample(name), as_json)


@datasets.command("delete")
@click.argument("ref", metavar="NAME:VERSION")
@click.option("--yes", is_flag=True, help="Delete without asking.")
def datasets_delete(ref: str, yes: bool) -> None:
    """Delete one dataset version and its files."""
    name, version = parse_dataset_ref(ref)
    service = opml.connect().datasets
    found = service.get(name, version)
    if version is None:
        raise OpmlError(f"Give the version to delete, as in {found.ref}; see opml datasets show {name}.")

    if not yes:
        if not sys.stdin.isatty():
            raise OpmlError(f"Refusing to delete {found.ref} without confirmation; add --yes.")
        click.confirm(f"Delete dataset version {found.ref} ({found.rows:,} rows)?", abort=True)
    service.delete_version(name, version)
    click.echo(f"Deleted {found.ref}")


@cli.group()
def automl() -> None:
    """Start AutoML runs."""


@automl.command("run")
@click.option("--dataset", "dataset_ref", required=True, metavar="NAME[:VERSION]", help="Training dataset (latest version unless given).")
@click.option("--label", required=True, help="Label column name.")
@click.option("--metric", default="AUC_weighted", show_default=True, help="Primary metric (Azure name).")
@click.option("--budget", default=120.0, show_default=True, type=float, help="Time budget of the whole run, in seconds.")
@click.option("--iterations", type=int, help="Maximum number of child runs.")
@click.option("--cv", "folds", type=int, help="Cross-validation folds (default 5).")
@click.option("--validation-size", type=float, help="Fraction of rows held out instead of cross-validation.")
@click.option("--no-early-stopping", is_flag=True, help="Search for the whole budget even when progress stalls.")
@click.option("--block", "blocked", multiple=True, help="Model to leave out (LightGBM, XGBoostClassifier, RandomForest, ExtremeRandomTrees, LogisticRegression); repeatable.")
@click.option("--no-ensemble", is_flag=True, help="Do not try a VotingEnsemble.")
@click.option("--seed", default=0, show_default=True, help="Random seed of folds and search.")
@click.option("--experiment", default="automl", show_default=True, help="Experiment name to group the run under.")
@click.option("--wait", is_flag=True, help="Follow progress until the run ends; exit 1 unless it completes.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
def automl_run(dataset_ref, label, metric, budget, iterations, folds, validation_size, no_early_stopping, blocked, no_ensemble, seed, experiment, wait, as_json) -> None:
    """Start an AutoML classification run and print its id."""
    from opml.automl.settings import AutoMLSettings

    name, version = parse_dataset_ref(dataset_ref)
    if folds is None and validation_size is None:
        folds = 5
    settings = AutoMLSettings(
        label_column_name=label,
        primary_metric=metric,
        experiment_timeout_seconds=budget,
        iterations=iterations,
        n_cross_validations=folds,
        validation_size=validation_size,
        enable_early_stopping=not no_early_stopping,
        blocked_models=tuple(blocked),
        enable_voting_ensemble=not no_ensemble,
        random_seed=seed,
    )
    workspace = opml.connect()
    run = workspace.runs.submit_automl_run(name, settings, version=version, experiment=experiment)
    if not wait:
        _print_json(_run_json(run)) if as_json else click.echo(run.id)
        return

    click.echo(run.id, err=as_json)
    run = _follow(workspace, run.id)
    if as_json:
        _print_json(_run_json(run))
    if run.status != "Completed":
        raise OpmlError(f"Run {run.id} {run.status.lower()}: {run.error or 'no reason recorded'}")


def _follow(workspace, run_id: str):
    last_line = ""
    while True:
        run = workspace.runs.get(run_id)
        best = "-" if run.progress.best_metric is None else f"{run.progress.best_metric:.4f}"
        line = (
            f"{run.status}: {run.progress.elapsed_s:.0f}/{run.progress.budget_s:.0f} s, "
            f"{run.progress.child_runs} child runs, best {run.primary_metric} {best}"
        )
        if line != last_line:
            click.echo(line, err=True)
            last_line = line
        if not run.is_active:
            return run
        time.sleep(2)


@cli.group()
def runs() -> None:
    """List, inspect, cancel and read the logs of runs."""


@runs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def runs_list(as_json: bool) -> None:
    """List runs, newest first."""
    items = opml.connect().runs.list()
    if as_json:
        _print_json([_run_json(run) for run in items])
        return
    if not items:
        click.echo("No runs. Start one with: opml automl run --dataset bankmarketing --label y --budget 60")
        return
    click.echo(f"{'RUN ID':<22}{'STATUS':<11}{'DATASET':<22}{'METRIC':<18}{'BEST':>8}{'CHILDREN':>10}  CREATED (UTC)")
    for run in items:
        best = "-" if run.progress.best_metric is None else f"{run.progress.best_metric:.4f}"
        click.echo(
            f"{run.id:<22}{run.status:<11}{run.dataset_ref:<22}{run.primary_metric:<18}{best:>8}"
            f"{run.progress.child_runs:>10}  {run.created_at:%Y-%m-%d %H:%M}"
        )


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the run and its child runs as JSON.")
def runs_show(run_id: str, as_json: bool) -> None:
    """Show a run with its child-run leaderboard."""
    service = opml.connect().runs
    run = service.get(run_id)
    children = service.children(run_id)
    metric = run.primary_metric
    if as_json:
        _print_json({**_run_json(run), "child_runs": [_child_json(child) for child in children]})
        return

    click.echo(f"{run.id}  {run.status}  on {run.dataset_ref}, label {run.settings['label_column_name']}")
    click.echo(f"  primary metric: {metric}   budget: {run.progress.budget_s:g} s   elapsed: {run.progress.elapsed_s:.0f} s")
    if run.error:
        click.echo(f"  error: {run.error}")
    if run.best_iteration is not None:
        click.echo(f"  best child run: {run.best_iteration} ({run.result.get('best_algorithm')})")
    click.echo("")
    click.echo(f"  {'CHILD':>5}  {'ALGORITHM':<20}{metric:>18}{'accuracy':>10}{'DURATION':>10}  MODEL")
    for child in sorted(children, key=lambda item: item.metrics[metric], reverse=True):
        click.echo(
            f"  {child.iteration:>5}  {child.algorithm:<20}{child.metrics[metric]:>18.4f}"
            f"{child.metrics['accuracy']:>10.4f}{child.duration_s:>9.1f}s  {'kept' if child.has_model else ''}"
        )


@runs.command("cancel")
@click.argument("run_id")
def runs_cancel(run_id: str) -> None:
    """Cancel a Queued or Running run."""
    run = opml.connect().runs.cancel(run_id)
    click.echo(f"Cancel requested for {run.id} (status {run.status})")


@runs.command("logs")
@click.argument("run_id")
@click.option("--tail", type=int, help="Only the last N lines.")
def runs_logs(run_id: str, tail: int | None) -> None:
    """Print a run's log."""
    click.echo(opml.connect().runs.logs(run_id, tail=tail))


@cli.group()
def models() -> None:
    """Register, list, inspect, download and delete models."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def models_list(as_json: bool) -> None:
    """List registered model versions."""
    items = opml.connect().models.list()
    if as_json:
        _print_json([_model_json(model, with_details=False) for model in items])
        return
    if not items:
        click.echo("No models. Register one with: opml models register --run RUN_ID --name NAME")
        return
    click.echo(f"{'MODEL':<30}{'ALGORITHM':<20}{'PRIMARY METRIC':<34}{'DATASET':<22}  REGISTERED (UTC)")
    for model in items:
        metric = f"{model.primary_metric} {model.metrics[model.primary_metric]:.4f}"
        click.echo(
            f"{model.ref:<30}{model.algorithm:<20}{metric:<34}{model.dataset_name + ':' + str(model.dataset_version):<22}"
            f"  {model.created_at:%Y-%m-%d %H:%M}"
        )


@models.command("show")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts, with schema and charts.")
def models_show(ref: str, as_json: bool) -> None:
    """Show a model version: metrics, schema and lineage."""
    from opml.models import parse_model_ref

    name, version = parse_model_ref(ref)
    model = opml.connect().models.get(name, version)
    if as_json:
        _print_json(_model_json(model, with_details=True))
        return
    click.echo(f"{model.ref}  {model.algorithm}")
    click.echo(f"  lineage:      dataset {model.dataset_name}:{model.dataset_version}, run {model.run_id}, child run {model.child_iteration}")
    click.echo(f"  sha256:       {model.sha256}")
    click.echo(f"  registered:   {model.created_at:%Y-%m-%d %H:%M:%S} UTC")
    click.echo("  metrics:")
    for metric, value in model.metrics.items():
        click.echo(f"    {metric:<36}{value:.4f}")
    click.echo("  schema:")
    for feature in model.schema["features"]:
        detail = (
            f"{feature['min']:g} to {feature['max']:g}" if feature.get("categories") is None and feature["min"] is not None
            else ", ".join(feature.get("categories") or [])
        )
        click.echo(f"    {feature['name']:<20}{feature['dtype']:<9}{detail}")


@models.command("register")
@click.option("--run", "run_id", required=True, help="Run whose model to register.")
@click.option("--name", required=True, help="Model name; an existing name gets a new version.")
@click.option("--child", "iteration", type=int, help="Child run to register instead of the best (it must have kept its model).")
@click.option("--description", default="", help="What the model is for.")
@click.option("--json", "as_json", is_flag=True, help="Print the registered model as JSON.")
def models_register(run_id: str, name: str, iteration: int | None, description: str, as_json: bool) -> None:
    """Register a run's best model, or a child run's model, under a name."""
    model = opml.connect().models.register(run_id, name, iteration=iteration, description=description)
    if as_json:
        _print_json(_model_json(model, with_details=False))
        return
    click.echo(f"Registered {model.ref}: {model.algorithm}, {model.primary_metric} {model.metrics[model.primary_metric]:.4f}")


@models.command("download")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="File to write the model (joblib) to.")
def models_download(ref: str, output: str) -> None:
    """Copy a model file out of the workspace."""
    import shutil

    from opml.models import parse_model_ref

    name, version = parse_model_ref(ref)
    source = opml.connect().models.file_path(name, version)
    shutil.copyfile(source, output)
    click.echo(f"Wrote {output}")


@models.command("delete")
@click.argument("ref", metavar="NAME:VERSION")
@click.option("--yes", is_flag=True, help="Delete without asking.")
def models_delete(ref: str, yes: bool) -> None:
    """Delete one model version and its file."""
    from opml.models import parse_model_ref

    name, version = parse_model_ref(ref)
    service = opml.connect().models
    model = service.get(name, version)
    if version is None:
        raise OpmlError(f"Give the version to delete, as in {model.ref}; see opml models list.")
    if not yes:
        if not sys.stdin.isatty():
            raise OpmlError(f"Refusing to delete {model.ref} without confirmation; add --yes.")
        click.confirm(f"Delete model {model.ref}?", abort=True)
    service.delete(name, version)
    click.echo(f"Deleted {model.ref}")


@cli.command()
@click.option("--model", "model_ref", required=True, metavar="NAME[:VERSION]", help="Registered model (latest version unless given).")
@click.option("--name", required=True, help="Deployment name: 2 to 32 lowercase letters, digits or '-'.")
@click.option("--no-auth", is_flag=True, help="Serve without key authentication (anyone who reaches the port can score).")
@click.option("--port", type=int, help="Port to listen on; a free port when unset.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--workers", default=2, show_default=True, help="Server worker processes.")
@click.option("--reject-unknown-categories", is_flag=True, help="Answer 422 for category values not seen in training.")
@click.option("--json", "as_json", is_flag=True, help="Print the deployment as JSON, keys included.")
def deploy(model_ref, name, no_auth, port, host, workers, reject_unknown_categories, as_json) -> None:
    """Deploy a registered model as a scoring web service."""
    from opml.models import parse_model_ref

    model_name, version = parse_model_ref(model_ref)
    deployment = opml.connect().deployments.deploy(
        model_name,
        name,
        model_version=version,
        auth_enabled=not no_auth,
        host=host,
        port=port,
        workers=workers,
        unknown_categories="reject" if reject_unknown_categories else "accept",
    )
    if as_json:
        _print_json(_deployment_json(deployment, with_keys=True))
    else:
        _print_deployment(deployment, with_keys=True)
    if deployment.state != "Healthy":
        raise OpmlError(f"Deployment {name} is {deployment.state}: {deployment.error}")


@cli.group()
def deployments() -> None:
    """Operate deployments: list, show, logs, keys, insights, stop, start, restart, delete."""


@deployments.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (without keys).")
def deployments_list(as_json: bool) -> None:
    """List deployments with their state and scoring URI."""
    items = opml.connect().deployments.list()
    if as_json:
        _print_json([_deployment_json(item, with_keys=False) for item in items])
        return
    if not items:
        click.echo("No deployments. Deploy a model with: opml deploy --model NAME --name SERVICE")
        return
    name_width = max(len("NAME"), *(len(item.name) for item in items)) + 2
    model_width = max(len("MODEL"), *(len(item.model_ref) for item in items)) + 2
    click.echo(f"{'NAME':<{name_width}}{'STATE':<15}{'MODEL':<{model_width}}{'INSIGHTS':<10}SCORING URI")
    for item in items:
        click.echo(
            f"{item.name:<{name_width}}{item.state:<15}{item.model_ref:<{model_width}}"
            f"{'on' if item.insights_enabled else 'off':<10}{item.scoring_uri or '-'}"
        )


@deployments.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts, keys included.")
def deployments_show(name: str, as_json: bool) -> None:
    """Show a deployment: state, URIs, keys and model version."""
    deployment = opml.connect().deployments.get(name)
    if as_json:
        _print_json(_deployment_json(deployment, with_keys=True))
        return
    _print_deployment(deployment, with_keys=True)


@deployments.command("logs")
@click.argument("name")
@click.option("--tail", type=int, help="Only the last N lines.")
def deployments_logs(name: str, tail: int | None) -> None:
    """Print a deployment's service log."""
    click.echo(opml.connect().deployments.logs(name, tail=tail))


@deployments.command("requests")
@click.argument("name")
@click.option("--limit", default=20, show_default=True, help="Newest requests to print.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def deployments_requests(name: str, limit: int, as_json: bool) -> None:
    """Print the requests insights recorded, newest first."""
    records = opml.connect().deployments.requests(name, limit=limit)
    if as_json:
        _print_json(records)
        return
    if not records:
        click.echo(f"No requests recorded for {name}; turn insights on with: opml deployments insights {name} on")
        return
    click.echo(f"{'TIME (UTC)':<25}{'STATUS':>7}{'LATENCY MS':>12}{'ROWS':>6}{'BYTES':>8}  REQUEST ID")
    for record in records:
        click.echo(
            f"{record['at'][:23]:<25}{record['status']:>7}{record['latency_ms']:>12.2f}{record['rows']:>6}"
            f"{record['payload_bytes']:>8}  {record['request_id']}"
        )


@deployments.command("keys")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def deployments_keys(name: str, as_json: bool) -> None:
    """Print the primary and secondary keys."""
    deployment = opml.connect().deployments.get(name)
    if as_json:
        _print_json({"primary_key": deployment.primary_key, "secondary_key": deployment.secondary_key})
        return
    click.echo(f"primary:   {deployment.primary_key}")
    click.echo(f"secondary: {deployment.secondary_key}")


@deployments.command("regenerate-key")
@click.argument("name")
@click.option("--key", "which", type=click.Choice(["primary", "secondary"]), default="primary", show_default=True)
def deployments_regenerate_key(name: str, which: str) -> None:
    """Replace a key; the old one stops working at once."""
    deployment = opml.connect().deployments.regenerate_key(name, which)
    click.echo(f"{which}: {getattr(deployment, f'{which}_key')}")


@deployments.command("insights")
@click.argument("name")
@click.argument("switch", type=click.Choice(["on", "off"]))
@click.option("--samples", is_flag=True, help="Also record input and output samples of each request.")
def deployments_insights(name: str, switch: str, samples: bool) -> None:
    """Turn per-request telemetry on or off, without a restart."""
    deployment = opml.connect().deployments.set_insights(name, switch == "on", samples=samples)
    detail = " with samples" if deployment.insights_samples else ""
    click.echo(f"Insights {switch} for {deployment.name}{detail}")


def _lifecycle_command(verb: str, help_text: str):
    @deployments.command(verb, help=help_text)
    @click.argument("name")
    def command(name: str) -> None:
        service = opml.connect().deployments
        deployment = getattr(service, verb)(name)
        click.echo(f"{deployment.name}: {deployment.state}" + (f" ({deployment.error})" if deployment.error else ""))
        if verb != "stop" and deployment.state != "Healthy":
            raise OpmlError(f"Deployment {name} is {deployment.state}: {deployment.error}")

    return command


_lifecycle_command("stop", "Stop the service process; the deployment and its keys stay.")
_lifecycle_command("start", "Start a stopped or unhealthy deployment.")
_lifecycle_command("restart", "Restart the service process.")


@deployments.command("update")
@click.argument("name")
@click.option("--model", "model_ref", required=True, metavar="NAME[:VERSION]", help="Model version to serve instead.")
def deployments_update(name: str, model_ref: str) -> None:
    """Serve another model version on the same port."""
    from opml.models import parse_model_ref

    model_name, version = parse_model_ref(model_ref)
    deployment = opml.connect().deployments.update(name, model_version=version, model_name=model_name)
    click.echo(f"{deployment.name}: {deployment.state}, serving {deployment.model_ref}")
    if deployment.state != "Healthy":
        raise OpmlError(f"Deployment {name} is {deployment.state}: {deployment.error}")


@deployments.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Delete without asking.")
def deployments_delete(name: str, yes: bool) -> None:
    """Stop the service and delete the deployment, its keys and telemetry."""
    service = opml.connect().deployments
    deployment = service.get(name)
    if not yes:
        if not sys.stdin.isatty():
            raise OpmlError(f"Refusing to delete deployment {deployment.name} without confirmation; add --yes.")
        click.confirm(f"Delete deployment {deployment.name}?", abort=True)
    service.delete(name)
    click.echo(f"Deleted {deployment.name}")


@cli.group()
def benchmark() -> None:
    """Load-test a deployment or a scoring URI, with opml's generator or Apache Bench."""


@benchmark.command("run")
@click.option("--deployment", help="Deployment to load-test (its primary key and example row are used).")
@click.option("--uri", help="Any scoring URI instead of a deployment.")
@click.option("--key", help="Key for --uri.")
@click.option("--payload", "payload_file", type=click.Path(dir_okay=False), help="JSON request body file.")
@click.option("--rows-from", "rows_from", metavar="DATASET[:VERSION]", help="Build the body from the first rows of a dataset.")
@click.option("--rows", default=2, show_default=True, help="Rows per request with --rows-from.")
@click.option("-n", "--requests", "request_count", type=int, help="Number of requests (default 100 unless --duration).")
@click.option("--duration", type=float, help="Seconds to keep sending, instead of a number of requests.")
@click.option("-c", "--concurrency", default=1, show_default=True, help="Requests in flight at once.")
@click.option("--no-keep-alive", is_flag=True, help="Open a new connection for each request.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds before a request counts as timed out.")
@click.option("--warmup", default=0, show_default=True, help="Requests sent first and not counted.")
@click.option("--ab", "use_ab", is_flag=True, help="Also run Apache Bench with the same settings.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def benchmark_run(deployment, uri, key, payload_file, rows_from, rows, request_count, duration, concurrency, no_keep_alive, timeout, warmup, use_ab, as_json) -> None:
    """Run a load test and store its result."""
    if (deployment is None) == (uri is None):
        raise OpmlError("Give exactly one of --deployment or --uri to load-test.")
    workspace = opml.connect()
    service = workspace.benchmarks

    payload = None
    if payload_file:
        payload = service.payload_from_file(payload_file)
    elif rows_from:
        name, version = parse_dataset_ref(rows_from)
        label = None
        if deployment:
            label = workspace.deployments.scoring_target(deployment).schema["label"]
        payload = service.payload_from_dataset(name, version, rows, drop=label)
    if request_count is None and duration is None:
        request_count = 100

    settings, context = service.settings_for(
        deployment=deployment,
        scoring_uri=uri,
        key=key,
        payload=payload,
        requests=request_count,
        duration_s=duration,
        concurrency=concurrency,
        keep_alive=not no_keep_alive,
        timeout_s=timeout,
        warmup=warmup,
    )
    results = [service.run(settings, context)]
    if use_ab:
        results.append(service.run_ab(settings, context))

    if as_json:
        _print_json([_benchmark_json(result) for result in results])
        return
    for result in results:
        _print_benchmark(result)
        failed = result.summary["failed_requests"]
        if failed:
            click.echo(
                f"warning: {failed} failed requests {_failure_breakdown(result.summary['failures']).strip()}; "
                "check the key, the payload and the deployment's logs.",
                err=True,
            )


@benchmark.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def benchmark_list(as_json: bool) -> None:
    """List stored benchmark results, newest first."""
    items = opml.connect().benchmarks.list()
    if as_json:
        _print_json([_benchmark_json(item, with_samples=False) for item in items])
        return
    if not items:
        click.echo("No benchmarks. Run one with: opml benchmark run --deployment NAME -n 500 -c 4")
        return
    click.echo(f"{'ID':<18}{'TOOL':<6}{'TARGET':<30}{'C':>4}{'REQUESTS/S':>12}{'MEAN MS':>10}{'FAILED':>8}  CREATED (UTC)")
    for item in items:
        summary = item.summary
        click.echo(
            f"{item.id:<18}{item.tool:<6}{(item.deployment or item.scoring_uri)[:29]:<30}{item.settings['concurrency']:>4}"
            f"{summary['requests_per_second']:>12.1f}{summary['time_per_request_ms']:>10.2f}{summary['failed_requests']:>8}"
            f"  {item.created_at:%Y-%m-%d %H:%M}"
        )


@benchmark.command("show")
@click.argument("benchmark_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def benchmark_show(benchmark_id: str, as_json: bool) -> None:
    """Show one stored benchmark result."""
    result = opml.connect().benchmarks.get(benchmark_id)
    if as_json:
        _print_json(_benchmark_json(result))
        return
    _print_benchmark(result)


def _failure_breakdown(failures: dict) -> str:
    """Format the failure counts that are not zero, such as ``  (HTTP 503: 4, timeout: 1)``."""
    # ab reports only a total of non-2xx responses, stored under the status "any".
    parts = [
        f"non-2xx: {count}" if status == "any" else f"HTTP {status}: {count}"
        for status, count in failures.get("non_2xx", {}).items()
    ]
    parts += [f"{kind}: {failures[kind]}" for kind in ("timeout", "connection") if failures.get(kind)]
    return f"  ({', '.join(parts)})" if parts else ""


def _print_benchmark(result) -> None:
    summary = result.summary
    click.echo(
        f"{result.id} ({result.tool}) against {result.deployment or result.scoring_uri}, "
        f"{result.created_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    click.echo(f"  equivalent ab command:        {result.command}  (with the request body in data.json)")
    if "payload_bytes" in result.settings:
        click.echo(f"  request body:                 {result.settings['payload_bytes']:,} bytes")
    if summary.get("wall_time_s") is not None:
        click.echo(f"  time taken for tests:         {summary['wall_time_s']:.3f} s")
    click.echo(f"  complete requests:            {summary['complete_requests']}")
    click.echo(f"  failed requests:              {summary['failed_requests']}{_failure_breakdown(summary['failures'])}")
    click.echo(f"  requests per second:          {summary['requests_per_second']:.2f}")
    click.echo(f"  time per request:             {summary['time_per_request_ms']:.3f} ms (mean)")
    click.echo(f"  time per request:             {summary['time_per_request_all_ms']:.3f} ms (mean, across all concurrent requests)")
    click.echo(f"  transfer rate:                {summary['transfer_rate_kb_s']:.2f} KB/s received")
    if "latency_ms" in summary:
        latency = summary["latency_ms"]
        click.echo(
            f"  latency ms:                   min {latency['min']:.2f}  mean {latency['mean']:.2f}  sd {latency['sd']:.2f}"
            f"  median {latency['median']:.2f}  max {latency['max']:.2f}"
        )
    if summary.get("percentiles_ms"):
        click.echo("  percentiles ms:               " + "  ".join(f"{p}% {v:.1f}" for p, v in summary["percentiles_ms"].items()))


def _benchmark_json(result, with_samples: bool = True) -> dict:
    data = _to_jsonable(result)
    if not with_samples:
        del data["series"], data["latencies_ms"]
    return data


def _print_deployment(deployment, *, with_keys: bool) -> None:
    click.echo(f"{deployment.name}  {deployment.state}  serving {deployment.model_ref}")
    if deployment.error:
        click.echo(f"  error:         {deployment.error}")
    click.echo(f"  scoring URI:   {deployment.scoring_uri or '-'}")
    click.echo(f"  swagger URI:   {deployment.swagger_uri or '-'}")
    click.echo(f"  auth:          {'key' if deployment.auth_enabled else 'off'}")
    if with_keys and deployment.auth_enabled:
        click.echo(f"  primary key:   {deployment.primary_key}")
        click.echo(f"  secondary key: {deployment.secondary_key}")
    click.echo(f"  insights:      {'on' if deployment.insights_enabled else 'off'}")


def _deployment_json(deployment, *, with_keys: bool) -> dict:
    data = {
        **_to_jsonable(deployment),
        "model": deployment.model_ref,
        "scoring_uri": deployment.scoring_uri,
        "swagger_uri": deployment.swagger_uri,
    }
    if not with_keys:
        del data["primary_key"], data["secondary_key"]
    return data


def _run_json(run) -> dict:
    data = _to_jsonable(run)
    data["progress"]["fraction"] = run.progress.fraction
    data["dataset"] = run.dataset_ref
    return data


def _child_json(child) -> dict:
    data = _to_jsonable(child)
    del data["charts"]
    return data


def _model_json(model, *, with_details: bool) -> dict:
    data = {**_to_jsonable(model), "ref": model.ref}
    if not with_details:
        for key in ("schema", "charts", "feature_importance"):
            del data[key]
    return data


def _report_registration(registration: Registration, as_json: bool) -> None:
    version = registration.version
    if as_json:
        _print_json({**_version_summary(version), "created": registration.created})
        return
    if registration.created:
        click.echo(f"Registered {version.ref}: {version.rows:,} rows, {version.columns} columns, sha256 {version.sha256}")
    else:
        click.echo(f"Unchanged: the content equals {version.ref} (sha256 {version.sha256}); no new version was created")


def _download_progress():
    if not sys.stderr.isatty():
        return None

    def report(received: int, total: int | None) -> None:
        done = f"{received / 1e6:.1f} MB"
        click.echo(f"\rDownloaded {done}" + (f" of {total / 1e6:.1f} MB" if total else ""), err=True, nl=False)
        if total is not None and received >= total:
            click.echo("", err=True)

    return report


def _version_summary(version: DatasetVersion) -> dict:
    data = _to_jsonable(version)
    del data["profile"]
    return {**data, "ref": version.ref}


from opml.cli_pipelines import api, pipelines, quickstart  # noqa: E402  (defined in their own module)

cli.add_command(pipelines)
cli.add_command(api)
cli.add_command(quickstart)

if __name__ == "__main__":
    main()
