"""Reaching a scheduler: bounded retries naming the address; a session on a running cluster."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.cluster.helpers import QUICK_CV, dask_cluster, forest_project, left_behind
from titanic_bench.cluster.connect import ATTEMPT_TIMEOUT, connect, require_dask
from titanic_bench.errors import ClusterError
from titanic_bench.options import DEFAULT_REGISTERED_MODEL
from titanic_bench.stack.server import Retry, free_port
from titanic_bench.tracking.tags import TagKey


@pytest.mark.slow
def test_an_unreachable_scheduler_fails_after_the_attempts_naming_its_address() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    retry = Retry(attempts=2, first_delay=0.1)
    started = time.monotonic()
    with pytest.raises(ClusterError) as raised:
        connect(address, retry)
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert address in message and "after 2 attempts" in message and "dask scheduler" in message
    # Bounded: two attempts and the pause between them, with slack for a loaded machine.
    assert elapsed < 2 * ATTEMPT_TIMEOUT + 0.1 + 30


@pytest.mark.slow
def test_a_session_with_an_unreachable_scheduler_stops_in_one_line(tmp_path: Path) -> None:
    project = forest_project(tmp_path)
    address = f"tcp://127.0.0.1:{free_port()}"
    result = project.run("--bench-dask", address, "--bench-connect-attempts", "2")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR: titanic-bench")]
    assert len(errors) == 1 and f"the Dask scheduler at {address} is unreachable" in errors[0], (
        result.errlines
    )
    assert left_behind(project.home) == []


def test_without_the_dask_extra_the_message_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed: find_spec gives None
    with pytest.raises(ClusterError, match=r"needs distributed, which are not installed: pip install"):
        require_dask()


@pytest.mark.slow
def test_a_session_without_dask_installed_stops_in_one_line(tmp_path: Path) -> None:
    project = forest_project(tmp_path)
    with (project.root / "conftest.py").open("a") as conftest:
        conftest.write("\nimport sys\n\nsys.modules['distributed'] = None  # not installed\n")
    result = project.run("--bench-dask", "local:1")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR: titanic-bench")]
    assert len(errors) == 1 and "titanic-bench[dask]" in errors[0], result.errlines
    assert "Traceback" not in "\n".join(result.outlines + result.errlines)
    assert left_behind(project.home) == []


@pytest.mark.slow
def test_a_session_on_a_running_cluster_started_with_dasks_own_commands(tmp_path: Path) -> None:
    project = forest_project(tmp_path)
    with dask_cluster(workers=2) as scheduler:
        result = project.run("--bench-dask", scheduler, *QUICK_CV)
        assert result.ret == 0, "\n".join(result.outlines[-40:] + result.errlines[-20:])
        # The cluster outlives the session: the session stops only what it started.
        assert left_behind(project.home) == []

    runs = [run for run in project.experiment_runs() if run.info.status == "FINISHED"]
    assert len(runs) == 3 and all(TagKey.WORKER in run.data.tags for run in runs)
    assert len(project.client().search_model_versions(f"name='{DEFAULT_REGISTERED_MODEL}'")) == 1
