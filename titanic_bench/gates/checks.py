"""Verdicts on a run's metrics: its floors, and regression gates against a reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

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
    """A gated metric's outcome; only REGRESSION and INCOMPARABLE fail."""

    PASS = "pass"
    REGRESSION = "REGRESSION"
    DATA_CHANGED = "dataset changed"
    NO_REFERENCE = "no baseline"
    INCOMPARABLE = "INCOMPARABLE"


@dataclass(frozen=True)
class GatePolicy:
    """Fail when a metric is worse by more than ``min_effect`` AND p < ``alpha``."""

    metrics: tuple[str, ...] = DEFAULT_GATE_METRICS
    alpha: float = 0.05
    min_effect: float = 0.01

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> GatePolicy:
        return cls(**{**values, "metrics": tuple(values["metrics"])})

    def including(self, metric: str) -> GatePolicy:
        """The same policy, also testing ``metric`` (first), e.g. the selection metric."""
        return replace(self, metrics=tuple(dict.fromkeys([metric, *self.metrics])))


@dataclass(frozen=True)
class Reference:
    """What a run is gated against: a baseline entry or the champion's run."""

    label: str
    data_digest: str
    cv_plan: str
    fold_scores: Mapping[str, Sequence[float]]


@dataclass(frozen=True)
class GateCheck:
    """One gated metric: the reference's and current CV means, their delta, the test."""

    metric: str
    verdict: Verdict
    reference: str
    baseline: float | None = None
    current: float | None = None
    delta: float | None = None
    p_value: float | None = None
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict in (Verdict.REGRESSION, Verdict.INCOMPARABLE)

    def line(self) -> str:
        if self.baseline is None or self.current is None or self.p_value is None:
            return f"{self.metric}: {self.verdict.value} ({self.note})"
        return (
            f"{self.metric}: {self.reference} {self.baseline:.4f}, current {self.current:.4f}, "
            f"delta {self.current - self.baseline:+.4f}, p = {self.p_value:.4g} -> "
            f"{self.verdict.value}{f' ({self.note})' if self.note else ''}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict.value}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> GateCheck:
        return cls(**{**values, "verdict": Verdict(values["verdict"])})


def gate_metric(
    metric: str, current: Sequence[float], reference: Reference, test_train_ratio: float, policy: GatePolicy
) -> GateCheck:
    """Corrected resampled t-test on the matched folds, one-sided towards "worse"."""
    # Imported here: pytest imports this module (via settings) in every session.
    import numpy as np

    from titanic_bench.gates.stats import Alternative, corrected_ttest

    ours, theirs = np.asarray(current, dtype=float), np.asarray(reference.fold_scores[metric], dtype=float)
    direction = table.metric(metric)
    towards_worse: Alternative = "less" if direction.greater_is_better else "greater"
    test = corrected_ttest(ours - theirs, test_train_ratio, towards_worse)
    delta = float(ours.mean() - theirs.mean())
    worsening = direction.worsening(delta)
    regressed = worsening > policy.min_effect and test.p_value < policy.alpha
    if regressed:
        note = f"worse by {worsening:.4f} > {policy.min_effect:g} and p < alpha {policy.alpha:g}"
    else:
        note = ""
    return GateCheck(
        metric,
        Verdict.REGRESSION if regressed else Verdict.PASS,
        reference.label,
        float(theirs.mean()),
        float(ours.mean()),
        delta,
        test.p_value,
        note,
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
        f"(alpha {policy.alpha:g}, minimal effect {policy.min_effect:g}):\n{lines}"
    )
