"""Verdicts on a run's metrics: its floors, and regression gates against a reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from titanic_bench.errors import GateError
from titanic_bench.ml import metrics as table
from titanic_bench.ml.metrics import DEFAULT_GATE_METRICS


@dataclass(frozen=True)
class FloorCheck:
    """One metric against its floor."""

    metric: str
    value: float
    floor: float

    @property
    def passed(self) -> bool:
        return self.value >= self.floor

    def line(self) -> str:
        verdict = "ok" if self.passed else "BELOW FLOOR"
        return f"{self.metric} = {self.value:.4f} (floor {self.floor:.4f}) {verdict}"


def check_floors(metrics: Mapping[str, float], floors: Mapping[str, float]) -> list[FloorCheck]:
    """A check per floor; a floor on a metric that was not computed is a usage error."""
    unknown = sorted(set(floors) - set(metrics))
    if unknown:
        raise ValueError(
            f"floors name metric(s) {', '.join(unknown)} that are not computed; "
            f"known metrics: {', '.join(sorted(metrics))}."
        )
    return [FloorCheck(name, float(metrics[name]), float(floor)) for name, floor in floors.items()]


def floors_passed(checks: Sequence[FloorCheck]) -> bool:
    return all(check.passed for check in checks)


def floor_failure_message(spec_name: str, checks: Sequence[FloorCheck]) -> str:
    failed = [check.metric for check in checks if not check.passed]
    lines = "\n".join(f"  {check.line()}" for check in checks)
    return f"{spec_name} missed its floor(s) on {', '.join(failed)}:\n{lines}"


# --- Regression gates: fold-matched comparison with a reference -------------------


class Verdict(StrEnum):
    """A gated metric's outcome; REGRESSION, NOT_NONINFERIOR and INCOMPARABLE fail."""

    PASS = "pass"
    REGRESSION = "REGRESSION"
    NOT_NONINFERIOR = "NOT NON-INFERIOR"
    #: Significant alone; the family correction at the session's end decides.
    PENDING = "pending"
    DATA_CHANGED = "dataset changed"
    NO_REFERENCE = "no baseline"
    INCOMPARABLE = "INCOMPARABLE"


class Correction(StrEnum):
    """How the session's family of gate tests (experiments x metrics) is corrected."""

    HOLM = "holm"
    BH = "bh"
    NONE = "none"


class GateTest(StrEnum):
    """What a gated metric must show: not a significant drop, or a drop shown below the margin."""

    REGRESSION = "regression"
    NONINFERIORITY = "noninferiority"


@dataclass(frozen=True)
class GatePolicy:
    """Fail when a metric is worse by more than ``min_effect`` AND p < ``alpha``.

    In the ``noninferiority`` test a metric fails unless the upper confidence bound of
    its drop lies below ``min_effect``. ``correction`` adjusts the p-values over all the
    session's gated tests before alpha is applied.
    """

    metrics: tuple[str, ...] = DEFAULT_GATE_METRICS
    alpha: float = 0.05
    min_effect: float = 0.01
    correction: Correction = Correction.NONE
    test: GateTest = GateTest.REGRESSION

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> GatePolicy:
        policy = cls(**{**values, "metrics": tuple(values["metrics"])})
        return replace(policy, correction=Correction(policy.correction), test=GateTest(policy.test))

    def including(self, metric: str) -> GatePolicy:
        """The same policy, also testing ``metric`` (first), e.g. the selection metric."""
        return replace(self, metrics=tuple(dict.fromkeys([metric, *self.metrics])))

    def alone(self) -> GatePolicy:
        """The same policy for a test decided on its own (no family to correct over)."""
        return replace(self, correction=Correction.NONE)

    def decide(self, metric: str, delta: float, p_value: float) -> Verdict:
        """The verdict of one test once its (adjusted) p-value is known."""
        if self.test is GateTest.NONINFERIORITY:
            return Verdict.PASS if p_value < self.alpha else Verdict.NOT_NONINFERIOR
        worsening = table.metric(metric).worsening(delta)
        return Verdict.REGRESSION if worsening > self.min_effect and p_value < self.alpha else Verdict.PASS

    def explain(self, verdict: Verdict, metric: str, delta: float) -> str:
        """Why a test failed ("" when it did not)."""
        p = "p" if self.correction is Correction.NONE else f"{self.correction.value}-adjusted p"
        if verdict is Verdict.REGRESSION:
            drop = table.metric(metric).worsening(delta)
            return f"worse by {drop:.4f} > {self.min_effect:g} and {p} < alpha {self.alpha:g}"
        if verdict is Verdict.NOT_NONINFERIOR:
            return f"the drop is not shown below {self.min_effect:g}: {p} >= alpha {self.alpha:g}"
        return ""


