"""Output helpers shared by the ``opml`` command modules: records as JSON."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import click


def to_jsonable(record) -> dict:
    """Convert a record (a dataclass) to plain JSON values, datetimes as ISO 8601 strings."""

    def convert(value):
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, dict):
            return {key: convert(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [convert(item) for item in value]
        return value

    return convert(dataclasses.asdict(record))


def print_json(data) -> None:
    click.echo(json.dumps(data, indent=2))
