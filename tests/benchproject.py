"""A throw-away benchmark project for pytester sessions, and ways to inspect its results."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Imported before pytester snapshots sys.modules: pytester drops modules first
# imported inside a test, and SQLAlchemy's compiled parts break when re-imported.
import alembic.runtime.migration  # noqa: F401
import mlflow.store.model_registry.sqlalchemy_store
import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from titanic_bench.stack import live_processes
from titanic_bench.tracking import KIND_EXPERIMENT, TagKey

#: Two cheap specs: the seed logistic regression, and a copy whose floors cannot be
#: met. Its name sorts first, so it would win the tie if failing runs could win.
BENCH_FILE = """
import dataclasses

import pytest

from titanic_bench.experiments import EXPERIMENTS
from titanic_bench.runner import assert_floors

LOGISTIC = next(spec for spec in EXPERIMENTS if spec.name == "logistic_regression")
IMPOSSIBLE = dataclasses.replace(
    LOGISTIC, name="a_impossible", title="Impossible", floors={"accuracy": 0.99, "roc_auc": 0.999}
)


@pytest.mark.parametrize("spec", [LOGISTIC, IMPOSSIBLE], ids=lambda spec: spec.name)
def test_experiment(spec, titanic_bench):
    assert_floors(titanic_bench.run(spec))
"""

#: Counts server starts from any process of the session (controller or worker).
COUNTING_CONFTEST = """
import os

from titanic_bench import stack

_original_start = stack.EmbeddedServer.start


def _counting_start(self):
    with open(os.environ["BENCH_STARTS_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")
    return _original_start(self)


stack.EmbeddedServer.start = _counting_start
"""


@dataclass
class BenchProject:
    pytester: pytest.Pytester
    home: Path

    @property
    def starts_log(self) -> Path:
        return self.pytester.path / "starts.log"

    def server_starts(self) -> int:
        return len(self.starts_log.read_text().split()) if self.starts_log.exists() else 0

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess("benchmarks", *args, timeout=600)

    def client(self) -> MlflowClient:
        uri = f"sqlite:///{self.home / 'mlflow.db'}"
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def experiment_runs(self, session_id: str | None = None) -> list[Run]:
        client = self.client()
        experiment = client.get_experiment_by_name("titanic-survival-prediction")
        assert experiment is not None
        query = f"tags.{TagKey.KIND} = '{KIND_EXPERIMENT}'"
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


def make_project(pytester: pytest.Pytester, home: Path, monkeypatch: pytest.MonkeyPatch) -> BenchProject:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(COUNTING_CONFTEST)
    (pytester.path / "benchmarks").mkdir()
    (pytester.path / "benchmarks" / "test_bench.py").write_text(BENCH_FILE)
    monkeypatch.setenv("BENCH_STARTS_LOG", str(pytester.path / "starts.log"))
    return BenchProject(pytester, home)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain ``text`` (e.g. a state folder)."""
    return [
        f"{process.pid}: {process.command_line}"
        for process in live_processes()
        if text in process.command_line
    ]
