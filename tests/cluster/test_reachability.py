"""Workers must reach the tracking server: a loopback or file URI with remote workers stops the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.helpers import forest_project, left_behind
from titanic_bench.cluster.address import ClusterAddress
from titanic_bench.cluster.reachability import check_scheduler, check_workers, local_only
from titanic_bench.errors import ClusterError

REMOTE = ClusterAddress(scheduler="tcp://scheduler.invalid:8786")


@pytest.mark.parametrize(
    ("uri", "only_here"),
    [
        ("http://127.0.0.1:5000", True),
        ("http://localhost:5000", True),
        ("sqlite:///tmp/mlflow.db", True),
        ("/tmp/mlruns", True),
        ("http://mlflow:5000", False),
        ("https://user:secret@tracking.example.org", False),
    ],
)
def test_which_tracking_uris_only_this_machine_can_use(uri: str, only_here: bool) -> None:
    assert local_only(uri) is only_here


def test_a_remote_scheduler_with_a_loopback_server_says_how_to_give_workers_a_server() -> None:
    with pytest.raises(ClusterError) as raised:
        check_scheduler("http://127.0.0.1:5123", REMOTE)
    message = str(raised.value)
    assert "http://127.0.0.1:5123" in message and "tcp://scheduler.invalid:8786" in message
    assert "--bench-tracking-uri" in message and "--host 0.0.0.0" in message


def test_a_local_cluster_or_a_reachable_server_passes() -> None:
    check_scheduler("http://127.0.0.1:5123", ClusterAddress(workers=2))
    check_scheduler("http://127.0.0.1:5123", ClusterAddress(scheduler="tcp://127.0.0.1:8786"))
    check_scheduler("http://mlflow:5000", REMOTE)


def test_a_worker_off_this_machine_is_refused_once_connected() -> None:
    check_workers("http://127.0.0.1:5123", ["tcp://127.0.0.1:40001"])
    check_workers("http://mlflow:5000", ["tcp://10.0.0.7:40001"])
    with pytest.raises(ClusterError, match=r"workers tcp://10\.0\.0\.7:40001 are not on its loopback"):
        check_workers("http://127.0.0.1:5123", ["tcp://127.0.0.1:40001", "tcp://10.0.0.7:40001"])


@pytest.mark.slow
def test_the_embedded_server_with_a_remote_scheduler_stops_before_connecting(tmp_path: Path) -> None:
    project = forest_project(tmp_path)
    result = project.run("--bench-dask", REMOTE.scheduler)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR: titanic-bench")]
    assert len(errors) == 1, result.errlines
    assert "reachable only from this machine" in errors[0] and "--bench-tracking-uri" in errors[0]
    assert "Traceback" not in "\n".join(result.errlines)
    assert left_behind(project.home) == []
