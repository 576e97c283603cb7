"""The AutoML search on FLAML: child runs with held-out metrics, an ensemble, the refit model.

FLAML chooses learners and hyperparameters. FLAML passes every fold's fitted
estimator and validation rows to a custom metric function, so the engine keeps
each candidate's held-out (out-of-fold) probabilities. Those give the Azure
metrics and charts of each child run and feed the greedy ensemble selection
that builds the VotingEnsemble, without refitting anything during the search.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import LabelEncoder

from opml.automl.featurize import as_categorical_strings, build_featurizer, compile_featurizer, infer_schema
from opml.automl.metrics import chart_data, classification_metrics, one_hot
from opml.automl.model import EnsembleMember, TrainedModel
from opml.automl.settings import ALGORITHMS, VOTING_ENSEMBLE, AutoMLSettings

log = logging.getLogger(__name__)

SEARCH_SHARE = 0.85
"""Share of the time budget given to FLAML's search; the rest is for the ensemble, refit and charts."""
ENSEMBLE_POOL = 20
IMPORTANCE_ROWS = 1000
ESTIMATOR_ALGORITHMS = {
    "LGBMEstimator": "LightGBM",
    "XGBoostSklearnEstimator": "XGBoostClassifier",
    "RandomForestEstimator": "RandomForest",
    "ExtraTreesEstimator": "ExtremeRandomTrees",
    "LRL2Classifier": "LogisticRegression",
}


@dataclass
class Candidate:
    """One child run: a trained configuration with its held-out predictions."""

    iteration: int
    algorithm: str
    hyperparameters: dict
    duration_s: float
    metrics: dict[str, float]
    charts: dict
    held_out: np.ndarray = field(repr=False)
    """Probabilities for the validation rows, in the order of ``validation_rows``."""
    estimator_class: type | None = field(default=None, repr=False)
    estimator_params: dict = field(default_factory=dict, repr=False)
    ensemble_weights: dict[int, float] | None = None
    """For the VotingEnsemble: the weight of each member, by iteration."""


@dataclass
class SearchResult:
    candidates: list[Candidate]
    best: Candidate
    models: dict[int, TrainedModel]
    """The refit models that were kept, by child iteration; the best is among them."""
    feature_importance: dict[int, list[dict]]
    label_counts: dict


class _FoldCollector:
    """The custom metric FLAML calls once per fold; it assembles candidates from the folds."""

    def __init__(self, y: np.ndarray, n_classes: int, folds: int, validation_rows: np.ndarray, class_names, settings, on_child):
        self.y = y
        self.n_classes = n_classes
        self.folds = folds
        self.position = pd.Series(np.arange(len(validation_rows)), index=validation_rows)
        self.class_names = class_names
        self.settings = settings
        self.on_child = on_child
        self.pending: dict[str, dict] = {}
        self.candidates: list[Candidate] = []
        self.last_finish = time.monotonic()

    def __call__(self, X_val, y_val, estimator, labels, X_train, y_train, *args):
        probabilities = estimator.predict_proba(X_val)
        # A configuration's folds share the sample size: training plus validation rows. The training
        # rows alone differ by one between folds when the rows do not divide evenly.
        sample_rows = len(X_train) + len(X_val)
        key = json.dumps([type(estimator).__name__, sample_rows, _jsonable(estimator.params)], sort_keys=True)
        entry = self.pending.setdefault(key, {"rows": [], "probabilities": []})
        entry["rows"].append(np.asarray(X_val.index))
        entry["probabilities"].append(probabilities)
        if len(entry["rows"]) == self.folds:
            self._complete(self.pending.pop(key), estimator)

        fold_score = primary_metric_value(self.settings.primary_metric, np.asarray(y_val), probabilities, self.n_classes)
        return 1.0 - fold_score, {self.settings.primary_metric: fold_score}

    def _complete(self, entry: dict, estimator) -> None:
        held_out = np.full((len(self.position), self.n_classes), np.nan)
        for rows, probabilities in zip(entry["rows"], entry["probabilities"]):
            held_out[self.position.loc[rows].to_numpy()] = probabilities
        now = time.monotonic()
        candidate = Candidate(
            iteration=len(self.candidates),
            algorithm=ESTIMATOR_ALGORITHMS.get(type(estimator).__name__, type(estimator).__name__),
            hyperparameters=_jsonable(estimator.params),
            duration_s=now - self.last_finish,
            metrics=classification_metrics(self.y, held_out),
            charts=chart_data(self.y, held_out, self.class_names),
            held_out=held_out,
            estimator_class=type(estimator),
            estimator_params=dict(estimator.params),
        )
        self.last_finish = now
        self.candidates.append(candidate)
        log.info(
            "Child run %d: %s %s=%.4f",
            candidate.iteration,
            candidate.algorithm,
            self.settings.primary_metric,
            candidate.metrics[self.settings.primary_metric],
        )
        self.on_child(candidate)


