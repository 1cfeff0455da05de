"""The session's family of gate tests: one correction over every experiment x metric.

A session runs one test per gated metric of every experiment; at alpha 0.05 each, some
test of twelve fails by chance far more often than 5% of sessions. The controller
therefore decides the family at the session's end, once every p-value is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from titanic_bench.gates.checks import Correction, GateCheck, GatePolicy, gate_failure_message
from titanic_bench.gates.stats import benjamini_hochberg, holm
from titanic_bench.session.results import ExperimentResult


def adjusted(p_values: Sequence[float], correction: Correction) -> list[float]:
    """The p-values adjusted by ``correction``, in the input order."""
    if correction is Correction.HOLM:
        return holm(p_values)
    if correction is Correction.BH:
        return benjamini_hochberg(p_values)
    return list(p_values)


def decide_family(checks: Sequence[GateCheck], policy: GatePolicy) -> list[GateCheck]:
    """Every check with its adjusted p-value and final verdict; untested ones unchanged.

    Each verdict is decided again on the adjusted p-value, so a test that passed alone
    stays passed (a correction only raises p) and a PENDING one is settled.
    """
    tested = [(index, check.p_value) for index, check in enumerate(checks) if check.p_value is not None]
    positions, raw = [index for index, _ in tested], [p_value for _, p_value in tested]
    decided = list(checks)
    for index, p_value in zip(positions, adjusted(raw, policy.correction), strict=True):
        check = checks[index]
        assert check.delta is not None
        verdict = policy.decide(check.metric, check.delta, p_value)
        decided[index] = replace(
            check,
            verdict=verdict,
            p_adjusted=p_value,
            correction=policy.correction.value,
            note=policy.explain(verdict, check.metric, check.delta),
        )
    return decided


def decide_session(results: Sequence[ExperimentResult], policy: GatePolicy) -> list[ExperimentResult]:
    """The session's results with every gate check decided over the whole family."""
    checks = decide_family([GateCheck.from_dict(c) for r in results for c in r.gate], policy)
    decided, start = [], 0
    for result in results:
        mine, start = checks[start : start + len(result.gate)], start + len(result.gate)
        failure = gate_failure_message(result.spec, mine, policy) if any(c.failed for c in mine) else ""
        decided.append(replace(result, gate=[c.to_dict() for c in mine], gate_failure=failure))
    return decided
