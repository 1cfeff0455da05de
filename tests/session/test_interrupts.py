"""A session cut short promotes nothing, says so, and leaves no run RUNNING or wrongly tagged."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from tests.support.processes import processes_mentioning
from tests.support.sessions import (
    SMALL_FOREST,
    leaderboard,
    run_session,
    sqlite_uri,
    start_session,
    wait_for_finished_run,
)
from tests.support.sessions import write_project as write_forests
from titanic_bench.options import DEFAULT_REGISTERED_MODEL

pytestmark = pytest.mark.slow

#: Enough experiments that a signal after the first finished run lands mid-session.
FORESTS = {
    f"forest_{index}": {**SMALL_FOREST, "n_estimators": 120, "random_state": index} for index in range(6)
}


def assert_nothing_promoted_and_no_run_left_open(home: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(sqlite_uri(home))
    assert client.search_model_versions(f"name='{DEFAULT_REGISTERED_MODEL}'") == []
    experiment = client.get_experiment_by_name("titanic-survival-prediction")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert runs, "the session logged nothing"
    assert [run.info.run_name for run in runs if run.info.status == "RUNNING"] == []
    cut_off = [
        run for run in runs if run.info.status != "FINISHED" and run.data.tags.get("run_kind") == "experiment"
    ]
    assert [run.info.run_name for run in cut_off if "floors" in run.data.tags] == []
    assert processes_mentioning(str(home)) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_after_the_first_finished_run_promotes_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    project, home = write_forests(tmp_path / "project", FORESTS, logistic=False), tmp_path / "state"
    session = start_session(project, home, "-n", "2")
    try:
        wait_for_finished_run(home)
        # Ctrl-C reaches the terminal's whole foreground group: the controller and its workers.
        os.killpg(session.pid, sig) if sig is signal.SIGINT else session.send_signal(sig)
        output, _ = session.communicate(timeout=300)
    finally:
        if session.poll() is None:
            os.killpg(session.pid, signal.SIGKILL)
    assert session.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "not promoted: the session was interrupted" in output
    assert leaderboard(home)["champion"]["version"] is None
    assert_nothing_promoted_and_no_run_left_open(home)


@pytest.mark.parametrize(
    ("stop", "exit_code", "why"),
    [
        (
            ("-p", "no:xdist", "-x"),
            pytest.ExitCode.TESTS_FAILED,
            "the session stopped before all its experiments ran",
        ),
        # xdist ends a --maxfail stop by raising its Interrupted: pytest exits INTERRUPTED.
        (("-n", "2", "--maxfail=1"), pytest.ExitCode.INTERRUPTED, "the session was interrupted"),
    ],
    ids=["x", "maxfail-xdist"],
)
def test_stopping_at_a_failure_after_a_passing_experiment_promotes_nothing(
    tmp_path: Path, stop: tuple[str, ...], exit_code: pytest.ExitCode, why: str
) -> None:
    # Second in the file, so a passing run finishes before the stop: without xdist it runs
    # after forest_0, and xdist sends the first two tests to one worker, in this order.
    first, *rest = FORESTS.items()
    forests = dict([first, ("impossible", SMALL_FOREST), *rest])
    project, home = write_forests(tmp_path / "project", forests, logistic=False), tmp_path / "state"
    bench = project / "benchmarks" / "test_bench.py"
    bench.write_text(
        bench.read_text().replace("floors={}", "floors={'accuracy': 0.99} if name == 'impossible' else {}")
    )
    result = run_session(project, home, *stop, "--bench-cv", "2x1")

    assert result.returncode == exit_code, result.stdout
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed[1]) >= 1, f"no experiment passed before the stop:\n{result.stdout}"
    assert f"not promoted: {why}" in result.stdout
    assert leaderboard(home)["champion"]["version"] is None
    assert_nothing_promoted_and_no_run_left_open(home)


CRASHING_TEST = """

def test_worker_crash():
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)  # what an out-of-memory kill does to an xdist worker
"""


def test_a_crashed_xdist_worker_promotes_nothing(tmp_path: Path) -> None:
    project = write_forests(tmp_path / "project", {"small_forest": SMALL_FOREST}, logistic=True)
    home = tmp_path / "state"
    bench = project / "benchmarks" / "test_bench.py"
    bench.write_text(bench.read_text() + CRASHING_TEST)
    result = run_session(project, home, "-n", "2", "--bench-cv", "2x1")

    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "not promoted: an xdist worker crashed while running" in result.stdout
    assert "test_worker_crash" in result.stdout
    assert_nothing_promoted_and_no_run_left_open(home)
