"""The bare compute of the grid: the same holdout fit and cross-validation of every spec,
over 2 processes with joblib, and nothing else (no MLflow, no plots, no model files).

The floor under every way of running the grid with the harness on this machine.
Cross-validation is the plan the perf script gives the sessions (``--bench-cv 5x1``).
Run: python benchmarks/perf/grid/bare_grid.py [N_JOBS]
"""

from __future__ import annotations

import sys
import time

from grid_experiments import GRID
from joblib import Parallel, delayed

from titanic_bench.data.loading import load_titanic
from titanic_bench.ml.crossval import CVPlan, cross_validate_spec
from titanic_bench.ml.evaluation import fit_and_score, holdout_split
from titanic_bench.ml.experiments import ExperimentSpec

#: What benchmarks/perf/dask_grid.py passes the sessions as --bench-cv.
PLAN = CVPlan(folds=5, repeats=1)


def compute(spec: ExperimentSpec) -> float:
    data = load_titanic("package")
    fit_and_score(spec, holdout_split(data))
    cv = cross_validate_spec(spec, data.features, data.target, PLAN, 1)
    return float(cv.summary()["cv_roc_auc_mean"])


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    started = time.perf_counter()
    scores = Parallel(n_jobs=jobs)(delayed(compute)(spec) for spec in GRID)
    print(f"{len(scores)} experiments in {time.perf_counter() - started:.1f} s over {jobs} processes")


if __name__ == "__main__":
    main()
