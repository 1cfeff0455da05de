"""The corrected resampled t-test and interval against hand-computed values."""

from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from titanic_bench.gates.stats import (
    benjamini_hochberg,
    confidence_interval,
    corrected_ttest,
    corrected_variance,
    drop_upper_bound,
    holm,
    minimum_detectable_drop,
    noninferiority_p_value,
)

# Five fold differences from 5-fold CV (n_test/n_train = 1/4), worked by hand:
#   mean = 0.10/5 = 0.02
#   s^2  = (0.01^2 + 0 + 0.01^2 + 0.02^2 + 0.02^2) / 4 = 0.001/4 = 2.5e-4
#   corrected variance = (1/5 + 1/4) * 2.5e-4 = 0.45 * 2.5e-4 = 1.125e-4
#   t = 0.02 / sqrt(1.125e-4) = 0.02 / 0.0106066 = 1.885618, df = 4
DIFFERENCES = [0.01, 0.02, 0.03, 0.00, 0.04]
RATIO = 0.25
HAND_T = 1.885618


def test_corrected_variance_matches_hand_computation() -> None:
    assert corrected_variance(DIFFERENCES, RATIO) == pytest.approx(1.125e-4, rel=1e-12)


def test_t_statistic_and_degrees_of_freedom_match_hand_computation() -> None:
    result = corrected_ttest(DIFFERENCES, RATIO, "greater")
    assert result.mean_difference == pytest.approx(0.02)
    assert result.t_statistic == pytest.approx(HAND_T, abs=1e-6)
    assert result.df == 4


def test_p_values_per_alternative() -> None:
    # Tables: t(0.95, 4) = 2.132 and t(0.90, 4) = 1.533, so one-sided p lies in (0.05, 0.10).
    greater = corrected_ttest(DIFFERENCES, RATIO, "greater").p_value
    assert 0.05 < greater < 0.10
    assert greater == pytest.approx(scipy_stats.t.sf(HAND_T, 4), rel=1e-5)
    assert corrected_ttest(DIFFERENCES, RATIO, "less").p_value == pytest.approx(1 - greater, rel=1e-9)
    assert corrected_ttest(DIFFERENCES, RATIO, "two-sided").p_value == pytest.approx(2 * greater, rel=1e-9)


def test_correction_makes_the_test_more_conservative_than_a_plain_paired_t_test() -> None:
    plain = scipy_stats.ttest_1samp(DIFFERENCES, 0.0, alternative="greater")
    corrected = corrected_ttest(DIFFERENCES, RATIO, "greater")
    # Without the correction the same differences look significant at 5%.
    assert plain.pvalue < 0.05 < corrected.p_value


def test_identical_folds_are_not_significant() -> None:
    result = corrected_ttest([0.0] * 15, RATIO, "less")
    assert result.t_statistic == 0.0
    assert result.p_value == pytest.approx(0.5)


def test_a_constant_drop_on_every_fold_is_certain() -> None:
    result = corrected_ttest([-0.01] * 15, RATIO, "less")
    assert result.t_statistic == -math.inf
    assert result.p_value == 0.0


def test_interval_uses_the_corrected_variance() -> None:
    scores = [0.80, 0.82, 0.78, 0.81, 0.79]
    low, high = confidence_interval(scores, RATIO)
    half = scipy_stats.t.ppf(0.975, 4) * math.sqrt(corrected_variance(scores, RATIO))
    assert (low, high) == pytest.approx((0.80 - half, 0.80 + half))


def test_one_fold_has_no_variance() -> None:
    with pytest.raises(ValueError, match="at least 2 fold scores"):
        corrected_variance([0.8], RATIO)


