"""The datasets service: register, version, profile, preview, load and delete."""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import shutil
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from opml.backends.local.datasets import DATA_FILE, LocalDatasetRepository, StagedVersion
from opml.download import ProgressCallback, download, validate_url
from opml.errors import NotFoundError, OpmlError
from opml.profiling import profile_frame
from opml.records import Dataset, DatasetVersion, Registration
from opml.settings import Settings
from opml.tabular import read_table

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
COPY_CHUNK_BYTES = 1024 * 1024

SAMPLE_NAME = "bankmarketing"
SAMPLE_FILE = "bankmarketing_train.csv.gz"
SAMPLE_LABEL = "y"
SAMPLE_URL = (
    "https://automlsamplenotebookdata.blob.core.windows.net/automl-sample-notebook-data/bankmarketing_train.csv"
)
SAMPLE_DESCRIPTION = (
    "Bank Marketing (UCI, Moro et al. 2014, CC BY 4.0): direct marketing calls of a Portuguese bank; "
    "label y says whether the client subscribed a term deposit."
)


def validate_dataset_name(name: str) -> str:
    if not (name or "").strip():
        raise OpmlError("Missing dataset name: enter a name such as bankmarketing.")
    if not NAME_PATTERN.match(name):
        raise OpmlError(
            f"Invalid dataset name {name!r}: use 1 to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return name


def parse_dataset_ref(ref: str) -> tuple[str, int | None]:
    """Split ``name`` or ``name:version`` into the name and the version (None for latest)."""
    name, _, version_text = ref.partition(":")
    if not version_text:
        return validate_dataset_name(name), None
    if not version_text.isdigit() or int(version_text) < 1:
        raise OpmlError(f"Invalid dataset version {version_text!r} in {ref!r}: give a whole number from 1, as in {name}:1.")
    return validate_dataset_name(name), int(version_text)


class DatasetService:
    def __init__(self, repository: LocalDatasetRepository, settings: Settings) -> None:
        self._repository = repository
        self._settings = settings

    def register_from_url(
        self,
        name: str,
        url: str,
        *,
        description: str = "",
        progress: ProgressCallback | None = None,
    ) -> Registration:
        """Download ``url`` (http or https, CSV or Parquet) and register it under ``name``."""
        validate_dataset_name(name)
        url = validate_url(url)

        def fetch(destination: Path) -> tuple[str, int]:
            downloaded = download(
                url,
                destination,
                max_bytes=self._settings.max_dataset_bytes,
                timeout_s=self._settings.download_timeout_s,
                progress=progress,
            )
            return downloaded.sha256, downloaded.size_bytes

        return self._register(name, description, origin=url, origin_kind="url", label=url, fetch=fetch)

    def register_from_file(self, name: str, path: str | Path, *, description: str = "") -> Registration:
        """Copy the local file at ``path`` into the workspace and register it under ``name``."""
        validate_dataset_name(name)
        source = Path(path).expanduser()
        if not source.is_file():
            raise OpmlError(f"File not found: {str(path)!r}; give the path of a CSV or Parquet file.")
        source = source.resolve()
        size = source.stat().st_size
        self._check_size(str(source), size)

        def fetch(destination: Path) -> tuple[str, int]:
            with source.open("rb") as reader:
                return _copy_hashed(reader, destination, self._settings.max_dataset_bytes, str(source))

        return self._register(name, description, origin=str(source), origin_kind="file", label=str(source), fetch=fetch)

    def register_from_bytes(
        self, name: str, data: bytes, *, filename: str, description: str = ""
    ) -> Registration:
        """Register uploaded bytes; ``filename`` is how the upload is named in messages and its origin."""
        validate_dataset_name(name)
        self._check_size(filename, len(data))

        def fetch(destination: Path) -> tuple[str, int]:
            destination.write_bytes(data)
            return hashlib.sha256(data).hexdigest(), len(data)

        return self._register(
            name, description, origin=f"upload:{filename}", origin_kind="upload", label=filename, fetch=fetch
        )

    def register_sample(self, name: str = SAMPLE_NAME) -> Registration:
        """Register the bundled Bank Marketing training data (32,950 rows, label ``y``).

        The stored source is the original uncompressed CSV, so its sha256
        equals that of the file at ``SAMPLE_URL``.
        """
        validate_dataset_name(name)
        sample = resources.files("opml.sample_data").joinpath(SAMPLE_FILE)

        def fetch(destination: Path) -> tuple[str, int]:
            with sample.open("rb") as compressed, gzip.open(compressed) as reader:
                return _copy_hashed(reader, destination, self._settings.max_dataset_bytes, SAMPLE_FILE)

        return self._register(
            name,
            SAMPLE_DESCRIPTION,
            origin=f"bundled sample ({SAMPLE_URL})",
            origin_kind="sample",
            label="the bundled Bank Marketing sample",
            fetch=fetch,
        )

    def list(self) -> list[Dataset]:
        return self._repository.list_datasets()

    def versions(self, name: str) -> list[DatasetVersion]:
        versions = self._repository.list_versions(name)
        if not versions:
            raise self._not_found(name)
        return versions

    def get(self, name: str, version: int | None = None) -> DatasetVersion:
        """Return the given version of ``name``, or its latest when ``version`` is None."""
        found = self._repository.get(name, version)
        if found is not None:
            return found
        if version is None or self._repository.get(name, None) is None:
            raise self._not_found(name)
        available = ", ".join(str(item.version) for item in self._repository.list_versions(name))
        raise NotFoundError(f"Dataset {name!r} has no version {version}; its versions are {available}.")

    def preview(self, name: str, version: int | None = None, rows: int = 20) -> pd.DataFrame:
        """Return the first ``rows`` rows without loading the whole table."""
        if rows < 1:
            raise OpmlError(f"Invalid number of preview rows {rows}: give 1 or more.")
        with pq.ParquetFile(self._data_path(name, version)) as parquet:
            return next(parquet.iter_batches(batch_size=rows)).to_pandas()

    def load(self, name: str, version: int | None = None) -> pd.DataFrame:
        return pd.read_parquet(self._data_path(name, version))

    def delete_version(self, name: str, version: int) -> None:
        self.get(name, version)
        if not self._repository.delete(name, version):
            raise NotFoundError(f"Dataset {name}:{version} was deleted by another process meanwhile.")

    def _data_path(self, name: str, version: int | None) -> Path:
        return self._repository.data_path(self.get(name, version))

    def _register(
        self,
        name: str,
        description: str,
        *,
        origin: str,
        origin_kind: str,
        label: str,
        fetch: Callable[[Path], tuple[str, int]],
    ) -> Registration:
        version_id = uuid.uuid4().hex
        folder = self._repository.staging_folder(version_id)
        try:
            source = folder / "source"
            sha256, size_bytes = fetch(source)
            latest = self._repository.get(name, None)
            if latest is not None and latest.sha256 == sha256:
                log.info("Content of %s equals %s; no new version", label, latest.ref)
                return Registration(version=latest, created=False)

            table = read_table(source, label)
            source.rename(folder / f"source.{table.source_format}")
            table.frame.to_parquet(folder / DATA_FILE, index=False)
            staged = StagedVersion(
                id=version_id,
                folder=folder,
                name=name,
                description=description.strip(),
                origin=origin,
                origin_kind=origin_kind,
                source_format=table.source_format,
                delimiter=table.delimiter,
                sha256=sha256,
                size_bytes=size_bytes,
                profile=profile_frame(table.frame),
            )
            version, created = self._repository.add(staged)
            return Registration(version=version, created=created)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _check_size(self, label: str, size: int) -> None:
        limit = self._settings.max_dataset_bytes
        if size > limit:
            raise OpmlError(
                f"{label} is larger than the dataset size limit ({size:,} bytes > {limit:,} bytes); "
                "raise OPML_MAX_DATASET_MB or register a smaller file."
            )

    def _not_found(self, name: str) -> NotFoundError:
        known = [dataset.name for dataset in self._repository.list_datasets()]
        hint = f"registered datasets: {', '.join(known)}" if known else "no datasets are registered yet"
        return NotFoundError(f"Dataset {name!r} not found; {hint}.")


def _copy_hashed(reader, destination: Path, max_bytes: int, label: str) -> tuple[str, int]:
    """Copy a binary stream to ``destination``, returning its sha256 and size."""
    digest = hashlib.sha256()
    size = 0
    with destination.open("wb") as writer:
        while chunk := reader.read(COPY_CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise OpmlError(
                    f"{label} is larger than the dataset size limit (over {max_bytes:,} bytes); "
                    "raise OPML_MAX_DATASET_MB or register a smaller file."
                )
            digest.update(chunk)
            writer.write(chunk)
    return digest.hexdigest(), size
