"""Fixtures shared by the harness's own tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from titanic_bench.stack.server import EmbeddedServer
from titanic_bench.tracking.client import Tracker


@pytest.fixture
def bench_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state folder; MLflow and the harness keep nothing outside it."""
    home = tmp_path / "state"
    monkeypatch.setenv("TITANIC_BENCH_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("TITANIC_BENCH_BACKEND_URI", raising=False)
    return home


@pytest.fixture
def sqlite_tracker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tracker:
    """A client of a SQLite store in ``tmp_path``, with no server in between.

    Without a server MLflow puts artifacts under ``./mlruns`` of the working directory,
    so the test runs in ``tmp_path``: nothing lands in the checkout.
    """
    monkeypatch.chdir(tmp_path)
    return Tracker.connect(f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """One embedded MLflow server (SQLite) for the tests that only need somewhere to log."""
    root = tmp_path_factory.mktemp("tracking-server")
    server = EmbeddedServer(
        f"sqlite:///{root / 'mlflow.db'}", root / "artifacts", root / "server.log"
    ).start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
