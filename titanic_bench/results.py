"""One experiment's outcome, as it travels from a worker to the controller.

Workers put it, JSON-encoded, into the test item's ``user_properties``; pytest
ships those in the report the controller's ``pytest_runtest_logreport`` sees.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

#: Key of the user property that carries an ExperimentResult.
RESULT_PROPERTY = "titanic_bench_result"


@dataclass(frozen=True)
class ExperimentResult:
    spec: str
    title: str
    nodeid: str
    run_id: str
    model_uri: str
    registered_model: str
    data_digest: str
    metrics: dict[str, float]
    floors: dict[str, float]
    passed: bool
    failure: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: Each cross-validated metric's score per split, in the splitter's order.
    fold_scores: dict[str, list[float]] = field(default_factory=dict)
    #: e.g. "5x3 seed 42"; folds are matched only between equal plans.
    cv_plan: str = ""
    #: The estimator's own params (JSON-safe), as logged; the baseline keeps them.
    params: dict[str, Any] = field(default_factory=dict)
    #: GateCheck.to_dict() per gated metric, empty when the gate is off.
    gate: list[dict[str, Any]] = field(default_factory=list)
    gate_failure: str = ""

    @property
    def gate_failed(self) -> bool:
        return bool(self.gate_failure)

    def ranking_value(self, metric: str) -> float:
        """The cross-validated mean of ``metric`` when there is one, else the holdout value."""
        return self.metrics.get(f"cv_{metric}_mean", self.metrics.get(metric, float("nan")))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ExperimentResult:
        return cls(**json.loads(text))
