"""The plots logged with every run, drawn on matplotlib Figure objects.

Figures are built with ``matplotlib.figure.Figure``, not pyplot, so nothing here picks
a backend or keeps figures open: a worker without a display, a notebook or a test can
all import it.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

from titanic_bench.ml.evaluation import CLASS_NAMES, Evaluation, Split


def importance_figure(values: pd.Series) -> Figure:
    figure = Figure(figsize=(7, max(3.0, 0.28 * len(values))), layout="tight")
    axes = figure.subplots()
    axes.barh(list(map(str, values.index)), values.to_numpy())
    axes.set_title(str(values.name))
    return figure


def confusion_matrix_figure(split: Split, evaluation: Evaluation) -> Figure:
    figure = Figure(layout="tight")
    axes = figure.subplots()
    ConfusionMatrixDisplay.from_predictions(
        split.y_test, evaluation.y_pred, display_labels=list(CLASS_NAMES), ax=axes, colorbar=True
    )
    axes.set_title("Confusion matrix (holdout)")
    return figure


def roc_curve_figure(split: Split, evaluation: Evaluation, title: str) -> Figure:
    figure = Figure(layout="tight")
    axes = figure.subplots()
    RocCurveDisplay.from_predictions(split.y_test, evaluation.y_score, name=title, ax=axes)
    axes.set_title("ROC curve (holdout)")
    return figure


def run_figures(
    title: str, split: Split, evaluation: Evaluation, importances: pd.Series
) -> dict[str, Figure]:
    """Every figure of one experiment's run, by artifact path."""
    return {
        "plots/feature_importance.png": importance_figure(importances),
        "plots/confusion_matrix.png": confusion_matrix_figure(split, evaluation),
        "plots/roc_curve.png": roc_curve_figure(split, evaluation, title),
    }
