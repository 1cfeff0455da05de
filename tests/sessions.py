"""Run real benchmark sessions in a scratch project, for the acceptance tests.

Each session is a separate ``python -m pytest`` process with its own state folder,
exactly as a user runs it; results are read back from the session's MLflow store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BENCH_FILE = """
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from titanic_bench.experiments import ExperimentSpec
from titanic_bench.features import FeatureSet
from titanic_bench.runner import assert_result

SPECS = [
    ExperimentSpec(name, name, RandomForestClassifier, params, FeatureSet.SEED, floors={{}})
    for name, params in {forests!r}.items()
]
if {logistic!r}:
    SPECS.append(ExperimentSpec("logistic", "Logistic", LogisticRegression, {{"max_iter": 1000}},
                                FeatureSet.ENGINEERED, floors={{}}))


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_experiment(spec, titanic_bench):
    assert_result(titanic_bench.run(spec))
"""

SMALL_FOREST: dict[str, Any] = {"n_estimators": 30, "max_depth": 6, "random_state": 0}
#: Variables that would point a session at state outside its folder.
_ISOLATED = (
    "MLFLOW_TRACKING_URI",
    "TITANIC_BENCH_BACKEND_URI",
    "TITANIC_BENCH_MODE",
    "TITANIC_BENCH_GATE",
    "TITANIC_BENCH_CV",
    "TITANIC_BENCH_BASELINE",
    "PYTEST_ADDOPTS",
    "PYTEST_XDIST_WORKER",
)


def write_project(
    folder: Path, forests: Mapping[str, Mapping[str, Any]] | None = None, logistic: bool = True
) -> Path:
    """A project with ``benchmarks/test_bench.py`` over the given forests (and a logistic model)."""
    (folder / "benchmarks").mkdir(parents=True, exist_ok=True)
    specs = {name: dict(params) for name, params in (forests or {"small_forest": SMALL_FOREST}).items()}
    (folder / "benchmarks" / "test_bench.py").write_text(BENCH_FILE.format(forests=specs, logistic=logistic))
    return folder


def run_session(project: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in _ISOLATED}
    env["TITANIC_BENCH_HOME"] = str(home)
    command = [sys.executable, "-m", "pytest", "benchmarks", "-p", "no:cacheprovider", "-q", *args]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=900)


def assert_session(result: subprocess.CompletedProcess[str], returncode: int = 0) -> None:
    assert result.returncode == returncode, (
        f"exit {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    )


def leaderboard(home: Path) -> dict[str, Any]:
    return dict(json.loads((home / "reports" / "leaderboard.json").read_text()))


def run_ids(home: Path) -> dict[str, str]:
    return {entry["spec"]: entry["run_id"] for entry in leaderboard(home)["results"]}


def logged_results(tracking_uri: str, ids: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Per spec: every logged metric but timings, and every per-split series, from MLflow."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    results: dict[str, dict[str, Any]] = {}
    for spec, run_id in ids.items():
        run = client.get_run(run_id)
        values: dict[str, Any] = {k: v for k, v in run.data.metrics.items() if not k.endswith("_seconds")}
        for key in [k for k in values if k.endswith("_fold")]:
            history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
            values[key] = [m.value for m in history]
        results[spec] = values
    return results


def sqlite_uri(home: Path) -> str:
    return f"sqlite:///{home / 'mlflow.db'}"