@dataclass
class _TrainingData:
    features: pd.DataFrame
    """The raw feature columns, rows with a missing label dropped."""
    y: np.ndarray
    """Labels encoded as class indices."""
    classes: list
    featurizer: object
    featurized: pd.DataFrame
    """Columns f0, f1, ... of the fitted featurizer's output."""

    @property
    def class_names(self) -> list[str]:
        return [str(value) for value in self.classes]


@dataclass
class _Validation:
    rows: np.ndarray
    """Row positions whose held-out predictions each candidate gets."""
    folds: int
    search_rows: np.ndarray
    flaml_arguments: dict


def train(
    frame: pd.DataFrame,
    settings: AutoMLSettings,
    on_child: Callable[[Candidate], None],
) -> SearchResult:
    """Search, ensemble and refit on ``frame``, calling ``on_child`` with each child run as it completes."""
    started = time.monotonic()
    label = settings.label_column_name
    frame = frame[frame[label].notna()].reset_index(drop=True)
    data = _prepare(frame, label)
    validation = _validation(data, settings)

    search_budget = max(1.0, settings.experiment_timeout_seconds * SEARCH_SHARE - (time.monotonic() - started))
    candidates = _search(data, validation, settings, search_budget, on_child)

    y_validation = data.y[validation.rows]
    if settings.enable_voting_ensemble:
        ensemble = select_ensemble(candidates, y_validation, settings, len(data.classes), data.class_names)
        if ensemble is not None:
            candidates.append(ensemble)
            on_child(ensemble)

    best = max(candidates, key=lambda candidate: candidate.metrics[settings.primary_metric])
    log.info("Best child run %d (%s)", best.iteration, best.algorithm)
    models = _refit_kept(best, candidates, data, infer_schema(data.features, label, data.classes))
    importance = {
        iteration: permutation_importance(model, data.features, data.y, settings) for iteration, model in models.items()
    }

    log.info("Training finished in %.1f s with %d child runs", time.monotonic() - started, len(candidates))
    return SearchResult(
        candidates=candidates,
        best=best,
        models=models,
        feature_importance=importance,
        label_counts={str(key): int(value) for key, value in frame[label].value_counts().items()},
    )


def _prepare(frame: pd.DataFrame, label: str) -> _TrainingData:
    features = frame.drop(columns=[label])
    encoder = LabelEncoder()
    y = encoder.fit_transform(frame[label])
    featurizer = build_featurizer(features)
    featurized = pd.DataFrame(np.asarray(featurizer.fit_transform(as_categorical_strings(features)), dtype=float))
    featurized.columns = [f"f{i}" for i in range(featurized.shape[1])]
    log.info("Featurized %d rows into %d features", *featurized.shape)
    return _TrainingData(features, y, list(encoder.classes_), featurizer, featurized)


