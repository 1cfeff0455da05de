"""Verdicts on a run's metrics: its floors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Metrics where larger is better; floors, gates and winner selection use these names.
QUALITY_METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc")


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


def floors_passed(checks: list[FloorCheck]) -> bool:
    return all(check.passed for check in checks)


def floor_failure_message(spec_name: str, checks: list[FloorCheck]) -> str:
    failed = [check.metric for check in checks if not check.passed]
    lines = "\n".join(f"  {check.line()}" for check in checks)
    return f"{spec_name} missed its floor(s) on {', '.join(failed)}:\n{lines}"
