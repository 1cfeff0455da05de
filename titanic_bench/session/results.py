"""One experiment's outcome, as it travels from a worker to the controller.

Workers put it, JSON-encoded, into the test item's ``user_properties``; pytest
ships those in the report the controller's ``pytest_runtest_logreport`` sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from titanic_bench.ml import metrics as table

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

    @property
    def eligible(self) -> bool:
        """Whether this run may become the champion: floors met and gate passed."""
        return self.passed and not self.gate_failed

    def cv_mean(self, metric: str) -> float:
        return self.metrics[f"cv_{metric}_mean"]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ExperimentResult:
        return cls(**json.loads(text))


def ranked(results: Iterable[ExperimentResult], metric: str) -> list[ExperimentResult]:
    """Eligible runs first, each group best first by the cross-validated mean of ``metric``
    (ties to the smaller spec name): the winner, if any, is the first."""
    direction = table.metric(metric)
    return sorted(results, key=lambda r: (not r.eligible, direction.rank_key(r.cv_mean(metric)), r.spec))
