"""Azure's classification metrics against scikit-learn's on fixed predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from opml.automl.engine import primary_metric_value
from opml.automl.metrics import chart_data, classification_metrics
from opml.automl.settings import CLASSIFICATION_METRICS, PRIMARY_METRICS

Y_BINARY = np.array([0, 0, 1, 1, 0, 1, 0, 0, 1, 0])
P_BINARY = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.05, 0.7, 0.3])
PROBABILITIES_BINARY = np.column_stack([1 - P_BINARY, P_BINARY])

Y_THREE = np.array([0, 1, 2, 2, 1, 0, 2, 1])
PROBABILITIES_THREE = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.2, 0.5, 0.3],
        [0.1, 0.2, 0.7],
        [0.3, 0.4, 0.3],
        [0.1, 0.8, 0.1],
        [0.4, 0.4, 0.2],
        [0.2, 0.1, 0.7],
        [0.6, 0.3, 0.1],
    ]
)


def test_binary_metrics_match_sklearn() -> None:
    metrics = classification_metrics(Y_BINARY, PROBABILITIES_BINARY)

    predicted = (P_BINARY > 0.5).astype(int)
    assert set(metrics) == set(CLASSIFICATION_METRICS)
    assert metrics["AUC_weighted"] == pytest.approx(skm.roc_auc_score(Y_BINARY, P_BINARY))
    assert metrics["AUC_macro"] == pytest.approx(skm.roc_auc_score(Y_BINARY, P_BINARY))
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(Y_BINARY, predicted))
    assert metrics["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(Y_BINARY, predicted))
    assert metrics["f1_score_weighted"] == pytest.approx(skm.f1_score(Y_BINARY, predicted, average="weighted"))
    assert metrics["f1_score_macro"] == pytest.approx(skm.f1_score(Y_BINARY, predicted, average="macro"))
    assert metrics["precision_score_weighted"] == pytest.approx(
        skm.precision_score(Y_BINARY, predicted, average="weighted")
    )
    assert metrics["recall_score_weighted"] == pytest.approx(skm.recall_score(Y_BINARY, predicted, average="weighted"))
    assert metrics["log_loss"] == pytest.approx(skm.log_loss(Y_BINARY, PROBABILITIES_BINARY))
    assert metrics["matthews_correlation"] == pytest.approx(skm.matthews_corrcoef(Y_BINARY, predicted))


def test_binary_average_precision_weights_both_classes() -> None:
    metrics = classification_metrics(Y_BINARY, PROBABILITIES_BINARY)

    positive = skm.average_precision_score(Y_BINARY, P_BINARY)
    negative = skm.average_precision_score(1 - Y_BINARY, 1 - P_BINARY)
    expected = (positive * Y_BINARY.sum() + negative * (1 - Y_BINARY).sum()) / len(Y_BINARY)
    assert metrics["average_precision_score_weighted"] == pytest.approx(expected)


def test_binary_auc_micro_uses_both_columns() -> None:
    metrics = classification_metrics(Y_BINARY, PROBABILITIES_BINARY)

    indicator = np.column_stack([1 - Y_BINARY, Y_BINARY])
    assert metrics["AUC_micro"] == pytest.approx(skm.roc_auc_score(indicator.ravel(), PROBABILITIES_BINARY.ravel()))


def test_norm_macro_recall_rescales_chance() -> None:
    metrics = classification_metrics(Y_BINARY, PROBABILITIES_BINARY)

    macro_recall = skm.recall_score(Y_BINARY, (P_BINARY > 0.5).astype(int), average="macro")
    assert metrics["norm_macro_recall"] == pytest.approx((macro_recall - 0.5) / 0.5)


def test_multiclass_metrics_match_sklearn() -> None:
    metrics = classification_metrics(Y_THREE, PROBABILITIES_THREE)

    predicted = PROBABILITIES_THREE.argmax(axis=1)
    assert metrics["AUC_weighted"] == pytest.approx(
        skm.roc_auc_score(Y_THREE, PROBABILITIES_THREE, multi_class="ovr", average="weighted")
    )
    assert metrics["AUC_macro"] == pytest.approx(
        skm.roc_auc_score(Y_THREE, PROBABILITIES_THREE, multi_class="ovr", average="macro")
    )
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(Y_THREE, predicted))
    recall = skm.recall_score(Y_THREE, predicted, average="macro")
    assert metrics["norm_macro_recall"] == pytest.approx((recall - 1 / 3) / (2 / 3))


@pytest.mark.parametrize("name", PRIMARY_METRICS)
def test_fast_primary_metric_matches_full(name: str) -> None:
    full = classification_metrics(Y_THREE, PROBABILITIES_THREE)[name]

    fast = primary_metric_value(name, Y_THREE, PROBABILITIES_THREE, 3)

    assert fast == pytest.approx(full)


def test_chart_data_shapes() -> None:
    charts = chart_data(Y_BINARY, PROBABILITIES_BINARY, ["no", "yes"])

    assert charts["classes"] == ["no", "yes"]
    assert [curve["class"] for curve in charts["roc"]] == ["yes"]
    assert charts["roc"][0]["auc"] == pytest.approx(skm.roc_auc_score(Y_BINARY, P_BINARY))
    assert charts["confusion_matrix"] == skm.confusion_matrix(Y_BINARY, (P_BINARY > 0.5).astype(int)).tolist()
    assert charts["gains"][0]["gain"][-1] == pytest.approx(1.0)
    assert len(charts["calibration"][0]["mean_predicted"]) > 0
