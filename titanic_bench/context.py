"""What the controller decides once per session and every worker reads."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SessionContext:
    """The session's stack, experiment and data, as handed to xdist workers.

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
    cv_folds: int = 5
    cv_repeats: int = 3
    #: The baseline file each worker gates against; empty when the baseline gate is off.
    baseline_path: str = ""
    gate_metrics: list[str] = field(default_factory=lambda: ["accuracy", "roc_auc"])
    gate_alpha: float = 0.05
    gate_min_effect: float = 0.01

    @property
    def is_open(self) -> bool:
        """False in a worker until it has looked up the experiment and session run."""
        return bool(self.experiment_id and self.parent_run_id)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SessionContext:
        return cls(**json.loads(text))
