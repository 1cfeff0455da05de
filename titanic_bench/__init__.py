"""titanic-bench: a pytest-based, reproducible ML benchmark harness on MLflow.

The public API: import these from ``titanic_bench``; everything else is internal.
pytest imports this package for its plugin in every session, so the names are
loaded on first use (PEP 562), not here: a run that benchmarks nothing never imports
scikit-learn or MLflow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from titanic_bench.errors import BenchError
    from titanic_bench.ml.experiments import EXPERIMENTS, CalibratedSVC, ExperimentSpec, spec_id
    from titanic_bench.ml.features import FeatureSet
    from titanic_bench.ml.seed import SEED
    from titanic_bench.session.bench import Bench, assert_floors, assert_result
    from titanic_bench.session.results import ExperimentResult

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_HOMES = {
    "EXPERIMENTS": "titanic_bench.ml.experiments",
    "CalibratedSVC": "titanic_bench.ml.experiments",
    "ExperimentSpec": "titanic_bench.ml.experiments",
    "spec_id": "titanic_bench.ml.experiments",
    "FeatureSet": "titanic_bench.ml.features",
    "SEED": "titanic_bench.ml.seed",
    "Bench": "titanic_bench.session.bench",
    "assert_floors": "titanic_bench.session.bench",
    "assert_result": "titanic_bench.session.bench",
    "ExperimentResult": "titanic_bench.session.results",
    "BenchError": "titanic_bench.errors",
}

__all__ = [
    "EXPERIMENTS",
    "SEED",
    "Bench",
    "BenchError",
    "CalibratedSVC",
    "ExperimentResult",
    "ExperimentSpec",
    "FeatureSet",
    "__version__",
    "assert_floors",
    "assert_result",
    "spec_id",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'titanic_bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
