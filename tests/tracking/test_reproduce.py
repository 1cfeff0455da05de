"""Bit-identical results across sessions, process layouts and backends; ``reproduce``.

Every comparison uses ``==`` on the metrics read back from MLflow: holdout metrics,
CV summaries and every per-split score. Only ``*_seconds`` (timings) are left out:
they measure the machine, not the model, and legitimately differ.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest

from tests.support.ci import unavailable
from tests.support.sessions import (
    assert_session,
    leaderboard,
    logged_results,
    run_ids,
    run_session,
    sqlite_uri,
    write_project,
)
from titanic_bench.data.loading import packaged_csv
from titanic_bench.tracking import reproduce

pytestmark = pytest.mark.slow

CV = ("--bench-cv", "3x2")
POSTGRES_ENV = "TITANIC_BENCH_TEST_POSTGRES_URI"
POSTGRES_DEFAULT = "postgresql+psycopg2://root@127.0.0.1:5432/titanic_bench_test_repro"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def first(project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Session one, without xdist (so its folds run in two joblib processes)."""
    home = tmp_path_factory.mktemp("state-first")
    assert_session(run_session(project, home, "-p", "no:xdist", *CV))
    ids = run_ids(home)
    return {"home": home, "ids": ids, "results": logged_results(sqlite_uri(home), ids)}


def assert_identical(first: dict[str, dict[str, Any]], second: dict[str, dict[str, Any]]) -> None:
    assert set(first) == set(second) == {"small_forest", "logistic"}
    for spec in first:
        assert second[spec].keys() == first[spec].keys()
        differing = [name for name in first[spec] if first[spec][name] != second[spec][name]]
        assert not differing, f"{spec}: {differing} differ"
        assert len(first[spec]["cv_roc_auc_fold"]) == 6


def test_metrics_are_logged_exactly_as_reported(first: dict[str, Any]) -> None:
    board = {entry["spec"]: entry for entry in leaderboard(first["home"])["results"]}
    for spec, logged in first["results"].items():
        for name, value in board[spec]["metrics"].items():
            if not name.endswith("_seconds"):
                assert logged[name] == value, (spec, name)
        assert logged["cv_accuracy_fold"] == board[spec]["fold_scores"]["accuracy"]


def test_two_sessions_on_the_same_store_are_bit_identical(project: Path, first: dict[str, Any]) -> None:
    assert_session(run_session(project, first["home"], "-p", "no:xdist", *CV))
    ids = run_ids(first["home"])
    assert set(ids.values()).isdisjoint(first["ids"].values())  # new runs, not the old ones
    assert_identical(first["results"], logged_results(sqlite_uri(first["home"]), ids))


def test_xdist_workers_give_the_same_bits_as_one_process(
    project: Path, first: dict[str, Any], tmp_path: Path
) -> None:
    home = tmp_path / "state"
    assert_session(run_session(project, home, "-n", "2", *CV))
    assert_identical(first["results"], logged_results(sqlite_uri(home), run_ids(home)))


def postgres_uri() -> str:
    """A fresh database for this test; fail (not skip) under CI when PostgreSQL is unreachable."""
    import psycopg2
    from psycopg2 import sql

    from titanic_bench.stack.backend import mask_secrets, normalize_backend_uri

    uri = normalize_backend_uri(os.environ.get(POSTGRES_ENV, POSTGRES_DEFAULT))
    parts = urlsplit(uri)
    try:
        connection = psycopg2.connect(
            host=parts.hostname,
            port=parts.port or 5432,
            user=parts.username,
            password=parts.password,
            dbname="postgres",
            connect_timeout=5,
        )
    except psycopg2.OperationalError as error:
        message = mask_secrets(f"PostgreSQL for {POSTGRES_ENV} ({uri}) is unreachable: {error}".strip())
        unavailable(message)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(parts.path[1:]))
        )
    connection.close()
    return uri


@pytest.mark.postgres
def test_postgresql_backend_and_a_single_worker_give_the_same_bits(
    project: Path, first: dict[str, Any], tmp_path: Path
) -> None:
    uri = postgres_uri()
    assert_session(run_session(project, tmp_path / "state", "-n", "1", "--bench-backend-uri", uri, *CV))
    assert_identical(first["results"], logged_results(uri, run_ids(tmp_path / "state")))


