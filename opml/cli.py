"""The ``opml`` command line: the same service calls as the dashboard pages.

Data goes to stdout (``--json`` for scripts); errors go to stderr as one
line starting with ``error:``, with exit status 1.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path

import click

import opml
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
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


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
    command = [
        sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port), "--server.address", host
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
        click.echo("No datasets. Register one with: opml datasets register-sample")
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
    if version is None:
        raise OpmlError(f"Give the version to delete, as in {name}:1; see opml datasets show {name}.")

    service = opml.connect().datasets
    found = service.get(name, version)
    if not yes:
        if not sys.stdin.isatty():
            raise OpmlError(f"Refusing to delete {found.ref} without confirmation; add --yes.")
        click.confirm(f"Delete dataset version {found.ref} ({found.rows:,} rows)?", abort=True)
    service.delete_version(name, version)
    click.echo(f"Deleted {found.ref}")


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


def _to_jsonable(record) -> dict:
    def convert(value):
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, dict):
            return {key: convert(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [convert(item) for item in value]
        return value

    return convert(dataclasses.asdict(record))


def _print_json(data) -> None:
    click.echo(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
