"""A 24-experiment grid (forests and boosting over 12 settings each) for benchmarks/perf/dask_grid.py.

Not collected by ``pytest benchmarks`` (the name does not match ``test_*.py``); the perf
script names the file. Each fit is small, so one whole session takes a minute or so here.
"""

from __future__ import annotations

import itertools

import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

from titanic_bench import SEED, Bench, ExperimentSpec, FeatureSet, assert_result, spec_id

FORESTS = [
    ExperimentSpec(
        f"forest_{trees}_{depth}_{leaf}",
        f"Forest {trees} trees, depth {depth}, leaf {leaf}",
        RandomForestClassifier,
        {"n_estimators": trees, "max_depth": depth, "min_samples_leaf": leaf, "random_state": SEED},
        FeatureSet.ENGINEERED,
        floors={},
    )
    for trees, depth, leaf in itertools.product((10, 30), (4, 6, 8), (1, 3))
]
BOOSTING = [
    ExperimentSpec(
        f"boosting_{stages}_{depth}_{int(rate * 100)}",
        f"Boosting {stages} stages, depth {depth}, rate {rate}",
        GradientBoostingClassifier,
        {"n_estimators": stages, "max_depth": depth, "learning_rate": rate, "random_state": SEED},
        FeatureSet.ENGINEERED,
        floors={},
    )
    for stages, depth, rate in itertools.product((20, 40), (2, 3), (0.05, 0.1, 0.2))
]
GRID = FORESTS + BOOSTING


@pytest.mark.parametrize("spec", GRID, ids=spec_id)
def test_grid(spec: ExperimentSpec, titanic_bench: Bench) -> None:
    assert_result(titanic_bench.run(spec))
