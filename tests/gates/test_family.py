"""The session's family of gate tests: adjusted p-values and the verdicts they give."""

from __future__ import annotations

from dataclasses import replace

import pytest

from titanic_bench.gates.checks import Correction, GateCheck, GatePolicy, GateTest, Verdict
from titanic_bench.gates.family import adjusted, decide_family, decide_session

# statsmodels.stats.multitest.multipletests(P, method="holm" / "fdr_bh")[1], run once:
P = [0.001, 0.20, 0.012, 0.04, 0.0, 0.03, 0.5, 0.011]
HOLM = [0.007, 0.4, 0.066, 0.12, 0.0, 0.12, 0.5, 0.066]
BH = [0.004, 0.2285714285714286, 0.024, 0.05333333333333334, 0.0, 0.048, 0.5, 0.024]


def family(delta: float = -0.05) -> list[GateCheck]:
    """Eight tests that all dropped by more than the minimal effect, plus one untested."""
    tested = [
        GateCheck("roc_auc", Verdict.PENDING if p < 0.05 else Verdict.PASS, "baseline", 0.85, 0.80, delta, p)
        for p in P
    ]
    return [*tested, GateCheck("roc_auc", Verdict.NO_REFERENCE, "baseline", note="no baseline entry")]


def failing(checks: list[GateCheck]) -> list[int]:
    return [index for index, check in enumerate(checks) if check.failed]


@pytest.mark.parametrize(("correction", "expected"), [(Correction.HOLM, HOLM), (Correction.BH, BH)])
def test_adjusted_p_values_match_statsmodels(correction: Correction, expected: list[float]) -> None:
    assert adjusted(P, correction) == pytest.approx(expected, abs=1e-12)


def test_holm_fails_only_the_tests_whose_adjusted_p_is_below_alpha() -> None:
    checks = decide_family(family(), GatePolicy(("roc_auc",), correction=Correction.HOLM))
    assert failing(checks) == [0, 4]
    assert [c.p_adjusted for c in checks[:8]] == pytest.approx(HOLM, abs=1e-12)
    assert all(c.correction == "holm" for c in checks[:8])
    assert "holm-adjusted p < alpha 0.05" in checks[0].note
    assert checks[8].verdict is Verdict.NO_REFERENCE and checks[8].p_adjusted is None


def test_bh_fails_more_than_holm_and_none_fails_every_raw_p_below_alpha() -> None:
    bh = decide_family(family(), GatePolicy(("roc_auc",), correction=Correction.BH))
    assert failing(bh) == [0, 2, 4, 5, 7]
    alone = decide_family(family(), GatePolicy(("roc_auc",), correction=Correction.NONE))
    assert failing(alone) == [0, 2, 3, 4, 5, 7]
    assert [c.p_adjusted for c in alone[:8]] == P


def test_a_drop_within_the_minimal_effect_passes_whatever_its_p() -> None:
    checks = decide_family(family(delta=-0.005), GatePolicy(("roc_auc",), correction=Correction.BH))
    assert failing(checks) == []


def test_noninferiority_passes_only_tests_whose_adjusted_p_is_below_alpha() -> None:
    policy = GatePolicy(("roc_auc",), correction=Correction.HOLM, test=GateTest.NONINFERIORITY)
    checks = decide_family(family(delta=-0.002), policy)
    assert [i for i, c in enumerate(checks[:8]) if c.verdict is Verdict.PASS] == [0, 4]
    assert all(c.verdict is Verdict.NOT_NONINFERIOR for i, c in enumerate(checks[:8]) if i not in (0, 4))


def test_the_session_decision_fails_the_experiment_and_says_which_correction() -> None:
    from tests.support.factories import result

    dropped = GateCheck("roc_auc", Verdict.PENDING, "baseline", 0.85, 0.80, -0.05, 0.001)
    same = GateCheck("roc_auc", Verdict.PASS, "baseline", 0.85, 0.85, 0.0, 0.5)
    results = [replace(result(name), gate=[check.to_dict()]) for name, check in (("a", dropped), ("b", same))]
    policy = GatePolicy(("roc_auc",), correction=Correction.HOLM)
    a, b = decide_session(results, policy)
    assert a.gate_failed and not b.gate_failed
    assert "a failed the regression gate on roc_auc" in a.gate_failure
    assert "regression test, correction holm" in a.gate_failure
    assert "holm-adjusted p = 0.002" in a.gate_failure
    assert [check["p_adjusted"] for check in (*a.gate, *b.gate)] == pytest.approx([0.002, 0.5])
