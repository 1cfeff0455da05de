"""The one way the acceptance tests run real benchmark sessions, and read what they left.

Each session is a separate ``python -m pytest`` process with its own state folder,
exactly as a user runs it; results are read back from the session's MLflow store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from titanic_bench.tracking.tags import RunKind, TagKey

FOREST_BENCH = """
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from titanic_bench import ExperimentSpec, FeatureSet, assert_result

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
    # Under GitHub Actions a test's session would append its leaderboard to the job's summary.
    "GITHUB_STEP_SUMMARY",
)


def write_project(
    folder: Path, forests: Mapping[str, Mapping[str, Any]] | None = None, logistic: bool = True
) -> Path:
    """A project with ``benchmarks/test_bench.py`` over the given forests (and a logistic model)."""
    (folder / "benchmarks").mkdir(parents=True, exist_ok=True)
    specs = {name: dict(params) for name, params in (forests or {"small_forest": SMALL_FOREST}).items()}
    (folder / "benchmarks" / "test_bench.py").write_text(
        FOREST_BENCH.format(forests=specs, logistic=logistic)
    )
    return folder


def session_environment(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _ISOLATED}
    env["TITANIC_BENCH_HOME"] = str(home)
    return env


def session_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "benchmarks", "-p", "no:cacheprovider", "-q", *args]


def run_session(
    project: Path, home: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``pytest benchmarks ARGS`` in ``project`` as a user runs it, state in ``home``."""
    env = {**session_environment(home), **(env or {})}
    return subprocess.run(
        session_command(*args), cwd=project, env=env, capture_output=True, text=True, timeout=900
    )


def start_session(
    project: Path, home: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """A session in its own process group, with SIGINT and SIGTERM at their defaults whatever
    this process inherited (a background job of a non-interactive shell ignores SIGINT)."""
    return subprocess.Popen(
        session_command(*args),
        cwd=project,
        env={**session_environment(home), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=default_signals,
    )


def default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def wait_for_finished_run(home: Path, timeout: float = 600.0) -> None:
    """Return once the session's SQLite store holds a FINISHED experiment run.

    Read with sqlite3, read-only: an MLflow client would migrate the schema while the
    server is creating it.
    """
    import sqlite3

    query = (
        "SELECT count(*) FROM runs JOIN tags ON runs.run_uuid = tags.run_uuid "
        "WHERE tags.key = 'run_kind' AND tags.value = 'experiment' AND runs.status = 'FINISHED'"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store = f"file:{home / 'mlflow.db'}?mode=ro"
        # Not created yet, or mid-migration: try again.
        with suppress(sqlite3.Error), closing(sqlite3.connect(store, uri=True)) as connection:
            if connection.execute(query).fetchone()[0]:
                return
        time.sleep(0.5)
    raise AssertionError(f"no experiment run finished within {timeout:.0f} s")


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


STARTS_LOG_ENV = "BENCH_STARTS_LOG"
#: Two cheap specs: the seed logistic regression, and a copy whose floors cannot be
#: met. Its name sorts first, so it would win the tie if failing runs could win.
TWO_SPEC_BENCH = """
import dataclasses

import pytest

from titanic_bench import EXPERIMENTS, assert_floors

LOGISTIC = next(spec for spec in EXPERIMENTS if spec.name == "logistic_regression")
IMPOSSIBLE = dataclasses.replace(
    LOGISTIC, name="a_impossible", title="Impossible", floors={"accuracy": 0.99, "roc_auc": 0.999}
)


@pytest.mark.parametrize("spec", [LOGISTIC, IMPOSSIBLE], ids=lambda spec: spec.name)
def test_experiment(spec, titanic_bench):
    assert_floors(titanic_bench.run(spec))
"""

#: Counts server starts from any process of the session (controller or worker).
COUNTING_CONFTEST = f"""
import os

from titanic_bench.stack import server as stack

_original_start = stack.EmbeddedServer.start


def _counting_start(self):
    # Sessions started with start_session (no count wanted) do not set the variable.
    if "{STARTS_LOG_ENV}" in os.environ:
        with open(os.environ["{STARTS_LOG_ENV}"], "a") as log:
            log.write(f"{{os.getpid()}}\\n")
    return _original_start(self)


stack.EmbeddedServer.start = _counting_start
"""


@dataclass
class BenchProject:
    """A project with the two-spec benchmark file and a conftest counting server starts."""

    root: Path
    home: Path

    @classmethod
    def create(cls, root: Path, home: Path, bench_file: str = TWO_SPEC_BENCH) -> BenchProject:
        (root / "benchmarks").mkdir(parents=True, exist_ok=True)
        (root / "pytest.ini").write_text("[pytest]\n")
        (root / "conftest.py").write_text(COUNTING_CONFTEST)
        (root / "benchmarks" / "test_bench.py").write_text(bench_file)
        return cls(root, home)

    @property
    def starts_log(self) -> Path:
        return self.root / "starts.log"

    def server_starts(self) -> int:
        return len(self.starts_log.read_text().split()) if self.starts_log.exists() else 0

    def run(self, *args: str, env: Mapping[str, str] | None = None) -> pytest.RunResult:
        """A session as a user runs it (``env`` added to its isolated environment), with
        pytester's result to match its output."""
        started = time.monotonic()
        extra = {STARTS_LOG_ENV: str(self.starts_log), **(env or {})}
        result = run_session(self.root, self.home, *args, env=extra)
        lines = result.stdout.splitlines(), result.stderr.splitlines()
        return pytest.RunResult(result.returncode, *lines, time.monotonic() - started)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """The session of :meth:`run`, started in its own process group and not waited for."""
        return start_session(self.root, self.home, *args, env={STARTS_LOG_ENV: str(self.starts_log)})

    def client(self) -> MlflowClient:
        uri = sqlite_uri(self.home)
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def experiment_runs(self, session_id: str | None = None) -> list[Run]:
        client = self.client()
        experiment = client.get_experiment_by_name("titanic-survival-prediction")
        assert experiment is not None
        query = f"tags.{TagKey.KIND} = '{RunKind.EXPERIMENT}'"
        if session_id:
            query += f" and tags.{TagKey.SESSION} = '{session_id}'"
        return list(client.search_runs([experiment.experiment_id], query))

    def run_artifacts(self, run: Run) -> set[str]:
        """Artifact paths of a run, read from the server's artifact folder on disk."""
        folder = self.home / "artifacts" / run.info.experiment_id / run.info.run_id / "artifacts"
        return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}

    def logged_model(self, run: Run) -> dict[str, object]:
        """The run's logged model (MLflow 3 keeps it apart from run artifacts): its MLmodel file."""
        import yaml

        models = self.home / "artifacts" / run.info.experiment_id / "models"
        for mlmodel in models.glob("*/artifacts/MLmodel"):
            content = yaml.safe_load(mlmodel.read_text())
            if content["run_id"] == run.info.run_id:
                content["files"] = sorted(p.name for p in mlmodel.parent.iterdir())
                return dict(content)
        raise AssertionError(f"no logged model for run {run.info.run_id} under {models}")
