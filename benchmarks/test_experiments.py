"""The benchmark: one case per experiment spec, each trained and logged in its own MLflow run."""

from __future__ import annotations

import pytest

from titanic_bench import EXPERIMENTS, Bench, ExperimentSpec, assert_result, spec_id


@pytest.mark.parametrize("spec", EXPERIMENTS, ids=spec_id)
def test_experiment(spec: ExperimentSpec, titanic_bench: Bench) -> None:
    assert_result(titanic_bench.run(spec))
