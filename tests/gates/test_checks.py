"""Gate verdicts: direction, effect size, significance, changed data, other CV plan."""

from __future__ import annotations

from dataclasses import replace

import pytest

from titanic_bench.errors import GateError
from titanic_bench.gates.checks import (
    Correction,
    GateCheck,
    GatePolicy,
    GateTest,
    Reference,
    Verdict,
    gate_against,
    gate_failure_message,
)
from titanic_bench.gates.family import decide_family
from titanic_bench.gates.stats import corrected_variance, minimum_detectable_drop

PLAN = "5x3 seed 42"
RATIO = 0.25
BASE = [0.80, 0.82, 0.84, 0.81, 0.83] * 3
NOISE = [0.004, -0.003, 0.002, -0.004, 0.001] * 3


def reference(scores: dict[str, list[float]], digest: str = "d" * 64, plan: str = PLAN) -> Reference:
    return Reference("baseline", digest, plan, scores)


def gate(current: dict[str, list[float]], ref: Reference | None, policy: GatePolicy) -> list[GateCheck]:
    """Each test decided on its own; the session's family correction is tested in test_family.py."""
    return gate_against(current, "d" * 64, PLAN, RATIO, ref, policy.alone())


def test_a_large_consistent_drop_is_a_regression_with_a_full_message() -> None:
    policy = GatePolicy(("roc_auc",), alpha=0.05, min_effect=0.01)
    current = [score - 0.05 + noise for score, noise in zip(BASE, NOISE, strict=True)]
    [check] = gate({"roc_auc": current}, reference({"roc_auc": BASE}), policy)
    assert check.verdict is Verdict.REGRESSION and check.failed
    assert check.delta == pytest.approx(-0.05)
    assert check.p_value is not None and check.p_value < 0.05
    message = gate_failure_message("forest", [check], policy)
    assert "forest failed the regression gate on roc_auc" in message
    assert "baseline 0.8200, current 0.7700" in message and "p = " in message


def test_a_significant_drop_smaller_than_the_effect_size_passes() -> None:
    policy = GatePolicy(("accuracy",), alpha=0.05, min_effect=0.01)
    current = [score - 0.005 for score in BASE]  # certain (p = 0) but tiny
    [check] = gate({"accuracy": current}, reference({"accuracy": BASE}), policy)
    assert check.p_value == 0.0
    assert check.verdict is Verdict.PASS


def test_a_large_but_noisy_drop_is_not_significant() -> None:
    policy = GatePolicy(("accuracy",), alpha=0.05, min_effect=0.01)
    swings = [0.10, -0.14, 0.12, -0.16, 0.03] * 3  # mean -0.01, huge spread
    current = [score + swing - 0.01 for score, swing in zip(BASE, swings, strict=True)]
    [check] = gate({"accuracy": current}, reference({"accuracy": BASE}), policy)
    assert check.p_value is not None and check.p_value > 0.05
    assert check.verdict is Verdict.PASS


def test_an_improvement_never_fails() -> None:
    policy = GatePolicy(("roc_auc",), alpha=0.05, min_effect=0.0)
    [check] = gate({"roc_auc": [s + 0.05 for s in BASE]}, reference({"roc_auc": BASE}), policy)
    assert check.verdict is Verdict.PASS


def test_lower_is_better_metrics_fail_when_they_rise() -> None:
    policy = GatePolicy(("log_loss",), alpha=0.05, min_effect=0.01)
    losses = [0.45 + noise for noise in NOISE]
    [up] = gate({"log_loss": [x + 0.05 for x in losses]}, reference({"log_loss": losses}), policy)
    [down] = gate({"log_loss": [x - 0.05 for x in losses]}, reference({"log_loss": losses}), policy)
    assert up.verdict is Verdict.REGRESSION
    assert down.verdict is Verdict.PASS


def test_changed_data_is_reported_as_a_changed_dataset_not_a_regression() -> None:
    policy = GatePolicy(("roc_auc",))
    [check] = gate(
        {"roc_auc": [s - 0.2 for s in BASE]}, reference({"roc_auc": BASE}, digest="e" * 64), policy
    )
    assert check.verdict is Verdict.DATA_CHANGED and not check.failed
    assert "a changed dataset, not a regression" in check.note


def test_another_cv_plan_cannot_be_matched_and_fails_with_the_fix() -> None:
    [check] = gate(
        {"roc_auc": BASE}, reference({"roc_auc": BASE}, plan="3x1 seed 42"), GatePolicy(("roc_auc",))
    )
    assert check.verdict is Verdict.INCOMPARABLE and check.failed
    assert "--bench-cv 3x1" in check.note


def test_no_baseline_entry_is_reported_without_failing() -> None:
    [check] = gate({"roc_auc": BASE}, None, GatePolicy(("roc_auc",)))
    assert check.verdict is Verdict.NO_REFERENCE and not check.failed


def test_checks_survive_the_trip_through_json() -> None:
    [check] = gate({"roc_auc": BASE}, reference({"roc_auc": BASE}), GatePolicy(("roc_auc",)))
    assert GateCheck.from_dict(check.to_dict()) == check


