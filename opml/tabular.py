"""Reading a tabular file (CSV, gzipped CSV or Parquet) into a DataFrame.

Every rejection raises ``OpmlError`` naming the file and what would make it
readable, so the same text reaches the page, the CLI and HTTP clients.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from opml.errors import OpmlError

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
CANDIDATE_DELIMITERS = ",;\t|"
SNIFF_BYTES = 64 * 1024
MIN_COLUMNS = 2


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    source_format: str
    """``csv`` or ``parquet``."""
    delimiter: str | None
    """The detected CSV delimiter; None for Parquet."""


def read_table(path: Path, label: str) -> Table:
    """Read the file at ``path``; ``label`` is how messages name it (URL, file name)."""
    with path.open("rb") as handle:
        magic = handle.read(4)

    if magic == PARQUET_MAGIC:
        return _read_parquet(path, label)
    compression = "gzip" if magic[:2] == GZIP_MAGIC else None
    return _read_csv(path, label, compression)


def _read_parquet(path: Path, label: str) -> Table:
    try:
        # Duplicate names make read_table fail with an obscure message, so
        # the schema is checked on its own first.
        _reject_duplicate_columns(pq.read_schema(path).names, label)
        frame = pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as error:
        raise OpmlError(f"{label} is not a readable Parquet file: {error}") from error

    _reject_too_small(frame, label)
    return Table(frame=frame, source_format="parquet", delimiter=None)


def _read_csv(path: Path, label: str, compression: str | None) -> Table:
    sample = _read_text_sample(path, label, compression)
    encoding = _detect_encoding(path, compression)
    delimiter = _detect_delimiter(sample, label)

    header = next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
    _reject_duplicate_columns([name.strip() for name in header], label)

    try:
        frame = pd.read_csv(
            path,
            sep=delimiter,
            compression=compression,
            encoding=encoding,
            skipinitialspace=True,
            low_memory=False,
        )
    except pd.errors.EmptyDataError as error:
        raise OpmlError(f"{label} is empty: a dataset needs a header row and at least one data row.") from error
    except pd.errors.ParserError as error:
        raise OpmlError(
            f"{label} could not be parsed as CSV with delimiter {delimiter!r}: {error}. "
            "Check that every row has as many fields as the header."
        ) from error
    except (UnicodeDecodeError, OSError, EOFError) as error:
        raise OpmlError(f"{label} could not be read as CSV: {error}") from error

    frame.columns = [str(name).strip() for name in frame.columns]
    _reject_too_small(frame, label)
    return Table(frame=frame, source_format="csv", delimiter=delimiter)


def _open_bytes(path: Path, compression: str | None):
    return gzip.open(path, "rb") if compression == "gzip" else path.open("rb")


def _read_text_sample(path: Path, label: str, compression: str | None) -> str:
    try:
        with _open_bytes(path, compression) as handle:
            raw = handle.read(SNIFF_BYTES)
    except (OSError, EOFError) as error:
        raise OpmlError(f"{label} could not be read: {error}") from error

    if not raw.strip():
        raise OpmlError(f"{label} is empty: a dataset needs a header row and at least one data row.")
    if b"\x00" in raw:
        raise OpmlError(f"{label} is not a CSV or Parquet file: it contains binary data.")

    text = raw.decode("utf-8-sig", errors="replace")
    # Cut the sample at its last line break so a half-read row does not
    # confuse delimiter detection.
    if len(raw) == SNIFF_BYTES and "\n" in text:
        text = text[: text.rindex("\n")]

    start = text.lstrip()[:1]
    if start == "<":
        raise OpmlError(
            f"{label} looks like HTML or XML, not CSV or Parquet; "
            "if it came from a web page, use the address of the data file itself."
        )
    if start and start in "{[":
        raise OpmlError(f"{label} looks like JSON, not CSV or Parquet; export it as CSV or Parquet.")
    return text


def _detect_encoding(path: Path, compression: str | None) -> str:
    """Return ``utf-8-sig`` when the whole file decodes as UTF-8, else ``latin-1``."""
    try:
        with _open_bytes(path, compression) as handle:
            utf8 = io.TextIOWrapper(handle, encoding="utf-8-sig")
            while utf8.read(1024 * 1024):
                pass
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8-sig"


def _detect_delimiter(sample: str, label: str) -> str:
    lines = sample.splitlines()[:50]
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=CANDIDATE_DELIMITERS)
        return dialect.delimiter
    except csv.Error:
        pass

    # The sniffer gives up on irregular files; fall back to the candidate
    # that splits the header into the most fields.
    header_counts = Counter({delimiter: lines[0].count(delimiter) for delimiter in CANDIDATE_DELIMITERS})
    delimiter, count = header_counts.most_common(1)[0]
    if count == 0:
        raise OpmlError(
            f"{label} is not tabular: its first line has no comma, semicolon, tab or '|' "
            f"separating columns, and a dataset needs at least {MIN_COLUMNS} columns."
        )
    return delimiter


def _reject_duplicate_columns(names: list[str], label: str) -> None:
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        listed = ", ".join(repr(name) for name in duplicates)
        raise OpmlError(f"{label} has duplicate column names: {listed}. Rename them so each column is unique.")


def _reject_too_small(frame: pd.DataFrame, label: str) -> None:
    if len(frame.columns) < MIN_COLUMNS:
        raise OpmlError(
            f"{label} has {len(frame.columns)} column; a dataset needs at least {MIN_COLUMNS} "
            "(features and a label). Check the delimiter or the file."
        )
    if len(frame) == 0:
        raise OpmlError(f"{label} has a header but no data rows.")
