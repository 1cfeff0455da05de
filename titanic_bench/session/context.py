"""What the controller decides once per session and every worker reads."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from titanic_bench.gates.checks import GatePolicy
from titanic_bench.ml.crossval import CVPlan


@dataclass(frozen=True)
class SessionContext:
    """The session's stack, experiment, data and plans, as handed to xdist workers.

    Built by the controller (or the single process without xdist); workers get it
    through ``workerinput`` and never start servers or create experiments. Workers
    receive it before the stack is up, without the experiment and session-run ids.
    """

    session_id: str
    tracking_uri: str
    ui_url: str
    experiment_id: str
    experiment_name: str
    parent_run_id: str
    data_source: str
    data_digest: str
    allow_other_data: bool
    registered_model: str
    pip_requirements: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    cv: CVPlan = field(default_factory=CVPlan)
    policy: GatePolicy = field(default_factory=GatePolicy)
    #: The baseline file's experiments, as the controller read and checked it; None when
    #: the baseline gate is off.
    baseline: dict[str, Any] | None = None

    @property
    def is_open(self) -> bool:
        """False in a worker until it has looked up the experiment and session run."""
        return bool(self.experiment_id and self.parent_run_id)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SessionContext:
        values = json.loads(text)
        cv, policy = CVPlan(**values.pop("cv")), GatePolicy.from_dict(values.pop("policy"))
        return cls(**values, cv=cv, policy=policy)