def _validation(data: _TrainingData, settings: AutoMLSettings) -> _Validation:
    """Fix the validation rows up front, so every candidate is scored on the same rows."""
    all_rows = np.arange(len(data.featurized))
    if settings.n_cross_validations:
        folds = settings.n_cross_validations
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=settings.random_seed)
        arguments = {"eval_method": "cv", "n_splits": folds, "split_type": splitter}
        return _Validation(rows=all_rows, folds=folds, search_rows=all_rows, flaml_arguments=arguments)

    _, held_out = train_test_split(
        all_rows, test_size=settings.validation_size, stratify=data.y, random_state=settings.random_seed
    )
    held_out = np.sort(held_out)
    arguments = {"eval_method": "holdout", "X_val": data.featurized.iloc[held_out], "y_val": data.y[held_out]}
    return _Validation(rows=held_out, folds=1, search_rows=np.setdiff1d(all_rows, held_out), flaml_arguments=arguments)


def _search(
    data: _TrainingData,
    validation: _Validation,
    settings: AutoMLSettings,
    budget_s: float,
    on_child: Callable[[Candidate], None],
) -> list[Candidate]:
    from flaml import AutoML

    collector = _FoldCollector(
        data.y[validation.rows], len(data.classes), validation.folds, validation.rows, data.class_names, settings, on_child
    )
    AutoML().fit(
        data.featurized.iloc[validation.search_rows],
        data.y[validation.search_rows],
        task="classification",
        metric=collector,
        time_budget=budget_s,
        max_iter=settings.iterations,
        estimator_list=[ALGORITHMS[name] for name in settings.allowed_models],
        early_stop=settings.enable_early_stopping,
        seed=settings.random_seed,
        retrain_full=False,
        verbose=0,
        **validation.flaml_arguments,
    )
    if not collector.candidates:
        raise RuntimeError(f"No child run completed within the search budget of {budget_s:.0f} s; raise the time budget.")
    return collector.candidates


def _refit_kept(
    best: Candidate, candidates: list[Candidate], data: _TrainingData, schema
) -> dict[int, TrainedModel]:
    """Refit the best child run on all rows, and each member when it is an ensemble."""
    members = [best] if best.ensemble_weights is None else [candidates[i] for i in best.ensemble_weights]
    fitted = {member.iteration: _refit(member, data.featurized, data.y, len(data.classes)) for member in members}
    compiled = compile_featurizer(data.featurizer)
    models = {
        iteration: TrainedModel(
            algorithm=candidates[iteration].algorithm,
            featurizer=data.featurizer,
            members=[EnsembleMember(candidates[iteration].algorithm, 1.0, estimator)],
            classes=data.classes,
            schema=schema,
            compiled_featurizer=compiled,
        )
        for iteration, estimator in fitted.items()
    }
    if best.ensemble_weights is not None:
        models[best.iteration] = TrainedModel(
            algorithm=VOTING_ENSEMBLE,
            featurizer=data.featurizer,
            members=[
                EnsembleMember(candidates[i].algorithm, weight, fitted[i]) for i, weight in best.ensemble_weights.items()
            ],
            classes=data.classes,
            schema=schema,
            compiled_featurizer=compiled,
        )
    return models


def primary_metric_value(name: str, y: np.ndarray, probabilities: np.ndarray, n_classes: int) -> float:
    """Compute one primary metric fast, for the search and the ensemble selection."""
    predicted = probabilities.argmax(axis=1)
    if name == "accuracy":
        return float(skm.accuracy_score(y, predicted))
    if name == "precision_score_weighted":
        return float(skm.precision_score(y, predicted, average="weighted", zero_division=0))
    if name == "norm_macro_recall":
        chance = 1.0 / n_classes
        recall = skm.recall_score(y, predicted, average="macro", zero_division=0)
        return float(max(0.0, (recall - chance) / (1.0 - chance)))

    indicator = one_hot(y, n_classes)
    support = indicator.sum(axis=0)
    score = skm.roc_auc_score if name == "AUC_weighted" else skm.average_precision_score
    per_class = [score(indicator[:, k], probabilities[:, k]) if 0 < support[k] < len(y) else np.nan for k in range(n_classes)]
    per_class = np.array(per_class)
    defined = ~np.isnan(per_class)
    return float(np.average(per_class[defined], weights=support[defined]))