def run_reproduce(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    reproduce.add_arguments(parser)
    code = reproduce.run(parser.parse_args(list(argv)))
    return code, capsys.readouterr().out


def test_reproduce_matches_an_untouched_run(
    first: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_reproduce(
        capsys, first["ids"]["small_forest"], "--tracking-uri", sqlite_uri(first["home"])
    )
    assert code == 0, out
    assert "DIFFERS" not in out
    assert "cv_roc_auc_fold (6 splits)" in out and "RESULT: every metric matches exactly" in out


def test_reproduce_reports_changed_data(
    first: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_csv(packaged_csv())
    frame.loc[:40, "Age"] = 80.0  # forty old passengers more
    changed = tmp_path / "changed.csv"
    frame.to_csv(changed, index=False)
    code, out = run_reproduce(
        capsys,
        first["ids"]["small_forest"],
        "--tracking-uri",
        sqlite_uri(first["home"]),
        "--data",
        str(changed),
    )
    assert code == 1
    assert "DATA DIFFERS" in out and "DIFFERS on split" in out and "RESULT: MISMATCH" in out


def test_reproduce_reports_a_changed_param(first: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_reproduce(
        capsys,
        first["ids"]["small_forest"],
        "--tracking-uri",
        sqlite_uri(first["home"]),
        "--param",
        "max_depth=2",
    )
    assert code == 1
    assert "PARAM CHANGED: max_depth logged 6, re-run with 2" in out and "RESULT: MISMATCH" in out


def test_reproduce_reports_a_run_whose_logged_param_does_not_give_its_metrics(
    first: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    forged = forge_run(sqlite_uri(first["home"]), first["ids"]["small_forest"], max_depth=2)
    code, out = run_reproduce(capsys, forged, "--tracking-uri", sqlite_uri(first["home"]))
    assert code == 1
    assert "roc_auc" in out and "DIFFERS" in out and "RESULT: MISMATCH" in out


def forge_run(tracking_uri: str, source_run: str, spec_name: str | None = None, **params: Any) -> str:
    """A copy of ``source_run`` with the metrics it logged but other estimator params
    (and, given ``spec_name``, another spec's name)."""
    import json

    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from titanic_bench.tracking.runs import ESTIMATOR_PARAMS

    client = MlflowClient(tracking_uri)
    run = client.get_run(source_run)
    logged = {
        **run.data.params,
        ESTIMATOR_PARAMS: json.dumps({**json.loads(run.data.params[ESTIMATOR_PARAMS]), **params}),
    }
    forged = client.create_run(run.info.experiment_id).info.run_id
    metrics = [
        Metric(m.key, m.value, m.timestamp, m.step)
        for key in run.data.metrics
        for m in client.get_metric_history(source_run, key)
    ]
    client.log_batch(
        forged,
        metrics=metrics,
        params=[Param(k, str(v)) for k, v in logged.items()],
        tags=[RunTag(k, v) for k, v in run.data.tags.items() if not k.startswith("mlflow.")]
        + ([RunTag("spec", spec_name)] if spec_name else []),
    )
    return str(forged)


def test_the_reproduce_command_exits_0_on_a_match(first: dict[str, Any]) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "titanic_bench.cli", "reproduce", first["ids"]["logistic"]]
    result = subprocess.run(
        [*command, "--tracking-uri", sqlite_uri(first["home"])], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RESULT: every metric matches exactly" in result.stdout


def reproduce_command(*argv: str, env: dict[str, str] | None = None) -> Any:
    import subprocess
    import sys

    command = [sys.executable, "-m", "titanic_bench.cli", "reproduce", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def assert_one_line_error(result: Any, expected: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"titanic-bench reproduce: {expected}"), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_param_scikit_learn_refuses_is_one_line_not_a_traceback(first: dict[str, Any]) -> None:
    result = reproduce_command(
        first["ids"]["small_forest"], "--tracking-uri", sqlite_uri(first["home"]), "--param", "max_depth=abc"
    )
    assert_one_line_error(result, "RandomForestClassifier cannot be re-run with params")
    assert "max_depth" in result.stderr


def test_a_server_that_is_down_is_named_as_such_without_its_password() -> None:
    from titanic_bench.stack.server import free_port

    uri = f"http://ada:hunter2@127.0.0.1:{free_port()}"
    result = reproduce_command("0123456789abcdef", "--tracking-uri", uri)
    assert_one_line_error(result, f"cannot reach the tracking server http://ada:***@127.0.0.1:{uri[-5:]}")
    assert "not found" not in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg2"])
def test_a_database_store_that_is_down_is_named_as_such_without_its_password(scheme: str) -> None:
    result = reproduce_command("0123456789abcdef", "--tracking-uri", f"{scheme}://u:hunter2@127.0.0.1:1/x")
    assert_one_line_error(result, f"cannot reach the tracking server {scheme}://u:***@127.0.0.1:1/x: ")
    assert "Start it, or pass --tracking-uri." in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_an_unreachable_test_database_is_reported_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(POSTGRES_ENV, "postgresql://u:hunter2@127.0.0.1:1/x")
    with pytest.raises((pytest.skip.Exception, pytest.fail.Exception)) as outcome:
        postgres_uri()
    assert "127.0.0.1:1" in str(outcome.value) and "hunter2" not in str(outcome.value)


def test_a_mistyped_home_is_an_error_not_a_new_empty_store(tmp_path: Path) -> None:
    typo = tmp_path / "titanic-bnech"
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    result = reproduce_command("0123456789abcdef", "--home", str(typo), env=env)
    assert_one_line_error(result, f"there is no MLflow store at {typo / 'mlflow.db'}")
    assert not typo.exists()


def test_list_params_are_reproduced_and_compared_with_the_spec_of_the_same_name(
    first: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    forged = forge_run(
        sqlite_uri(first["home"]), first["ids"]["small_forest"], monotonic_cst=[1] + [0] * 8, spec_name="svm"
    )
    code, out = run_reproduce(capsys, forged, "--tracking-uri", sqlite_uri(first["home"]))
    assert code == 1  # the constraint, applied as a list, changes the small forest's metrics
    assert "note: svm in experiments.py now differs from the logged params in" in out
    assert "monotonic_cst" in out


def test_dict_and_list_params_are_compared_without_hashing_them() -> None:
    logged = reproduce.LoggedRun(
        run_id="r",
        spec="svm",
        model_type="CalibratedSVC",
        estimator_params={"C": 1.0, "class_weight": {"0": 1, "1": 3}, "kernel": "rbf", "shape": [1, 2]},
        feature_set="seed",
        seed=42,
        cv=(5, 3, 42),
        data_digest="d",
        data_source="",
        metrics={},
        fold_scores={},
        environment={},
    )
    [note] = reproduce.code_differences(logged)
    assert "class_weight" in note and "shape" in note and "kernel" not in note
