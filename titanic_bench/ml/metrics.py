"""The one table of metrics: what the holdout, cross-validation, gates and the report measure.

Each metric is named by scikit-learn's own scorer, so holdout and cross-validation
compute it the same way. Scorers follow scikit-learn's "greater is better"
convention, which negates losses (``neg_log_loss``); the values here are the metric
itself (a loss stays positive), and :attr:`Metric.greater_is_better` says which way
is better. Importing this module imports no scikit-learn: the plugin reads the names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    name: str
    #: scikit-learn's scorer name (``sklearn.metrics.get_scorer_names()``).
    scorer: str
    greater_is_better: bool = True

    def from_score(self, score: float) -> float:
        """The metric's value from its scorer's (which negates losses)."""
        return float(score) if self.scorer == self.name else -float(score)

    def worsening(self, delta: float) -> float:
        """How much worse ``delta`` (current minus reference) is; negative when better."""
        return -delta if self.greater_is_better else delta

    def rank_key(self, value: float) -> float:
        """Sorting ascending by this puts the best value first."""
        return -value if self.greater_is_better else value


METRICS: tuple[Metric, ...] = (
    Metric("accuracy", "accuracy"),
    Metric("precision", "precision"),
    Metric("recall", "recall"),
    Metric("f1", "f1"),
    Metric("roc_auc", "roc_auc"),
    Metric("log_loss", "neg_log_loss", greater_is_better=False),
)
BY_NAME: Mapping[str, Metric] = {metric.name: metric for metric in METRICS}
METRIC_NAMES: tuple[str, ...] = tuple(BY_NAME)
#: The gate's default metrics; the default selection metric comes first.
DEFAULT_GATE_METRICS: tuple[str, ...] = ("accuracy", "roc_auc")
DEFAULT_SELECTION_METRIC = "roc_auc"


def metric(name: str) -> Metric:
    return BY_NAME[name]


def scoring() -> dict[str, str]:
    """``scoring=`` for scikit-learn: our metric name -> its scorer."""
    return {metric.name: metric.scorer for metric in METRICS}


def score(model: Any, X: Any, y: Any) -> dict[str, float]:
    """Every metric of a fitted classifier on ``X``, ``y``, through scikit-learn's scorers."""
    from sklearn.metrics import check_scoring

    # One multi-metric scorer calls predict and predict_proba once for all metrics.
    scores = check_scoring(model, scoring=scoring())(model, X, y)
    return {name: BY_NAME[name].from_score(value) for name, value in scores.items()}
