"""Typed records the services return: plain values, never database rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from opml.profiling import DatasetProfile


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable snapshot of a dataset, with where it came from and its profile."""

    name: str
    version: int
    description: str
    origin: str
    """The URL or path the data came from, or ``upload:<file name>``."""
    origin_kind: str
    """``url``, ``file``, ``upload`` or ``sample``."""
    source_format: str
    """``csv`` or ``parquet``."""
    delimiter: str | None
    sha256: str
    """Of the source bytes as received, before parsing."""
    size_bytes: int
    rows: int
    columns: int
    created_at: datetime
    profile: DatasetProfile

    @property
    def ref(self) -> str:
        """The ``name:version`` form that the CLI and later steps accept."""
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class Dataset:
    """A named dataset with its versions, newest last."""

    name: str
    created_at: datetime
    versions: tuple[int, ...]
    latest: DatasetVersion

    @property
    def description(self) -> str:
        return self.latest.description


@dataclass(frozen=True)
class Registration:
    """The result of registering data under a dataset name."""

    version: DatasetVersion
    created: bool
    """False when the content equalled the latest version, which is returned instead."""


@dataclass(frozen=True)
class Activity:
    at: datetime
    kind: str
    message: str
