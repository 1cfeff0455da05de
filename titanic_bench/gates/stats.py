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
#: The power at which the minimum detectable drop is stated.
POWER = 0.8


@dataclass(frozen=True)
class PairedTest:
    """The corrected resampled t-test on matched fold differences (current - reference)."""

    mean_difference: float
    t_statistic: float
    df: int
    p_value: float
    alternative: Alternative
    #: The Nadeau-Bengio corrected variance of the mean difference.
    variance: float = 0.0


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
    return PairedTest(mean, t_value, df, _p_value(t_value, df, alternative), alternative, variance)


def _p_value(t_value: float, df: int, alternative: Alternative) -> float:
    if alternative == "less":
        return float(stats.t.cdf(t_value, df))
    if alternative == "greater":
        return float(stats.t.sf(t_value, df))
    return float(min(1.0, 2.0 * stats.t.sf(abs(t_value), df)))


def minimum_detectable_drop(
    variance: float, df: int, alpha: float, power: float = POWER, min_effect: float = 0.0
) -> float:
    """The smallest true drop the gate catches with probability ``power``.

    The gate fails when the observed drop exceeds both ``min_effect`` and the one-sided
    critical value ``t(1-alpha, df) * se``; the observed drop scatters around the true
    one with ``se`` = sqrt(corrected variance), so ``power`` of its draws clear that
    bar once the true drop is the bar plus ``t(power, df) * se``. With ``min_effect`` 0
    this is the textbook ``(t(1-alpha) + t(power)) * se`` (central-t approximation).
    """
    se = math.sqrt(variance)
    bar = max(min_effect, float(stats.t.ppf(1.0 - alpha, df)) * se)
    return bar + float(stats.t.ppf(power, df)) * se


def drop_upper_bound(drop: float, variance: float, df: int, alpha: float) -> float:
    """One-sided (1 - alpha) upper confidence bound of a true drop observed as ``drop``."""
    return drop + float(stats.t.ppf(1.0 - alpha, df)) * math.sqrt(variance)


def noninferiority_p_value(drop: float, variance: float, df: int, margin: float) -> float:
    """p of H0 "the true drop is at least ``margin``" against "it is smaller".

    p < alpha exactly when :func:`drop_upper_bound` at alpha is below ``margin``.
    """
    if variance == 0.0:
        return 0.0 if drop < margin else 1.0
    return float(stats.t.cdf((drop - margin) / math.sqrt(variance), df))


def holm(p_values: ArrayLike) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error rate), in the input order."""
    values = np.asarray(p_values, dtype=float)
    order = np.argsort(values, kind="stable")
    steps = (values.size - np.arange(values.size)) * values[order]
    adjusted = np.empty_like(values)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return [float(value) for value in adjusted]


def benjamini_hochberg(p_values: ArrayLike) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order."""
    values = np.asarray(p_values, dtype=float)
    if values.size == 0:
        return []
    return [float(value) for value in stats.false_discovery_control(values, method="bh")]


def confidence_interval(
    scores: ArrayLike, test_train_ratio: float, level: float = 0.95
) -> tuple[float, float]:
    """Two-sided ``level`` interval for the mean score, on the corrected variance."""
    values = np.asarray(scores, dtype=float)
    se = math.sqrt(corrected_variance(values, test_train_ratio))
    if se == 0.0:  # scipy answers NaN for a zero scale: every fold scored the same
        mean = float(values.mean())
        return mean, mean
    low, high = stats.t.interval(level, values.size - 1, loc=values.mean(), scale=se)
    return float(low), float(high)
