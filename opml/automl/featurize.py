"""Featurization (imputation, scaling, one-hot encoding) and the model's input schema."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

MAX_ONE_HOT_CATEGORIES = 50
"""Rarer categories beyond this many per column share one "infrequent" feature."""
MISSING_CATEGORY = "(missing)"


@dataclass(frozen=True)
class FeatureSchema:
    name: str
    dtype: str
    """``integer``, ``number``, ``string`` or ``boolean``."""
    categories: list[str] | None = None
    """Values seen in training, for string and boolean features."""
    min: float | None = None
    max: float | None = None
    nullable: bool = False


@dataclass(frozen=True)
class ModelSchema:
    """The input columns and output classes of a model, which drive validation, Swagger, forms and examples."""

    features: list[FeatureSchema]
    label: str
    classes: list
    example: dict
    """A row of the training data, as a scoring client would send it."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelSchema:
        return cls(
            features=[FeatureSchema(**feature) for feature in data["features"]],
            label=data["label"],
            classes=data["classes"],
            example=data["example"],
        )


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def build_featurizer(features: pd.DataFrame) -> ColumnTransformer:
    """Return an unfitted transformer: numbers imputed and scaled, other columns one-hot encoded."""
    # scikit-learn loads in about a second, which every CLI command would pay at import.
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [name for name in features.columns if is_numeric(features[name])]
    categorical = [name for name in features.columns if name not in numeric]
    return ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY),
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist",
                        max_categories=MAX_ONE_HOT_CATEGORIES,
                        sparse_output=False,
                    ),
                ),
                categorical,
            ),
        ],
        verbose_feature_names_out=False,
    )


def as_categorical_strings(features: pd.DataFrame) -> pd.DataFrame:
    """Return a copy with every non-numeric column as Python strings (None where missing)."""
    converted = features.copy()
    for name in converted.columns:
        if not is_numeric(converted[name]):
            column = converted[name]
            converted[name] = column.astype(object).where(column.notna(), None).map(lambda v: v if v is None else str(v))
    return converted


def infer_schema(features: pd.DataFrame, label: str, classes: list) -> ModelSchema:
    feature_schemas = []
    for name in features.columns:
        column = features[name]
        nullable = bool(column.isna().any())
        if is_numeric(column):
            dtype = "integer" if pd.api.types.is_integer_dtype(column) else "number"
            feature_schemas.append(
                FeatureSchema(
                    name=str(name),
                    dtype=dtype,
                    min=_plain(column.min()),
                    max=_plain(column.max()),
                    nullable=nullable,
                )
            )
        else:
            dtype = "boolean" if pd.api.types.is_bool_dtype(column) else "string"
            categories = sorted({str(value) for value in column.dropna().unique()})
            feature_schemas.append(FeatureSchema(name=str(name), dtype=dtype, categories=categories, nullable=nullable))

    return ModelSchema(
        features=feature_schemas,
        label=label,
        classes=[_plain(value) for value in classes],
        example=_example_row(features),
    )


def _example_row(features: pd.DataFrame) -> dict:
    complete = features.dropna()
    row = (complete if len(complete) else features).iloc[0]
    return {str(name): _plain(value) for name, value in row.items()}


def _plain(value):
    """Return a JSON-ready Python value for a numpy or pandas scalar."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class CompiledFeaturizer:
    """The fitted featurizer's transform redone with numpy, for the small batches of scoring.

    scikit-learn's ColumnTransformer spends about 10 ms per call on checks,
    which dominates scoring a few rows. This gives the same matrix: numbers
    median-imputed then standardized, then one indicator column per known
    category, all zeros for a category not seen in training.
    """

    numeric: list[str]
    medians: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    categorical: list[str]
    category_positions: list[dict[str, int]]
    """Per categorical column: category value to output column, counted from the first indicator."""
    width: int

    def transform(self, features: pd.DataFrame) -> np.ndarray:
        rows = len(features)
        output = np.zeros((rows, self.width))
        if self.numeric:
            numbers = features[self.numeric].to_numpy(dtype=float, na_value=np.nan)
            numbers = np.where(np.isnan(numbers), self.medians, numbers)
            output[:, : len(self.numeric)] = (numbers - self.means) / self.scales
        for name, positions in zip(self.categorical, self.category_positions):
            for row, value in enumerate(features[name].tolist()):
                key = MISSING_CATEGORY if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
                column = positions.get(key)
                if column is not None:
                    output[row, column] = 1.0
        return output


def compile_featurizer(featurizer: ColumnTransformer) -> CompiledFeaturizer | None:
    """Return the numpy version of a fitted featurizer, or None when it grouped rare categories."""
    transformers = dict((name, (pipeline, columns)) for name, pipeline, columns in featurizer.transformers_)
    numeric_pipeline, numeric = transformers.get("numeric", (None, []))
    categorical_pipeline, categorical = transformers.get("categorical", (None, []))
    numeric, categorical = list(numeric), list(categorical)

    medians = means = scales = np.zeros(0)
    if numeric:
        imputer, scaler = numeric_pipeline.named_steps["simpleimputer"], numeric_pipeline.named_steps["standardscaler"]
        medians, means, scales = imputer.statistics_, scaler.mean_, scaler.scale_

    positions: list[dict[str, int]] = []
    offset = len(numeric)
    if categorical:
        encoder = categorical_pipeline.named_steps["onehotencoder"]
        if any(infrequent is not None for infrequent in (encoder.infrequent_categories_ or [])):
            return None
        for categories in encoder.categories_:
            positions.append({str(value): offset + index for index, value in enumerate(categories)})
            offset += len(categories)
    return CompiledFeaturizer(numeric, medians, means, scales, categorical, positions, offset)