@dataclass(frozen=True)
class Reference:
    """What a run is gated against: a baseline entry or the champion's run."""

    label: str
    data_digest: str
    cv_plan: str
    fold_scores: Mapping[str, Sequence[float]]


@dataclass(frozen=True)
class GateCheck:
    """One gated metric: the reference's and current CV means, their delta, the test.

    ``p_value`` is the configured test's own; ``p_adjusted`` the one the verdict used
    after the family correction (None while the session has not decided).
    """

    metric: str
    verdict: Verdict
    reference: str
    baseline: float | None = None
    current: float | None = None
    delta: float | None = None
    p_value: float | None = None
    note: str = ""
    #: Smallest true drop caught with 80% power at alpha, from these folds' corrected variance.
    mdd: float | None = None
    #: One-sided (1 - alpha) upper confidence bound of the drop.
    drop_bound: float | None = None
    p_adjusted: float | None = None
    correction: str = Correction.NONE.value
    test: str = GateTest.REGRESSION.value

    @property
    def failed(self) -> bool:
        return self.verdict in (Verdict.REGRESSION, Verdict.NOT_NONINFERIOR, Verdict.INCOMPARABLE)

    @property
    def tested(self) -> bool:
        """Whether a p-value was computed, so the check belongs to the session's family."""
        return self.p_value is not None

    def line(self) -> str:
        if self.baseline is None or self.current is None or self.p_value is None:
            return f"{self.metric}: {self.verdict.value} ({self.note})"
        adjusted = (
            "" if self.p_adjusted is None else f", {self.correction}-adjusted p = {self.p_adjusted:.4g}"
        )
        detectable = "" if self.mdd is None else f", detectable drop {self.mdd:.4f}"
        return (
            f"{self.metric}: {self.reference} {self.baseline:.4f}, current {self.current:.4f}, "
            f"delta {self.current - self.baseline:+.4f}, p = {self.p_value:.4g}{adjusted}{detectable} -> "
            f"{self.verdict.value}{f' ({self.note})' if self.note else ''}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict.value}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> GateCheck:
        return cls(**{**values, "verdict": Verdict(values["verdict"])})


def _paired(metric: str, current: Sequence[float], reference: Reference) -> tuple[Any, Any]:
    import numpy as np

    ours, theirs = np.asarray(current, dtype=float), np.asarray(reference.fold_scores[metric], dtype=float)
    if ours.shape != theirs.shape:
        fix = (
            "rewrite it with --bench-update-baseline"
            if reference.label == "baseline"
            else "its run's cv_<metric>_fold history is incomplete; re-register a champion"
        )
        raise GateError(
            f"the {reference.label} has {theirs.size} {metric} fold scores and this run {ours.size} "
            f"under the same CV plan {reference.cv_plan!r}, so they cannot be paired fold by fold: {fix}."
        )
    return ours, theirs


def gate_metric(
    metric: str, current: Sequence[float], reference: Reference, test_train_ratio: float, policy: GatePolicy
) -> GateCheck:
    """Corrected resampled t-test on the matched folds, one-sided towards "worse".

    Under a family correction the verdict of a test that is significant alone stays
    PENDING (the correction can only raise p); everything else is already decided.
    """
    # Imported here: pytest imports this module (via settings) in every session.
    from titanic_bench.gates.stats import (
        Alternative,
        corrected_ttest,
        corrected_variance,
        drop_upper_bound,
        minimum_detectable_drop,
        noninferiority_p_value,
    )

    ours, theirs = _paired(metric, current, reference)
    direction = table.metric(metric)
    towards_worse: Alternative = "less" if direction.greater_is_better else "greater"
    test = corrected_ttest(ours - theirs, test_train_ratio, towards_worse)
    delta = float(ours.mean() - theirs.mean())
    drop = direction.worsening(delta)
    if policy.test is GateTest.NONINFERIORITY:
        p_value = noninferiority_p_value(drop, test.variance, test.df, policy.min_effect)
    else:
        p_value = test.p_value
    verdict = policy.decide(metric, delta, p_value)
    # Folds that all moved alike (an unchanged, bit-identical run) say nothing about how a
    # real change would scatter: the reference's own fold variance stands in, which assumes
    # a change correlated with the reference at 0.5 at most (measured: higher), so the mdd
    # errs large rather than claiming power the gate does not have.
    mdd_variance = test.variance or corrected_variance(theirs, test_train_ratio)
    alone = policy.correction is Correction.NONE
    if not alone and verdict is not policy.decide(metric, delta, 1.0):
        verdict = Verdict.PENDING
    return GateCheck(
        metric,
        verdict,
        reference.label,
        float(theirs.mean()),
        float(ours.mean()),
        delta,
        p_value,
        policy.explain(verdict, metric, delta),
        minimum_detectable_drop(mdd_variance, test.df, policy.alpha, min_effect=policy.min_effect),
        drop_upper_bound(drop, test.variance, test.df, policy.alpha),
        p_value if alone else None,
        policy.correction.value,
        policy.test.value,
    )


def gate_against(
    fold_scores: Mapping[str, Sequence[float]],
    data_digest: str,
    cv_plan: str,
    test_train_ratio: float,
    reference: Reference | None,
    policy: GatePolicy,
) -> list[GateCheck]:
    """Gate each policy metric; a different data set or CV plan is reported, not tested."""
    if reference is None:
        note = "no baseline entry for this experiment; write one with --bench-update-baseline"
        return [GateCheck(m, Verdict.NO_REFERENCE, "baseline", note=note) for m in policy.metrics]
    if reference.data_digest != data_digest:
        note = (
            f"data digest {data_digest[:12]}... differs from the {reference.label}'s "
            f"{reference.data_digest[:12]}...: a changed dataset, not a regression"
        )
        return [GateCheck(m, Verdict.DATA_CHANGED, reference.label, note=note) for m in policy.metrics]
    if reference.cv_plan != cv_plan:
        note = (
            f"cross-validation plan {cv_plan} differs from the {reference.label}'s {reference.cv_plan}: "
            f"use --bench-cv {reference.cv_plan.split()[0]} or update the baseline"
        )
        return [GateCheck(m, Verdict.INCOMPARABLE, reference.label, note=note) for m in policy.metrics]
    return [gate_metric(m, fold_scores[m], reference, test_train_ratio, policy) for m in policy.metrics]


def gate_failure_message(spec_name: str, checks: Sequence[GateCheck], policy: GatePolicy) -> str:
    failed = [check for check in checks if check.failed]
    lines = "\n".join(f"  {check.line()}" for check in failed)
    return (
        f"{spec_name} failed the regression gate on {', '.join(c.metric for c in failed)} "
        f"(alpha {policy.alpha:g}, minimal effect {policy.min_effect:g}, {policy.test.value} test, "
        f"correction {policy.correction.value}):\n{lines}"
    )
