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

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ExperimentResult:
        return cls(**json.loads(text))
