"""The AutoML engine in-process on a small sample with a short budget."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from opml.automl.engine import train
from opml.automl.settings import VOTING_ENSEMBLE, AutoMLSettings
from tests.conftest import SMALL_ROWS


@pytest.fixture(scope="module")
def small_frame(sample_csv: Path) -> pd.DataFrame:
    return pd.read_csv(sample_csv, nrows=SMALL_ROWS)


@pytest.fixture(scope="module")
def result(small_frame: pd.DataFrame):
    seen = []
    settings = AutoMLSettings(label_column_name="y", experiment_timeout_seconds=8, n_cross_validations=3)
    outcome = train(small_frame, settings, seen.append)
    return outcome, seen


def test_children_reported_as_they_complete(result) -> None:
    outcome, seen = result

    assert len(seen) >= 3
    assert [child.iteration for child in seen] == list(range(len(seen)))
    assert seen == outcome.candidates


def test_children_have_azure_metrics(result) -> None:
    outcome, _ = result

    for child in outcome.candidates:
        assert 0.5 < child.metrics["AUC_weighted"] <= 1.0
        assert len(child.metrics) == 13
        assert child.charts["confusion_matrix"]
    assert {child.algorithm for child in outcome.candidates} & {"LightGBM", "XGBoostClassifier"}


def test_best_is_highest_primary_metric(result) -> None:
    outcome, _ = result

    best_value = max(child.metrics["AUC_weighted"] for child in outcome.candidates)
    assert outcome.best.metrics["AUC_weighted"] == best_value
    assert outcome.best.iteration in outcome.models


def test_ensemble_weights_sum_to_one(result) -> None:
    outcome, _ = result
    ensembles = [child for child in outcome.candidates if child.algorithm == VOTING_ENSEMBLE]

    assert len(ensembles) == 1
    weights = ensembles[0].ensemble_weights
    assert sum(weights.values()) == pytest.approx(1.0)
    assert len(weights) >= 2
    assert ensembles[0].iteration == len(outcome.candidates) - 1


def test_refit_model_predicts_labels(result, small_frame: pd.DataFrame) -> None:
    outcome, _ = result
    model = outcome.models[outcome.best.iteration]

    features = small_frame.drop(columns=["y"]).head(20)
    predictions = model.predict(features)
    probabilities = model.predict_proba(features)

    assert set(predictions) <= {"yes", "no"}
    assert probabilities.shape == (20, 2)
    assert probabilities.sum(axis=1) == pytest.approx([1.0] * 20)
    shuffled = features[list(reversed(features.columns))]
    assert (model.predict(shuffled) == predictions).all()


def test_schema_from_training_data(result, small_frame: pd.DataFrame) -> None:
    outcome, _ = result
    schema = outcome.models[outcome.best.iteration].schema

    features = {feature.name: feature for feature in schema.features}
    assert list(features) == [name for name in small_frame.columns if name != "y"]
    assert features["age"].dtype == "integer"
    assert features["age"].min == small_frame["age"].min()
    assert features["job"].dtype == "string"
    assert "admin." in features["job"].categories
    assert schema.classes == ["no", "yes"]
    assert set(schema.example) == set(features)


def test_feature_importance_ranks_duration(result) -> None:
    outcome, _ = result

    importance = outcome.feature_importance[outcome.best.iteration]
    assert len(importance) == 20
    assert importance[0]["feature"] == "duration"


def test_holdout_validation(small_frame: pd.DataFrame) -> None:
    settings = AutoMLSettings(
        label_column_name="y",
        experiment_timeout_seconds=4,
        n_cross_validations=None,
        validation_size=0.25,
        enable_voting_ensemble=False,
        blocked_models=("RandomForest", "ExtremeRandomTrees", "XGBoostClassifier"),
    )

    outcome = train(small_frame, settings, lambda child: None)

    assert {child.algorithm for child in outcome.candidates} <= {"LightGBM", "LogisticRegression"}
    assert sum(outcome.best.charts["confusion_matrix"][0]) + sum(outcome.best.charts["confusion_matrix"][1]) == 150


def test_rows_not_divisible_by_folds(sample_csv: Path) -> None:
    # 601 rows in 3 folds give training parts of 400 and 401 rows.
    frame = pd.read_csv(sample_csv, nrows=SMALL_ROWS + 1)
    settings = AutoMLSettings(
        label_column_name="y",
        experiment_timeout_seconds=4,
        n_cross_validations=3,
        enable_voting_ensemble=False,
        blocked_models=("RandomForest", "ExtremeRandomTrees", "XGBoostClassifier", "LogisticRegression"),
    )

    outcome = train(frame, settings, lambda child: None)

    assert outcome.candidates
    assert outcome.best.algorithm == "LightGBM"


def test_unseen_category_scores(result, small_frame: pd.DataFrame) -> None:
    outcome, _ = result
    row = small_frame.drop(columns=["y"]).head(1).copy()
    row["job"] = "astronaut"

    assert outcome.models[outcome.best.iteration].predict(row)[0] in {"yes", "no"}


def test_compiled_featurizer_matches_sklearn(result, small_frame: pd.DataFrame) -> None:
    import numpy as np

    from opml.automl.featurize import as_categorical_strings

    model = result[0].models[result[0].best.iteration]
    features = small_frame.drop(columns=["y"]).head(50).copy()
    features.loc[0, "job"] = "astronaut"
    features.loc[1, "age"] = None
    features.loc[2, "marital"] = None

    compiled = model.compiled_featurizer.transform(features)
    reference = model.featurizer.transform(as_categorical_strings(features))

    assert model.compiled_featurizer is not None
    np.testing.assert_allclose(compiled, np.asarray(reference, dtype=float))
