"""Sessions whose experiments run as tasks on a real LocalCluster of 2 worker processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.entities import Run

from tests.cluster.helpers import QUICK_CV, TWO_FORESTS, forest_project, left_behind
from tests.support.sessions import BenchProject, logged_results, run_ids, sqlite_uri
from titanic_bench.options import DEFAULT_REGISTERED_MODEL
from titanic_bench.tracking.tags import TagKey

SPECS = {*TWO_FORESTS, "logistic"}


@pytest.fixture(scope="module")
def dask_session(tmp_path_factory: pytest.TempPathFactory) -> tuple[BenchProject, pytest.RunResult]:
    project = forest_project(tmp_path_factory.mktemp("dask"))
    return project, project.run("--bench-dask", "local:2", *QUICK_CV)


def finished_runs(project: BenchProject) -> list[Run]:
    return [run for run in project.experiment_runs() if run.info.status == "FINISHED"]


@pytest.mark.slow
def test_a_session_on_a_local_cluster_logs_each_experiment_once_and_promotes_once(
    dask_session: tuple[BenchProject, pytest.RunResult],
) -> None:
    project, result = dask_session
    assert result.ret == 0, "\n".join(result.outlines[-60:] + result.errlines[-30:])
    result.stdout.fnmatch_lines(["*running the experiments on Dask local:2 (2 workers)*", "*3 passed*"])
    runs = finished_runs(project)
    assert sorted(run.data.tags[TagKey.SPEC] for run in runs) == sorted(SPECS)
    # Logged by the workers, not by the controller: each run names the worker that ran it.
    workers = {run.data.tags[TagKey.WORKER] for run in runs}
    assert workers and all(worker.startswith("tcp://127.0.0.1:") for worker in workers)
    assert all(run.data.tags[TagKey.RUN_KEY].endswith(run.data.tags[TagKey.NODEID]) for run in runs)
    # Artifacts went through the server into its folder: the workers need no shared disk.
    assert all("plots/confusion_matrix.png" in project.run_artifacts(run) for run in runs)
    versions = project.client().search_model_versions(f"name='{DEFAULT_REGISTERED_MODEL}'")
    assert len(versions) == 1
    assert project.server_starts() == 1
    assert left_behind(project.home) == []


@pytest.mark.slow
def test_metrics_are_bit_identical_to_a_plain_session(
    dask_session: tuple[BenchProject, pytest.RunResult], tmp_path: Path
) -> None:
    project, result = dask_session
    assert result.ret == 0
    plain = forest_project(tmp_path)
    plain_result = plain.run("-p", "no:xdist", *QUICK_CV)
    assert plain_result.ret == 0, "\n".join(plain_result.outlines[-40:])

    on_dask = logged_results(sqlite_uri(project.home), run_ids(project.home))
    in_process = logged_results(sqlite_uri(plain.home), run_ids(plain.home))
    assert set(on_dask) == SPECS
    assert on_dask == in_process  # every metric but timings, and every per-split series, exactly


@pytest.mark.slow
def test_a_failing_task_fails_only_its_own_test_with_the_workers_error(tmp_path: Path) -> None:
    project = forest_project(tmp_path, {**TWO_FORESTS, "broken_forest": {"n_estimators": -3}})
    result = project.run("--bench-dask", "local:2", *QUICK_CV)

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*The 'n_estimators' parameter of RandomForestClassifier must be*"])
    result.stdout.fnmatch_lines(["FAILED *test_experiment[[]broken_forest[]]*", "*1 failed, 3 passed*"])
    assert sorted(run.data.tags[TagKey.SPEC] for run in finished_runs(project)) == sorted(SPECS)
    # The others still decide the session's winner.
    assert len(project.client().search_model_versions(f"name='{DEFAULT_REGISTERED_MODEL}'")) == 1
    assert left_behind(project.home) == []


def test_combining_with_xdist_is_refused_in_one_line(tmp_path: Path) -> None:
    project = forest_project(tmp_path)
    result = project.run("-n", "2", "--bench-dask", "local:2")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if "titanic-bench" in line]
    assert len(errors) == 1 and "drop -n" in errors[0] and "--bench-dask=local:2" in errors[0], (
        result.errlines
    )
    assert project.server_starts() == 0
