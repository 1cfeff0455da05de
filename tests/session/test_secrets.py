"""A password in the tracking URI appears nowhere a session writes: not in its output, its
reports, its runs' params and tags, or the files of its state folder. (The backend URI's
password, in tests/stack/test_postgres.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.sessions import run_session, write_project

pytestmark = pytest.mark.slow

SECRET = "hunter2"
CV = ("--bench-cv", "2x1")


def logged_text(tracking_uri: str) -> list[str]:
    """Every param and tag value of every run of the session's experiment."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.get_experiment_by_name("titanic-survival-prediction")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert runs
    return [value for run in runs for value in (*run.data.params.values(), *run.data.tags.values())]


def files_holding(folder: Path, text: str) -> list[str]:
    return [str(path) for path in folder.rglob("*") if path.is_file() and text.encode() in path.read_bytes()]


def assert_secret_nowhere(result: Any, home: Path, tracking_uri: str) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert [value for value in logged_text(tracking_uri) if SECRET in value] == []
    assert files_holding(home, SECRET) == []


def test_a_password_in_the_tracking_uri_stays_in_the_process(tmp_path: Path, tracking_server: Any) -> None:
    project, home = write_project(tmp_path / "project", logistic=False), tmp_path / "state"
    host_port = tracking_server.url.removeprefix("http://")
    with_password = f"http://ada:{SECRET}@{host_port}"
    result = run_session(
        project,
        home,
        "-p",
        "no:xdist",
        *CV,
        "--bench-tracking-uri",
        with_password,
        "--bench-registered-model",
        "titanic_secret_tracking",
    )

    assert "http://ada:***@" in result.stdout
    assert_secret_nowhere(result, home, tracking_server.url)
