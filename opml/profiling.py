"""The profile of a dataset version, computed once when it is registered."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

HISTOGRAM_BINS = 20
TOP_VALUES = 20


@dataclass(frozen=True)
class ValueCount:
    value: str
    count: int


@dataclass(frozen=True)
class HistogramBin:
    start: float
    end: float
    count: int


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    dtype: str
    """The pandas dtype the column loads as, such as ``int64`` or ``str``."""
    kind: str
    """``numeric`` or ``categorical``; booleans, strings and dates are categorical."""
    missing: int
    distinct: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    top_values: list[ValueCount] = field(default_factory=list)
    """The most frequent values, most frequent first (categorical columns)."""
    histogram: list[HistogramBin] = field(default_factory=list)
    """Equal-width bins over the non-missing values (numeric columns)."""
    other_count: int = 0
    """Rows whose value is not among ``top_values`` (categorical columns)."""


@dataclass(frozen=True)
class DatasetProfile:
    rows: int
    columns: int
    column_profiles: list[ColumnProfile]

    def column(self, name: str) -> ColumnProfile:
        for profile in self.column_profiles:
            if profile.name == name:
                return profile
        raise KeyError(name)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DatasetProfile:
        columns = [
            ColumnProfile(
                **{
                    **column,
                    "top_values": [ValueCount(**item) for item in column["top_values"]],
                    "histogram": [HistogramBin(**item) for item in column["histogram"]],
                }
            )
            for column in data["column_profiles"]
        ]
        return cls(rows=data["rows"], columns=data["columns"], column_profiles=columns)


def profile_frame(frame: pd.DataFrame) -> DatasetProfile:
    """Compute the profile of every column of ``frame``."""
    return DatasetProfile(
        rows=len(frame),
        columns=len(frame.columns),
        column_profiles=[_profile_column(str(name), frame[name]) for name in frame.columns],
    )


def _profile_column(name: str, series: pd.Series) -> ColumnProfile:
    missing = int(series.isna().sum())
    distinct = int(series.nunique(dropna=True))
    is_numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)

    if is_numeric:
        values = series.dropna().astype("float64")
        values = values[np.isfinite(values)]
        return ColumnProfile(
            name=name,
            dtype=str(series.dtype),
            kind="numeric",
            missing=missing,
            distinct=distinct,
            min=_finite_or_none(values.min()),
            max=_finite_or_none(values.max()),
            mean=_finite_or_none(values.mean()),
            std=_finite_or_none(values.std()),
            histogram=_histogram(values.to_numpy()),
        )

    counts = series.dropna().astype(str).value_counts()
    top = counts.head(TOP_VALUES)
    return ColumnProfile(
        name=name,
        dtype=str(series.dtype),
        kind="categorical",
        missing=missing,
        distinct=distinct,
        top_values=[ValueCount(value=str(value), count=int(count)) for value, count in top.items()],
        other_count=int(counts.sum() - top.sum()),
    )


def _histogram(values: np.ndarray) -> list[HistogramBin]:
    if values.size == 0:
        return []
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    return [
        HistogramBin(start=float(edges[index]), end=float(edges[index + 1]), count=int(count))
        for index, count in enumerate(counts)
    ]


def _finite_or_none(value: float) -> float | None:
    """Return ``value`` as a float, or None where JSON has no number for it (NaN, inf)."""
    number = float(value)
    return number if math.isfinite(number) else None