def select_ensemble(
    candidates: list[Candidate], y: np.ndarray, settings: AutoMLSettings, n_classes: int, class_names: list[str]
) -> Candidate | None:
    """Build the VotingEnsemble by greedy selection with replacement (Caruana et al., 2004).

    Each step adds the candidate whose held-out probabilities, averaged into
    the ensemble so far, raise the primary metric most. Returns None when
    the selection settles on a single model.
    """
    metric = settings.primary_metric
    pool = sorted(candidates, key=lambda candidate: candidate.metrics[metric], reverse=True)[:ENSEMBLE_POOL]
    if len(pool) < 2:
        return None

    started = time.monotonic()
    chosen: list[Candidate] = []
    total = np.zeros_like(pool[0].held_out)
    for _ in range(settings.max_ensemble_iterations):
        scores = [
            primary_metric_value(metric, y, (total + candidate.held_out) / (len(chosen) + 1), n_classes)
            for candidate in pool
        ]
        pick = pool[int(np.argmax(scores))]
        chosen.append(pick)
        total += pick.held_out

    counts = Counter(candidate.iteration for candidate in chosen)
    if len(counts) < 2:
        return None
    weights = {iteration: count / len(chosen) for iteration, count in counts.items()}
    blended = total / len(chosen)
    return Candidate(
        iteration=len(candidates),
        algorithm=VOTING_ENSEMBLE,
        hyperparameters={
            "ensembled_iterations": list(weights),
            "ensembled_algorithms": [candidates[i].algorithm for i in weights],
            "ensemble_weights": list(weights.values()),
        },
        duration_s=time.monotonic() - started,
        metrics=classification_metrics(y, blended),
        charts=chart_data(y, blended, class_names),
        held_out=blended,
        ensemble_weights=weights,
    )


def permutation_importance(model: TrainedModel, features: pd.DataFrame, y: np.ndarray, settings: AutoMLSettings) -> list[dict]:
    """Rank raw columns by how much shuffling each one lowers the primary metric on a sample."""
    rng = np.random.default_rng(settings.random_seed)
    rows = rng.choice(len(features), size=min(IMPORTANCE_ROWS, len(features)), replace=False)
    sample, truth = features.iloc[rows].reset_index(drop=True), y[rows]
    n_classes = len(model.classes)
    if len(np.unique(truth)) < 2:
        return []

    baseline = primary_metric_value(settings.primary_metric, truth, model.predict_proba(sample), n_classes)
    importance = []
    for name in features.columns:
        shuffled = sample.copy()
        shuffled[name] = rng.permutation(shuffled[name].to_numpy())
        score = primary_metric_value(settings.primary_metric, truth, model.predict_proba(shuffled), n_classes)
        importance.append({"feature": str(name), "importance": round(baseline - score, 6)})
    return sorted(importance, key=lambda item: item["importance"], reverse=True)


def _refit(candidate: Candidate, featurized: pd.DataFrame, y: np.ndarray, n_classes: int):
    """Fit the candidate's configuration on all rows, as a model that scores one row at a time fast.

    The fit takes a plain array, so scoring also passes arrays: XGBoost
    spends about 7 ms per call converting a DataFrame, against 0.3 ms for
    an array. Prediction then runs on one thread, because a scoring request
    has a few rows and each server worker is a process of its own.
    """
    task = "binary" if n_classes == 2 else "multiclass"
    estimator = candidate.estimator_class(task=task, **candidate.estimator_params)
    estimator.fit(featurized.to_numpy(), y)
    if "n_jobs" in estimator.model.get_params():
        estimator.model.set_params(n_jobs=1)
    return estimator


def _jsonable(params: dict) -> dict:
    plain = {}
    for key, value in params.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (str, int, float, bool)) or value is None:
            plain[key] = value
    return plain
