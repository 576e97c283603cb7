"""AutoML settings, named as Azure's AutoMLConfig names them where it has a name."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from opml.errors import OpmlError

PRIMARY_METRICS = (
    "AUC_weighted",
    "accuracy",
    "average_precision_score_weighted",
    "norm_macro_recall",
    "precision_score_weighted",
)
CLASSIFICATION_METRICS = (
    "AUC_weighted",
    "AUC_macro",
    "AUC_micro",
    "accuracy",
    "balanced_accuracy",
    "f1_score_weighted",
    "f1_score_macro",
    "precision_score_weighted",
    "recall_score_weighted",
    "log_loss",
    "average_precision_score_weighted",
    "matthews_correlation",
    "norm_macro_recall",
)

# Azure AutoML model names and the FLAML learners that train them.
ALGORITHMS = {
    "LightGBM": "lgbm",
    "XGBoostClassifier": "xgboost",
    "RandomForest": "rf",
    "ExtremeRandomTrees": "extra_tree",
    "LogisticRegression": "lrl2",
}
VOTING_ENSEMBLE = "VotingEnsemble"
TASKS = ("classification",)


@dataclass(frozen=True)
class AutoMLSettings:
    label_column_name: str
    primary_metric: str = "AUC_weighted"
    task: str = "classification"
    experiment_timeout_seconds: float = 120.0
    """Time budget of the whole run: search, ensemble, refit and charts."""
    iterations: int | None = None
    """Maximum number of child runs the search tries; None for no limit but the budget."""
    n_cross_validations: int | None = 5
    """Folds of cross-validation; None when ``validation_size`` is used instead."""
    validation_size: float | None = None
    """Fraction of the rows held out for validation, instead of cross-validation."""
    enable_early_stopping: bool = True
    blocked_models: tuple[str, ...] = ()
    enable_voting_ensemble: bool = True
    random_seed: int = 0
    max_ensemble_iterations: int = 15

    @property
    def allowed_models(self) -> list[str]:
        return [name for name in ALGORITHMS if name not in self.blocked_models]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["blocked_models"] = list(self.blocked_models)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> AutoMLSettings:
        return cls(**{**data, "blocked_models": tuple(data.get("blocked_models", ()))})

    def validate(self) -> AutoMLSettings:
        """Check the settings on their own, before any data is read."""
        if self.task not in TASKS:
            raise OpmlError(f"Invalid task {self.task!r}: opml supports {', '.join(TASKS)}.")
        if self.primary_metric not in PRIMARY_METRICS:
            raise OpmlError(
                f"Invalid primary metric {self.primary_metric!r} for {self.task}: "
                f"use one of {', '.join(PRIMARY_METRICS)}."
            )
        if not self.experiment_timeout_seconds > 0:
            raise OpmlError(
                f"Invalid time budget {self.experiment_timeout_seconds:g} s: give a number of seconds greater than 0."
            )
        if self.iterations is not None and self.iterations < 1:
            raise OpmlError(f"Invalid iterations {self.iterations}: give 1 or more, or leave it unset.")
        if (self.n_cross_validations is None) == (self.validation_size is None):
            raise OpmlError("Give either n_cross_validations or validation_size, not both and not neither.")
        if self.n_cross_validations is not None and not 2 <= self.n_cross_validations <= 20:
            raise OpmlError(f"Invalid n_cross_validations {self.n_cross_validations}: give 2 to 20 folds.")
        if self.validation_size is not None and not 0.05 <= self.validation_size <= 0.5:
            raise OpmlError(f"Invalid validation_size {self.validation_size:g}: give a fraction from 0.05 to 0.5.")
        unknown = sorted(set(self.blocked_models) - set(ALGORITHMS))
        if unknown:
            raise OpmlError(f"Unknown blocked models {', '.join(unknown)}: choose from {', '.join(ALGORITHMS)}.")
        if not self.allowed_models:
            raise OpmlError("Every model is blocked: unblock at least one of " + ", ".join(ALGORITHMS) + ".")
        return self

    def validate_data(self, frame: pd.DataFrame, dataset_ref: str) -> None:
        """Check that the data can train a classifier under these settings."""
        label = self.label_column_name
        if label not in frame.columns:
            raise OpmlError(
                f"Label column {label!r} not found in {dataset_ref}; its columns are {', '.join(map(str, frame.columns))}."
            )
        if len(frame.columns) < 2:
            raise OpmlError(f"{dataset_ref} has no feature columns besides the label {label!r}.")

        counts = frame[label].dropna().value_counts()
        if len(counts) < 2:
            found = f"only {_plain_repr(counts.index[0])}" if len(counts) else "no values"
            raise OpmlError(f"Label column {label!r} of {dataset_ref} has {found}; classification needs 2 or more classes.")

        folds = self.n_cross_validations or 2
        rare = counts[counts < folds]
        if len(rare):
            raise OpmlError(
                f"Too few rows for {folds}-fold validation in {dataset_ref}: class {_plain_repr(rare.index[0])} of {label!r} "
                f"has {int(rare.iloc[0])} row(s). Use fewer folds, more data, or drop that class."
            )


def _plain_repr(value) -> str:
    """Return repr() of a label value as Python writes it, without numpy's type wrapper."""
    return repr(value.item() if hasattr(value, "item") else value)
