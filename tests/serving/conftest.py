"""Fixtures of the serving tests: a registered champion and API processes.

Models are real: trained with the harness's specs, logged with skops to an embedded
MLflow server and registered, then loaded by the API from the registry.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.serving.helpers import SPECS, TITANIC_BENCH, Registered, register
from titanic_bench.stack.server import EmbeddedServer, free_port, stop_process_group


@pytest.fixture(scope="session")
def champion(tracking_server: EmbeddedServer) -> Registered:
    return register(tracking_server.url, SPECS["logistic_regression"], "serve_test_champion")


@dataclass
class ServeProcess:
    """``titanic-bench serve`` running in its own process group, its output in ``log``."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Start ``titanic-bench serve ARGS`` on a free port; stop its whole group afterwards."""
    started: list[ServeProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServeProcess:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        command = [str(TITANIC_BENCH), "serve", "--port", str(port), *args]
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        started.append(ServeProcess(process, f"http://127.0.0.1:{port}", log))
        return started[-1]

    yield start
    for served in started:
        stop_process_group(served.process.pid, leader=served.process)
        served.process.wait()
