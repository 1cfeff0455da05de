"""Split, fit, score and explain: pure functions over a spec and the data, no MLflow.

Metrics come from scikit-learn's scorers (:mod:`titanic_bench.ml.metrics`); this module
only decides which data they see.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import classification_report
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from titanic_bench.data.loading import TitanicData
from titanic_bench.ml.crossval import one_thread
from titanic_bench.ml.experiments import ExperimentSpec
from titanic_bench.ml.features import feature_names
from titanic_bench.ml.metrics import score
from titanic_bench.ml.seed import SEED

TEST_SIZE = 0.2
#: The labels 0 and 1, as reports and plots show them.
CLASS_NAMES = ("Did not survive", "Survived")


@dataclass(frozen=True)
class Split:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


@dataclass(frozen=True)
class Evaluation:
    """A fitted model and what its holdout says about it."""

    model: Pipeline
    metrics: dict[str, float]
    y_pred: np.ndarray
    y_score: np.ndarray


def holdout_split(data: TitanicData, seed: int = SEED) -> Split:
    """The stratified 80/20 split every experiment is scored on."""
    X_train, X_test, y_train, y_test = train_test_split(
        data.features, data.target, test_size=TEST_SIZE, stratify=data.target, random_state=seed
    )
    return Split(X_train, X_test, y_train, y_test)


def fit_and_score(spec: ExperimentSpec, split: Split) -> Evaluation:
    """Fit the spec's pipeline on the training part and score it on the holdout."""
    model = spec.build()
    with one_thread():
        started = time.perf_counter()
        model.fit(split.X_train, split.y_train)
        fitted = time.perf_counter()
        y_pred = model.predict(split.X_test)
        y_score = model.predict_proba(split.X_test)[:, 1]
        predicted = time.perf_counter()
        metrics = score(model, split.X_test, split.y_test)
    metrics["fit_seconds"] = fitted - started
    metrics["predict_seconds"] = predicted - fitted
    return Evaluation(model=model, metrics=metrics, y_pred=y_pred, y_score=y_score)


def reports(split: Split, evaluation: Evaluation, importances: pd.Series) -> dict[str, str]:
    """The text artifacts of one experiment's run, by path."""
    ranked = importances.sort_values(ascending=False).to_dict()
    return {
        "reports/classification_report.txt": report_text(split, evaluation),
        "reports/feature_importance.json": json.dumps(ranked, indent=2),
    }


def report_text(split: Split, evaluation: Evaluation) -> str:
    report = classification_report(split.y_test, evaluation.y_pred, target_names=list(CLASS_NAMES), digits=4)
    return str(report)


def importances(split: Split, evaluation: Evaluation) -> pd.Series:
    """Native importances where the model has them, else permutation importance on raw columns.

    The series' name says which, and titles the plot.
    """
    estimator = evaluation.model[-1]
    native = getattr(estimator, "feature_importances_", None)
    if native is not None:
        index = feature_names(evaluation.model[0])
        return pd.Series(native, index=index, name="Feature importance").sort_values()
    result = permutation_importance(
        evaluation.model, split.X_test, split.y_test, n_repeats=5, random_state=SEED, scoring="roc_auc"
    )
    name = "Permutation importance (ROC-AUC drop)"
    return pd.Series(result.importances_mean, index=split.X_test.columns, name=name).sort_values()
