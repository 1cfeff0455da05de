"""Repeated stratified k-fold cross-validation with per-fold scores, no MLflow.

The folds depend only on the plan's seed and the data, and every model is fitted
with one BLAS/OpenMP thread, so the scores are the same bit for bit whether the
folds run in this process, in two joblib workers, or in an xdist worker.

:class:`CVPlan` is part of the options, which pytest loads in every session: the
scientific imports wait until a plan is used.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sklearn.model_selection import RepeatedStratifiedKFold

    from titanic_bench.ml.experiments import ExperimentSpec

from titanic_bench.ml.metrics import METRICS, scoring
from titanic_bench.ml.seed import SEED

CI_LEVEL = 0.95


@dataclass(frozen=True)
class CVPlan:
    """How to cross-validate: ``folds`` x ``repeats`` stratified splits from ``seed``."""

    folds: int = 5
    repeats: int = 3
    seed: int = SEED

    @property
    def label(self) -> str:
        """Equal labels mean matched folds (on the same data): "5x3 seed 42"."""
        return f"{self.folds}x{self.repeats} seed {self.seed}"

    @property
    def test_train_ratio(self) -> float:
        """n_test / n_train of every split, the Nadeau-Bengio correction factor."""
        return 1.0 / (self.folds - 1)

    def splitter(self) -> RepeatedStratifiedKFold:
        from sklearn.model_selection import RepeatedStratifiedKFold

        return RepeatedStratifiedKFold(n_splits=self.folds, n_repeats=self.repeats, random_state=self.seed)


@dataclass(frozen=True)
class CVResult:
    """Each metric's score on every split, in the splitter's order."""

    plan: CVPlan
    fold_scores: dict[str, list[float]]

    def summary(self) -> dict[str, float]:
        """``cv_<metric>_mean``, ``_std`` and the 95% interval ``_ci_low``/``_ci_high``."""
        import numpy as np

        from titanic_bench.gates.stats import confidence_interval

        summary: dict[str, float] = {}
        for metric, scores in self.fold_scores.items():
            low, high = confidence_interval(scores, self.plan.test_train_ratio, CI_LEVEL)
            summary[f"cv_{metric}_mean"] = float(np.mean(scores))
            summary[f"cv_{metric}_std"] = float(np.std(scores, ddof=1))
            summary[f"cv_{metric}_ci_low"] = low
            summary[f"cv_{metric}_ci_high"] = high
        return summary


@contextmanager
def one_thread() -> Iterator[None]:
    """Fit with one BLAS/OpenMP thread: no oversubscription, and sums always in one order."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def cross_validate_spec(
    spec: ExperimentSpec, features: Any, target: Any, plan: CVPlan, n_jobs: int = 1
) -> CVResult:
    """Cross-validate a fresh pipeline of ``spec``; folds run in ``n_jobs`` processes."""
    try:
        return cross_validate_model(spec.build(), features, target, plan, n_jobs)
    except ValueError as error:
        raise ValueError(f"{spec.name}: {error}") from error


def cross_validate_model(model: Any, features: Any, target: Any, plan: CVPlan, n_jobs: int = 1) -> CVResult:
    """Cross-validate clones of ``model`` (fitted or not) on ``plan``'s splits."""
    from joblib import parallel_config
    from sklearn.model_selection import cross_validate

    # inner_max_num_threads keeps each joblib worker at one thread, as one_thread() does here.
    with one_thread(), parallel_config(backend="loky", inner_max_num_threads=1):
        scores = cross_validate(
            model,
            features,
            target,
            cv=plan.splitter(),
            scoring=scoring(),
            n_jobs=n_jobs,
            error_score="raise",
        )
    fold_scores = {}
    for metric in METRICS:
        fold_scores[metric.name] = [metric.from_score(value) for value in scores[f"test_{metric.name}"]]
        if any(math.isnan(value) for value in fold_scores[metric.name]):
            raise ValueError(f"cross-validated {metric.name} is NaN on some split.")
    return CVResult(plan, fold_scores)