def test_p_zero_is_significant_and_no_p_value_is_not() -> None:
    # A drop that is the same on every fold has zero variance and p = 0: the most
    # significant result there is, which `(p or 1.0) < alpha` used to count as not significant.
    policy = GatePolicy(("roc_auc",), alpha=0.05, min_effect=0.01)
    [check] = gate({"roc_auc": [s - 0.05 for s in BASE]}, reference({"roc_auc": BASE}), policy)
    assert check.p_value == 0.0
    assert check.verdict is Verdict.REGRESSION
    # The family decides it again on the adjusted p, which a correction keeps at 0.
    [decided] = decide_family([check], replace(policy, correction=Correction.HOLM))
    assert decided.p_adjusted == 0.0 and decided.verdict is Verdict.REGRESSION


def test_the_adjusted_p_value_decides_the_verdict() -> None:
    policy = GatePolicy(("roc_auc",), alpha=0.05, min_effect=0.01, correction=Correction.HOLM)
    significant_alone = GateCheck("roc_auc", Verdict.PENDING, "baseline", 0.8, 0.78, -0.02, p_value=0.03)
    null = GateCheck("roc_auc", Verdict.PASS, "baseline", 0.8, 0.8, 0.0, p_value=0.5)
    decided = decide_family([significant_alone, null], policy)
    assert [check.p_adjusted for check in decided] == [0.06, 0.5]
    assert [check.verdict for check in decided] == [Verdict.PASS, Verdict.PASS]


def test_fold_counts_that_do_not_match_are_one_gate_error_naming_both_counts() -> None:
    policy = GatePolicy(("roc_auc",))
    with pytest.raises(GateError) as raised:
        gate({"roc_auc": BASE}, reference({"roc_auc": BASE[:10]}), policy)
    message = str(raised.value)
    assert "10 roc_auc fold scores and this run 15" in message
    assert "--bench-update-baseline" in message and "\n" not in message


def test_every_tested_check_states_its_minimum_detectable_drop_and_drop_bound() -> None:
    policy = GatePolicy(("roc_auc",), alpha=0.05, min_effect=0.01)
    current = [score + noise for score, noise in zip(BASE, NOISE, strict=True)]
    [check] = gate({"roc_auc": current}, reference({"roc_auc": BASE}), policy)
    assert check.mdd is not None and check.mdd > policy.min_effect
    assert check.drop_bound is not None and check.drop_bound > 0
    assert check.test == "regression" and check.correction == "none" and check.p_adjusted == check.p_value
    assert "detectable drop" in check.line()


def test_an_unchanged_run_states_the_drop_detectable_from_the_reference_folds() -> None:
    # Bit-identical folds (the usual CI run of unchanged code) have no variance of the
    # differences: an mdd of just the min effect would claim 80% power at 0.01.
    policy = GatePolicy(("roc_auc",), alpha=0.05, min_effect=0.01)
    [check] = gate({"roc_auc": BASE}, reference({"roc_auc": BASE}), policy)
    expected = minimum_detectable_drop(corrected_variance(BASE, RATIO), len(BASE) - 1, 0.05, min_effect=0.01)
    assert check.mdd == pytest.approx(expected)
    assert check.mdd is not None and check.mdd > 0.02
    assert check.verdict is Verdict.PASS and check.p_value == 0.5


def test_noninferiority_passes_a_drop_shown_below_the_margin() -> None:
    policy = GatePolicy(("roc_auc",), alpha=0.05, min_effect=0.01, test=GateTest.NONINFERIORITY)
    current = [score - 0.002 + noise / 4 for score, noise in zip(BASE, NOISE, strict=True)]
    [check] = gate({"roc_auc": current}, reference({"roc_auc": BASE}), policy)
    assert check.drop_bound is not None and check.drop_bound < 0.01
    assert check.verdict is Verdict.PASS and not check.failed
    assert check.p_value is not None and check.p_value < 0.05


def test_noninferiority_fails_a_noisy_drop_the_regression_test_lets_through() -> None:
    swings = [0.10, -0.14, 0.12, -0.16, 0.03] * 3
    current = [score + swing - 0.005 for score, swing in zip(BASE, swings, strict=True)]
    strict = GatePolicy(("accuracy",), alpha=0.05, min_effect=0.01, test=GateTest.NONINFERIORITY)
    [check] = gate({"accuracy": current}, reference({"accuracy": BASE}), strict)
    assert check.drop_bound is not None and check.drop_bound > 0.01
    assert check.verdict is Verdict.NOT_NONINFERIOR and check.failed
    assert "not shown below 0.01" in gate_failure_message("forest", [check], strict)
    [usual] = gate({"accuracy": current}, reference({"accuracy": BASE}), GatePolicy(("accuracy",)))
    assert usual.verdict is Verdict.PASS


def test_under_a_correction_a_test_significant_alone_waits_for_the_family() -> None:
    policy = GatePolicy(("roc_auc", "accuracy"), alpha=0.05, min_effect=0.01, correction=Correction.HOLM)
    current = [score - 0.05 + noise for score, noise in zip(BASE, NOISE, strict=True)]
    scores = {"roc_auc": current, "accuracy": BASE}
    checks = gate_against(
        scores, "d" * 64, PLAN, RATIO, reference({"roc_auc": BASE, "accuracy": BASE}), policy
    )
    assert [check.verdict for check in checks] == [Verdict.PENDING, Verdict.PASS]
    assert not any(check.failed for check in checks)
    assert all(check.p_adjusted is None and check.correction == "holm" for check in checks)
