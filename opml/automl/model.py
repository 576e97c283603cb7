"""The trained model a run produces: featurizer, weighted estimators and schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from opml.automl.featurize import ModelSchema, as_categorical_strings

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer


@dataclass
class EnsembleMember:
    algorithm: str
    weight: float
    estimator: object
    """A fitted FLAML estimator wrapper with ``predict_proba``."""


@dataclass
class TrainedModel:
    """A fitted classifier over raw feature columns; a single model is a one-member ensemble."""

    algorithm: str
    featurizer: ColumnTransformer
    members: list[EnsembleMember]
    classes: list
    """Original label values, in the order of the probability columns."""
    schema: ModelSchema

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.schema.features]

    def featurize(self, features: pd.DataFrame) -> pd.DataFrame:
        transformed = self.featurizer.transform(as_categorical_strings(features[self.feature_names]))
        return pd.DataFrame(np.asarray(transformed, dtype=float), index=features.index).rename(columns=lambda i: f"f{i}")

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return self.predict_proba_featurized(self.featurize(features))

    def predict_proba_featurized(self, featurized: pd.DataFrame) -> np.ndarray:
        total = sum(member.weight for member in self.members)
        blended = sum(member.weight * member.estimator.predict_proba(featurized) for member in self.members)
        return np.asarray(blended) / total

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)[self.predict_proba(features).argmax(axis=1)]