# Ten fold differences of a 5x2 CV (n_test/n_train = 1/4), worked by hand:
#   mean = -0.070/10 = -0.007, so the observed drop is 0.007
#   s^2  = sum((d - mean)^2) / 9 = 5.06e-4 / 9 = 5.6222e-5
#   corrected variance = (1/10 + 1/4) * 5.6222e-5 = 1.96778e-5, se = 0.0044360
#   scipy.stats.t.ppf(0.95, 9) = 1.833113, scipy.stats.t.ppf(0.80, 9) = 0.883404
#   MDD (min effect 0)    = (1.833113 + 0.883404) * 0.0044360 = 0.012050
#   MDD (min effect 0.01) = max(0.01, 1.833113 * 0.0044360) + 0.883404 * 0.0044360
#                         = 0.01 + 0.0039187 = 0.013919
#   upper bound of the drop = 0.007 + 1.833113 * 0.0044360 = 0.015132
#   non-inferiority p, margin 0.01 = t.cdf((0.007 - 0.01) / 0.0044360, 9) = t.cdf(-0.67629, 9) = 0.25793
#   non-inferiority p, margin 0.02 = t.cdf((0.007 - 0.02) / 0.0044360, 9) = t.cdf(-2.93059, 9) = 0.0083704
DROPS = [-0.012, 0.004, -0.008, -0.020, 0.002, -0.006, -0.010, 0.000, -0.014, -0.006]


def test_minimum_detectable_drop_matches_hand_computation() -> None:
    variance = corrected_variance(DROPS, RATIO)
    assert variance == pytest.approx(1.967778e-5, rel=1e-6)
    assert minimum_detectable_drop(variance, 9, 0.05) == pytest.approx(0.012050, abs=1e-6)
    assert minimum_detectable_drop(variance, 9, 0.05, min_effect=0.01) == pytest.approx(0.013919, abs=1e-6)


def test_a_min_effect_below_the_critical_value_changes_nothing() -> None:
    variance = corrected_variance(DROPS, RATIO)
    assert minimum_detectable_drop(variance, 9, 0.05, min_effect=0.001) == minimum_detectable_drop(
        variance, 9, 0.05
    )


def test_upper_bound_and_noninferiority_p_match_hand_computation() -> None:
    variance = corrected_variance(DROPS, RATIO)
    assert drop_upper_bound(0.007, variance, 9, 0.05) == pytest.approx(0.015132, abs=1e-6)
    assert noninferiority_p_value(0.007, variance, 9, 0.01) == pytest.approx(0.25793, abs=1e-5)
    assert noninferiority_p_value(0.007, variance, 9, 0.02) == pytest.approx(0.0083704, abs=1e-6)


def test_noninferiority_without_variance_is_decided_by_the_drop_alone() -> None:
    assert noninferiority_p_value(0.005, 0.0, 9, 0.01) == 0.0
    assert noninferiority_p_value(0.01, 0.0, 9, 0.01) == 1.0


# statsmodels.stats.multitest.multipletests(P, method="holm" / "fdr_bh")[1], run once:
P = [0.001, 0.20, 0.012, 0.04, 0.0, 0.03, 0.5, 0.011]
HOLM = [0.007, 0.4, 0.066, 0.12, 0.0, 0.12, 0.5, 0.066]
BH = [0.004, 0.2285714285714286, 0.024, 0.05333333333333334, 0.0, 0.048, 0.5, 0.024]


def test_holm_matches_statsmodels() -> None:
    assert holm(P) == pytest.approx(HOLM, abs=1e-12)


def test_benjamini_hochberg_matches_statsmodels() -> None:
    assert benjamini_hochberg(P) == pytest.approx(BH, abs=1e-12)


def test_corrections_of_one_test_or_none_change_nothing() -> None:
    assert holm([0.03]) == [0.03] and benjamini_hochberg([0.03]) == pytest.approx([0.03])
    assert holm([]) == [] and benjamini_hochberg([]) == []


def test_the_interval_of_folds_that_all_scored_the_same_is_that_score() -> None:
    assert confidence_interval([0.75, 0.75, 0.75], RATIO) == (0.75, 0.75)
