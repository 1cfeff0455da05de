"""Gate verdicts: direction, effect size, significance, changed data, other CV plan."""

from __future__ import annotations

import pytest

from titanic_bench.gates.checks import (
    GateCheck,
    GatePolicy,
    Reference,
    Verdict,
    gate_against,
    gate_failure_message,
)

PLAN = "5x3 seed 42"
RATIO = 0.25
BASE = [0.80, 0.82, 0.84, 0.81, 0.83] * 3
NOISE = [0.004, -0.003, 0.002, -0.004, 0.001] * 3


def reference(scores: dict[str, list[float]], digest: str = "d" * 64, plan: str = PLAN) -> Reference:
    return Reference("baseline", digest, plan, scores)


def gate(current: dict[str, list[float]], ref: Reference | None, policy: GatePolicy) -> list[GateCheck]:
    return gate_against(current, "d" * 64, PLAN, RATIO, ref, policy)


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
