"""What the cluster tests share: a small two-forest project, reading a session's store, and a
real Dask scheduler and workers started with Dask's own commands, on loopback."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from pathlib import Path

from tests.support.processes import FoundProcess, processes_with_environment
from tests.support.sessions import SMALL_FOREST, BenchProject, write_project
from titanic_bench.paths import HOME_ENV
from titanic_bench.stack.server import free_port, stop_process_group

TWO_FORESTS = {"forest_a": SMALL_FOREST, "forest_b": {**SMALL_FOREST, "random_state": 1}}
#: The smallest cross-validation: these tests are about where the work runs, not its quality.
QUICK_CV = ("--bench-cv", "2x1")


def forest_project(
    root: Path, forests: dict[str, dict[str, object]] | None = None, count_starts: bool = True
) -> BenchProject:
    """A BenchProject whose benchmark file holds the given forests and a logistic regression;
    with ``count_starts``, its conftest counts server starts (sessions then need
    :meth:`BenchProject.run`, which says where to count)."""
    if not count_starts:
        return BenchProject(write_project(root / "project", forests or TWO_FORESTS), root / "state")
    project = BenchProject.create(root / "project", root / "state")
    write_project(project.root, forests or TWO_FORESTS)
    return project


def left_behind(home: Path) -> list[FoundProcess]:
    """Processes the session in ``home`` started that still run (its workers included)."""
    return processes_with_environment(HOME_ENV, str(home))


def store_rows(home: Path, query: str) -> list[tuple[object, ...]]:
    """Rows of a read-only query on the session's SQLite store; none while it is being created."""
    with (
        suppress(sqlite3.Error),
        closing(sqlite3.connect(f"file:{home / 'mlflow.db'}?mode=ro", uri=True)) as db,
    ):
        return list(db.execute(query).fetchall())
    return []


DASK = str(Path(sys.executable).with_name("dask"))
WORKER_ARGS = ("--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def dask_cluster(workers: int = 1, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """``dask scheduler`` and ``dask worker ADDRESS --nworkers N`` (with ``env`` added to the
    workers' environment), each in its own process group; yields the scheduler's address."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            assert time.monotonic() < deadline, f"dask scheduler not listening on {port} after 60 s"
            time.sleep(0.2)
        worker = subprocess.Popen(
            [DASK, "worker", address, *WORKER_ARGS, "--nworkers", str(workers)],
            env={**os.environ, **(env or {})},
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        yield address
    finally:
        for process in (worker, scheduler):
            if process is not None:
                stop_process_group(process.pid, grace=10.0)
                process.wait(timeout=30)
