"""Split, fit, score and plot: pure functions over a spec and the data, no MLflow.

Metrics and plots come from scikit-learn itself; this module only decides which.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # workers have no display; must precede pyplot

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    RocCurveDisplay,
    accuracy_score,
    classification_report,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from titanic_bench.crossval import one_thread
from titanic_bench.data import TitanicData
from titanic_bench.experiments import SEED, ExperimentSpec
from titanic_bench.features import feature_names

TEST_SIZE = 0.2


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
    metrics = quality_metrics(split.y_test, y_pred, y_score)
    metrics["fit_seconds"] = fitted - started
    metrics["predict_seconds"] = predicted - fitted
    return Evaluation(model=model, metrics=metrics, y_pred=y_pred, y_score=y_score)


def quality_metrics(y_true: Any, y_pred: Any, y_score: Any) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, y_score)),
    }


def report_text(split: Split, evaluation: Evaluation) -> str:
    return str(classification_report(
        split.y_test, evaluation.y_pred, target_names=["Did not survive", "Survived"], digits=4
    ))  # fmt: skip


def confusion_matrix_figure(split: Split, evaluation: Evaluation) -> Figure:
    display = ConfusionMatrixDisplay.from_predictions(
        split.y_test, evaluation.y_pred, display_labels=["Did not survive", "Survived"]
    )
    display.ax_.set_title("Confusion matrix (holdout)")
    figure: Figure = display.figure_
    return figure


def roc_curve_figure(split: Split, evaluation: Evaluation, title: str) -> Figure:
    display = RocCurveDisplay.from_predictions(split.y_test, evaluation.y_score, name=title)
    display.ax_.set_title("ROC curve (holdout)")
    figure: Figure = display.figure_
    return figure


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
        evaluation.model, split.X_test, split.y_test, n_repeats=5, random_state=SEED,
        scoring="roc_auc",
    )  # fmt: skip
    name = "Permutation importance (ROC-AUC drop)"
    return pd.Series(result.importances_mean, index=split.X_test.columns, name=name).sort_values()


def importance_figure(values: pd.Series) -> Figure:
    figure, axes = plt.subplots(figsize=(7, max(3.0, 0.28 * len(values))))
    values.plot.barh(ax=axes)
    axes.set_title(str(values.name))
    figure.tight_layout()
    return figure
