"""Faults on a real LocalCluster: a worker killed mid-task, and Ctrl-C during a session."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.cluster.helpers import QUICK_CV, forest_project, left_behind, store_rows
from tests.support.sessions import (
    SMALL_FOREST,
    BenchProject,
    leaderboard,
    start_session,
    wait_for_finished_run,
)
from titanic_bench.options import DEFAULT_REGISTERED_MODEL
from titanic_bench.tracking.tags import TagKey

pytestmark = pytest.mark.slow

FORESTS = {f"forest_{index}": {**SMALL_FOREST, "random_state": index} for index in range(4)}
#: The worker of an experiment run that is still being logged.
LOGGING_WORKER = f"""
SELECT tags.value FROM runs JOIN tags ON runs.run_uuid = tags.run_uuid
WHERE tags.key = '{TagKey.WORKER}' AND runs.status = 'RUNNING'
"""


def worker_listening_on(session: psutil.Process, address: str) -> psutil.Process | None:
    """The session's process that listens on ``address`` (tcp://127.0.0.1:PORT): a Dask worker."""
    port = int(address.rsplit(":", 1)[1])
    for child in session.children(recursive=True):
        try:
            if any(conn.laddr and conn.laddr.port == port for conn in child.net_connections("tcp")):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def kill_a_worker_while_it_logs(session: psutil.Process, home: Path, timeout: float = 600.0) -> None:
    """SIGKILL the worker process of the first run seen RUNNING: it dies mid-task."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for (address,) in store_rows(home, LOGGING_WORKER):
            worker = worker_listening_on(session, str(address))
            if worker is not None:
                worker.kill()
                return
        time.sleep(0.2)
    raise AssertionError(f"no run was being logged within {timeout:.0f} s")


def test_a_worker_killed_mid_task_leaves_one_finished_run_per_experiment(tmp_path: Path) -> None:
    # Started with start_session, as a user's terminal would: no server-start counting.
    project = forest_project(tmp_path, FORESTS, count_starts=False)
    session = start_session(project.root, project.home, "--bench-dask", "local:2", *QUICK_CV)
    try:
        kill_a_worker_while_it_logs(psutil.Process(session.pid), project.home)
        output, _ = session.communicate(timeout=900)
    finally:
        if session.poll() is None:
            os.killpg(session.pid, signal.SIGKILL)

    assert session.returncode == 0, output[-5000:]
    runs = project.experiment_runs()
    finished = sorted(run.data.tags[TagKey.SPEC] for run in runs if run.info.status == "FINISHED")
    assert finished == sorted([*FORESTS, "logistic"])
    # Dask re-ran the lost task; its retry found the attempt the worker left RUNNING.
    replaced = [run for run in runs if TagKey.REPLACED_BY in run.data.tags]
    assert replaced and all(run.info.status == "FAILED" for run in replaced)
    by_id = {run.info.run_id: run for run in runs}
    for run in replaced:
        retry = by_id[run.data.tags[TagKey.REPLACED_BY]]
        assert retry.data.tags[TagKey.RUN_KEY] == run.data.tags[TagKey.RUN_KEY]
        assert retry.info.status == "FINISHED"
    assert len(project.client().search_model_versions(f"name='{DEFAULT_REGISTERED_MODEL}'")) == 1
    assert left_behind(project.home) == []


def test_ctrl_c_cancels_the_tasks_and_promotes_nothing(tmp_path: Path) -> None:
    project = forest_project(
        tmp_path,
        {f"forest_{index}": {**SMALL_FOREST, "random_state": index} for index in range(8)},
        count_starts=False,
    )
    session = start_session(project.root, project.home, "--bench-dask", "local:2", *QUICK_CV)
    try:
        wait_for_finished_run(project.home)
        session.send_signal(signal.SIGINT)
        output, _ = session.communicate(timeout=300)
    finally:
        if session.poll() is None:
            os.killpg(session.pid, signal.SIGKILL)

    assert session.returncode == pytest.ExitCode.INTERRUPTED, output[-5000:]
    assert "not promoted: the session was interrupted" in output
    assert leaderboard(project.home)["champion"]["version"] is None
    assert_cut_off(project)


def assert_cut_off(project: BenchProject) -> None:
    """Nothing promoted, no run left RUNNING, fewer runs than experiments, no process left."""
    client = project.client()
    assert client.search_model_versions(f"name='{DEFAULT_REGISTERED_MODEL}'") == []
    runs = project.experiment_runs()
    assert [run.info.run_name for run in runs if run.info.status == "RUNNING"] == []
    assert len([run for run in runs if run.info.status == "FINISHED"]) < 9
    assert left_behind(project.home) == []
