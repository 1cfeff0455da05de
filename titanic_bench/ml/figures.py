"""The plots logged with every run, drawn on matplotlib Figure objects.

Figures are built with ``matplotlib.figure.Figure``, not pyplot, so nothing here picks
a backend or keeps figures open: a worker without a display, a notebook or a test can
all import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class BoardEntry:
    """One experiment on the leaderboard picture: each metric's CV (mean, low, high) and floor."""

    name: str
    intervals: Mapping[str, tuple[float, float, float]]
    floors: Mapping[str, float]
    champion: bool = False


def leaderboard_figure(entries: Sequence[BoardEntry], metrics: Sequence[str]) -> Figure:
    """One panel per metric: each experiment's cross-validated mean with its 95% interval,
    its floor as a line across its row, the champion starred. Best first, top to bottom."""
    figure = Figure(figsize=(5.5 * len(metrics), 1.2 + 0.55 * len(entries)), layout="constrained")
    rows = list(reversed(entries))  # matplotlib counts rows from the bottom
    labels = [f"★ {entry.name} (champion)" if entry.champion else entry.name for entry in rows]
    for axes, metric in zip(
        figure.subplots(1, len(metrics), sharey=True, squeeze=False)[0], metrics, strict=True
    ):
        for y, entry in enumerate(rows):
            if metric in entry.intervals:
                mean, low, high = entry.intervals[metric]
                marker, colour = ("*", "tab:orange") if entry.champion else ("o", "tab:blue")
                axes.errorbar(
                    mean, y, xerr=[[mean - low], [high - mean]], fmt=marker, color=colour, capsize=4, ms=9
                )
            if metric in entry.floors:
                axes.vlines(entry.floors[metric], y - 0.4, y + 0.4, colors="tab:red", linestyles="--")
        axes.set_yticks(range(len(rows)), labels)
        axes.set_title(f"cross-validated {metric} (mean, 95% CI)")
        axes.set_xlabel(f"{metric}; red dashes: the experiment's floor")
        axes.grid(axis="x", alpha=0.3)
    return figure
