"""The tracking server dies mid-session: the session ends in bounded time, on one line per
failure naming the server, promotes nothing, and a later session closes what it left open."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.support.sessions import (
    SMALL_FOREST,
    run_session,
    start_session,
    wait_for_finished_run,
    write_project,
)
from titanic_bench.options import DEFAULT_REGISTERED_MODEL
from titanic_bench.stack.server import EmbeddedServer

pytestmark = pytest.mark.slow

FORESTS = {f"forest_{seed}": {**SMALL_FOREST, "n_estimators": 150, "random_state": seed} for seed in range(6)}


def server_on(root: Path, port: int = 0) -> EmbeddedServer:
    server = EmbeddedServer(
        f"sqlite:///{root / 'mlflow.db'}", root / "artifacts", root / "server.log", port=port
    )
    server.start().wait_ready()
    return server


def test_a_server_killed_mid_session_fails_it_in_one_line_per_test_and_promotes_nothing(
    tmp_path: Path,
) -> None:
    from mlflow.tracking import MlflowClient

    store = tmp_path / "server"
    server = server_on(store)
    project, home = write_project(tmp_path / "project", FORESTS, logistic=False), tmp_path / "state"
    session = start_session(project, home, "-n", "2", "--bench-tracking-uri", server.url)
    try:
        wait_for_finished_run(store)
        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGKILL)  # the server's whole group, as a crash would
        server.process.wait()
        server.process = None
        output, _ = session.communicate(timeout=300)  # bounds a hang; the README reports the time
    finally:
        if session.poll() is None:
            os.killpg(session.pid, signal.SIGKILL)
        server.stop()

    assert session.returncode == pytest.ExitCode.TESTS_FAILED, output
    failures = [line for line in output.splitlines() if line.startswith("FAILED benchmarks/")]
    assert failures, output
    assert "titanic-bench: end of session failed" in output
    assert f"tracking server {server.url}" in output
    # The cases that started after the kill failed before training, not after it.
    assert "titanic-bench: reaching the session run before training failed" in output
    assert "During handling of the above exception" not in output
    assert "Traceback" not in output and "INTERNALERROR" not in output

    # Back up on the same store: nothing promoted; the dead session's runs are still RUNNING,
    # and the next session ends them as FAILED and says so.
    revived = server_on(store, port=int(server.url.rsplit(":", 1)[1]))
    try:
        client = MlflowClient(tracking_uri=revived.url, registry_uri=revived.url)
        assert client.search_model_versions(f"name='{DEFAULT_REGISTERED_MODEL}'") == []
        experiment = client.get_experiment_by_name("titanic-survival-prediction")
        assert experiment is not None
        left_open = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
        assert left_open, "the killed session left nothing RUNNING"
        write_project(project, {"small_forest": SMALL_FOREST}, logistic=False)
        after = run_session(
            project, home, "-p", "no:xdist", "--bench-cv", "2x1", "--bench-tracking-uri", revived.url
        )
        assert after.returncode == 0, after.stdout
        assert "ended as FAILED the runs of earlier sessions whose process died" in after.stdout
        runs = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
        assert runs == []
        closed = [client.get_run(run.info.run_id) for run in left_open]
        assert {run.info.status for run in closed} == {"FAILED"}
    finally:
        revived.stop()
