"""docker-compose.yml's `cluster` profile: a Dask scheduler and two workers from the project
image, and bench-cluster submitting to them; the services' own commands run natively."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.stack.test_compose import compose, option, raw_compose
from tests.support.processes import group_members
from titanic_bench.cluster.address import parse_cluster_address
from titanic_bench.stack.server import free_port, stop_process_group

CLUSTER = {"dask-scheduler", "dask-worker-1", "dask-worker-2", "bench-cluster"}
SCHEDULER = "tcp://dask-scheduler:8786"


def services() -> dict[str, Any]:
    return dict(compose()["services"])


def test_the_cluster_profile_holds_a_scheduler_two_workers_and_its_bench() -> None:
    profiled = {name for name, service in services().items() if "cluster" in service.get("profiles", [])}
    assert profiled == CLUSTER


def test_every_cluster_service_runs_the_project_image_so_versions_match_bench() -> None:
    bench = services()["bench"]
    for name in CLUSTER:
        service = services()[name]
        assert (service["image"], service["build"]) == (bench["image"], bench["build"]), name


def test_scheduler_and_worker_commands_are_dasks_own() -> None:
    scheduler = services()["dask-scheduler"]
    command = scheduler["command"]
    assert isinstance(command, list) and command[:2] == ["dask", "scheduler"]
    assert (option(command, "--host"), option(command, "--port")) == ("0.0.0.0", "8786")
    assert "8786" in " ".join(scheduler["healthcheck"]["test"])
    for name in ("dask-worker-1", "dask-worker-2"):
        worker = services()[name]
        command = worker["command"]
        assert isinstance(command, list) and command[:3] == ["dask", "worker", SCHEDULER]
        assert (option(command, "--nworkers"), option(command, "--nthreads")) == ("1", "1")
        assert worker["depends_on"]["dask-scheduler"] == {"condition": "service_healthy"}


def test_bench_cluster_submits_to_the_scheduler_and_logs_to_the_server_the_workers_reach() -> None:
    service = services()["bench-cluster"]
    command = service["command"]
    assert isinstance(command, list) and command[:2] == ["pytest", "benchmarks"]
    assert "-n" not in command  # refused together with --bench-dask
    assert parse_cluster_address("--bench-dask", option(command, "--bench-dask")).scheduler == SCHEDULER
    # Not a loopback URI: the workers, in other containers, log to it themselves.
    assert option(command, "--bench-tracking-uri") == "http://mlflow:5000"
    assert raw_compose()["services"]["bench-cluster"]["environment"]["MLFLOW_TRACKING_URI"] == (
        "http://mlflow:5000"
    )
    assert set(service["depends_on"]) == {"mlflow", "dask-scheduler", "dask-worker-1", "dask-worker-2"}


def native(command: list[str], port: int) -> list[str]:
    """The service's command with only the listen host, port and scheduler address moved to loopback."""
    moves = {"0.0.0.0": "127.0.0.1", "8786": str(port), SCHEDULER: f"tcp://127.0.0.1:{port}"}
    assert command[0] == "dask"  # the image's console script; here, this venv's
    return [str(Path(sys.executable).with_name("dask")), *(moves.get(arg, arg) for arg in command[1:])]


@pytest.mark.slow
def test_parity_the_scheduler_and_worker_commands_work_natively() -> None:
    from distributed import Client

    port = free_port()
    started = []
    try:
        for name in ("dask-scheduler", "dask-worker-1", "dask-worker-2"):
            command = native(services()[name]["command"], port)
            process = subprocess.Popen(
                [*command, "--host", "127.0.0.1"] if name != "dask-scheduler" else command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=dict(os.environ),
                start_new_session=True,
            )
            started.append(process)
            if name == "dask-scheduler":
                time.sleep(2.0)  # the workers retry until the scheduler listens, in any case
        with Client(f"tcp://127.0.0.1:{port}", timeout=60, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=120)
            workers = client.scheduler_info(n_workers=-1)["workers"]
            assert len(workers) == 2
            assert {info["nthreads"] for info in workers.values()} == {1}
    finally:
        for process in reversed(started):
            stop_process_group(process.pid, grace=10.0)
            process.wait(timeout=30)
            assert group_members(process.pid) == []
