"""The trained model a run produces: featurizer, weighted estimators and schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from opml.automl.featurize import CompiledFeaturizer, ModelSchema, as_categorical_strings

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
    compiled_featurizer: CompiledFeaturizer | None = None
    """The numpy copy of ``featurizer`` used for scoring; None falls back to scikit-learn."""

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.schema.features]

    def featurize(self, features: pd.DataFrame) -> np.ndarray:
        if self.compiled_featurizer is not None:
            return self.compiled_featurizer.transform(features)
        return np.asarray(self.featurizer.transform(as_categorical_strings(features[self.feature_names])), dtype=float)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return self.predict_proba_featurized(self.featurize(features))

    def predict_proba_featurized(self, featurized: np.ndarray) -> np.ndarray:
        total = sum(member.weight for member in self.members)
        blended = sum(member.weight * member.estimator.predict_proba(featurized) for member in self.members)
        return np.asarray(blended) / total

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)[self.predict_proba(features).argmax(axis=1)]
