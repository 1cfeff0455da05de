"""The rules of promotion that need no session: how the winner is compared with the champion."""

from __future__ import annotations

from titanic_bench.gates.checks import Correction, GatePolicy, GateTest
from titanic_bench.options import BenchSettings
from titanic_bench.session.promotion import champion_policy


def test_the_champion_comparison_is_the_regression_test_whatever_the_baseline_gate_uses() -> None:
    strict = GatePolicy(("accuracy",), test=GateTest.NONINFERIORITY, correction=Correction.HOLM)
    policy = champion_policy(BenchSettings(policy=strict, selection_metric="roc_auc"))
    assert policy.test is GateTest.REGRESSION
    assert policy.correction is Correction.NONE
    assert policy.metrics == ("roc_auc", "accuracy")
    assert (policy.alpha, policy.min_effect) == (strict.alpha, strict.min_effect)
