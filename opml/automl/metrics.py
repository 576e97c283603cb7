"""Azure ML's classification metrics and the chart data of a set of predictions.

Names and definitions follow Azure AutoML's classification metrics. The
``_weighted`` averages weight each class by its support. ``norm_macro_recall``
rescales macro recall so that random guessing scores 0. The AUC and average
precision variants are computed one class against the rest, for two classes
too.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from opml.automl.settings import CLASSIFICATION_METRICS, PRIMARY_METRICS

__all__ = ["CLASSIFICATION_METRICS", "PRIMARY_METRICS", "chart_data", "classification_metrics", "one_hot"]

CURVE_POINTS = 200
CALIBRATION_BINS = 10
GAINS_POINTS = 20


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Return the indicator matrix of integer labels, one column per class, also for two classes."""
    indicator = np.zeros((len(y), n_classes))
    indicator[np.arange(len(y)), y] = 1.0
    return indicator


def classification_metrics(y: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Compute every metric of ``CLASSIFICATION_METRICS``.

    ``y`` contains integer class indices 0..k-1 and ``probabilities`` has one
    column per class. Predicted classes are the most probable ones.
    """
    n_classes = probabilities.shape[1]
    # float32 outputs (XGBoost) sum to 1 only within rounding, which log_loss warns about.
    probabilities = np.asarray(probabilities, dtype=float)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    predicted = probabilities.argmax(axis=1)
    indicator = one_hot(y, n_classes)
    support = indicator.sum(axis=0)
    present = support > 0

    auc_per_class = np.array(
        [skm.roc_auc_score(indicator[:, k], probabilities[:, k]) if 0 < support[k] < len(y) else np.nan for k in range(n_classes)]
    )
    precision_per_class = np.array(
        [
            skm.average_precision_score(indicator[:, k], probabilities[:, k]) if support[k] > 0 else np.nan
            for k in range(n_classes)
        ]
    )
    macro_recall = skm.recall_score(y, predicted, average="macro", labels=np.flatnonzero(present), zero_division=0)
    chance = 1.0 / n_classes

    return {
        "AUC_weighted": _weighted(auc_per_class, support),
        "AUC_macro": float(np.nanmean(auc_per_class)),
        "AUC_micro": float(skm.roc_auc_score(indicator.ravel(), probabilities.ravel())),
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, predicted)),
        "f1_score_weighted": float(skm.f1_score(y, predicted, average="weighted", zero_division=0)),
        "f1_score_macro": float(skm.f1_score(y, predicted, average="macro", zero_division=0)),
        "precision_score_weighted": float(skm.precision_score(y, predicted, average="weighted", zero_division=0)),
        "recall_score_weighted": float(skm.recall_score(y, predicted, average="weighted", zero_division=0)),
        "log_loss": float(skm.log_loss(y, probabilities, labels=list(range(n_classes)))),
        "average_precision_score_weighted": _weighted(precision_per_class, support),
        "matthews_correlation": float(skm.matthews_corrcoef(y, predicted)),
        "norm_macro_recall": float(max(0.0, (macro_recall - chance) / (1.0 - chance))),
    }


def _weighted(per_class: np.ndarray, support: np.ndarray) -> float:
    defined = ~np.isnan(per_class)
    return float(np.average(per_class[defined], weights=support[defined]))


def chart_data(y: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> dict:
    """Return the evaluation charts as plain lists, ready to store as JSON.

    With two classes the curves are of the positive class (the second).
    With more, there is one curve per class against the rest. Each curve is
    thinned to about ``CURVE_POINTS`` points.
    """
    n_classes = probabilities.shape[1]
    indicator = one_hot(y, n_classes)
    shown = [1] if n_classes == 2 else list(range(n_classes))
    predicted = probabilities.argmax(axis=1)

    return {
        "classes": class_names,
        "roc": [_roc(indicator[:, k], probabilities[:, k], class_names[k]) for k in shown],
        "precision_recall": [_precision_recall(indicator[:, k], probabilities[:, k], class_names[k]) for k in shown],
        "confusion_matrix": skm.confusion_matrix(y, predicted, labels=list(range(n_classes))).tolist(),
        "calibration": [_calibration(indicator[:, k], probabilities[:, k], class_names[k]) for k in shown],
        "gains": [_gains(indicator[:, k], probabilities[:, k], class_names[k]) for k in shown],
    }


def _thin(*columns: np.ndarray) -> list[list[float]]:
    step = max(1, len(columns[0]) // CURVE_POINTS)
    keep = np.unique(np.r_[np.arange(0, len(columns[0]), step), len(columns[0]) - 1])
    return [[round(float(value), 5) for value in column[keep]] for column in columns]


def _roc(truth: np.ndarray, score: np.ndarray, name: str) -> dict:
    false_positive_rate, true_positive_rate, _ = skm.roc_curve(truth, score)
    fpr, tpr = _thin(false_positive_rate, true_positive_rate)
    return {"class": name, "fpr": fpr, "tpr": tpr, "auc": float(skm.auc(false_positive_rate, true_positive_rate))}


def _precision_recall(truth: np.ndarray, score: np.ndarray, name: str) -> dict:
    precision, recall, _ = skm.precision_recall_curve(truth, score)
    precision, recall = _thin(precision, recall)
    return {
        "class": name,
        "precision": precision,
        "recall": recall,
        "average_precision": float(skm.average_precision_score(truth, score)),
    }


def _calibration(truth: np.ndarray, score: np.ndarray, name: str) -> dict:
    observed, predicted = calibration_curve(truth, score, n_bins=CALIBRATION_BINS, strategy="quantile")
    return {"class": name, "mean_predicted": predicted.tolist(), "fraction_positive": observed.tolist()}


def _gains(truth: np.ndarray, score: np.ndarray, name: str) -> dict:
    """Cumulative gains and lift: the share of positives found in the top x of rows ranked by score."""
    order = np.argsort(-score, kind="stable")
    found = np.cumsum(truth[order]) / max(truth.sum(), 1)
    fractions = np.linspace(1 / GAINS_POINTS, 1.0, GAINS_POINTS)
    gains = [float(found[max(0, int(round(fraction * len(truth))) - 1)]) for fraction in fractions]
    return {
        "class": name,
        "fraction": [round(float(value), 4) for value in fractions],
        "gain": [round(value, 5) for value in gains],
        "lift": [round(gain / fraction, 5) for gain, fraction in zip(gains, fractions)],
    }
