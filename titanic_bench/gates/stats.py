"""Statistics over cross-validation folds: confidence intervals and the paired test.

Folds of k-fold cross-validation share most of their training data, so their scores
are correlated and the plain t-test's variance is far too small: it flags noise as
significant. Nadeau and Bengio (2003, "Inference for the Generalization Error")
correct the variance by the test/train size ratio; both the interval and the test
here use that corrected variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

Alternative = Literal["less", "greater", "two-sided"]


@dataclass(frozen=True)
class PairedTest:
    """The corrected resampled t-test on matched fold differences (current - reference)."""

    mean_difference: float
    t_statistic: float
    df: int
    p_value: float
    alternative: Alternative


def corrected_variance(scores: ArrayLike, test_train_ratio: float) -> float:
    """Nadeau-Bengio variance of the mean of ``scores``: (1/J + n_test/n_train) * s^2."""
    values = np.asarray(scores, dtype=float)
    if values.size < 2:
        raise ValueError(f"need at least 2 fold scores for a variance, got {values.size}.")
    return float((1.0 / values.size + test_train_ratio) * values.var(ddof=1))


def corrected_ttest(
    differences: ArrayLike, test_train_ratio: float, alternative: Alternative = "less"
) -> PairedTest:
    """Corrected resampled t-test of H0 "mean difference is 0" on J matched folds.

    ``alternative="less"`` asks whether the current scores are lower than the
    reference's (a drop, for a higher-is-better metric).
    """
    values = np.asarray(differences, dtype=float)
    mean = float(values.mean())
    variance = corrected_variance(values, test_train_ratio)
    df = values.size - 1
    if variance == 0.0:
        # Every fold moved by exactly the same amount (often: not at all).
        t_value = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        t_value = mean / math.sqrt(variance)
    return PairedTest(mean, t_value, df, _p_value(t_value, df, alternative), alternative)


def _p_value(t_value: float, df: int, alternative: Alternative) -> float:
    if alternative == "less":
        return float(stats.t.cdf(t_value, df))
    if alternative == "greater":
        return float(stats.t.sf(t_value, df))
    return float(min(1.0, 2.0 * stats.t.sf(abs(t_value), df)))


def confidence_interval(
    scores: ArrayLike, test_train_ratio: float, level: float = 0.95
) -> tuple[float, float]:
    """Two-sided ``level`` interval for the mean score, on the corrected variance."""
    values = np.asarray(scores, dtype=float)
    mean = float(values.mean())
    half = float(stats.t.ppf(0.5 + level / 2, values.size - 1)) * math.sqrt(
        corrected_variance(values, test_train_ratio)
    )
    return mean - half, mean + half
