"""``titanic-bench serve`` as a process: what a benchmark session registered, the embedded
server, errors on one line, and request bodies refused before they cost memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.serving.conftest import ServeProcess
from tests.serving.helpers import (
    PASSENGER,
    TITANIC_BENCH,
    api_rows,
    get_json,
    offline,
    tracking_to,
    wait_until,
)
from tests.support.processes import processes_mentioning, stop_groups_mentioning
from tests.support.sessions import BenchProject
from titanic_bench.data.loading import load_titanic
from titanic_bench.stack.server import EmbeddedServer, free_port

BENCH_FILE = """
import pytest

from titanic_bench import EXPERIMENTS, assert_floors

CHEAP = [spec for spec in EXPERIMENTS if spec.name == "logistic_regression"]


@pytest.mark.parametrize("spec", CHEAP, ids=lambda spec: spec.name)
def test_experiment(spec, titanic_bench):
    assert_floors(titanic_bench.run(spec))
"""


@pytest.mark.slow
def test_uvicorn_process_serves_the_champion_of_a_benchmark_session(
    pytester: pytest.Pytester,
    tracking_server: EmbeddedServer,
    serve_process: Callable[..., ServeProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "serve_test_session"
    project = BenchProject.create(pytester.path, pytester.path / "state", bench_file=BENCH_FILE)
    options = {
        "--bench-mode": "connect",
        "--bench-tracking-uri": tracking_server.url,
        "--bench-registered-model": name,
    }
    arguments = [item for option in options.items() for item in option]
    result = project.run("-p", "no:xdist", *arguments)
    result.assert_outcomes(passed=1)
    registered = MlflowClient(tracking_server.url).get_model_version_by_alias(name, "champion")

    url = serve_process("--tracking-uri", tracking_server.url, "--model-uri", f"models:/{name}@champion").url
    wait_until(lambda: (get_json(f"{url}/health") or {}).get("model_loaded"), "the served champion")
    assert get_json(f"{url}/health")["model_version"] == str(registered.version)
    described = get_json(f"{url}/model")
    assert (described["run_id"], described["spec"]) == (registered.tags["run_id"], "logistic_regression")
    assert described["session_id"] == registered.tags["session_id"]

    # The reference: the same version loaded by MLflow's own loader.
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    with tracking_to(tracking_server.url):
        reference = mlflow.sklearn.load_model(f"models:/{name}/{registered.version}")
    features = load_titanic().features
    served = httpx.post(f"{url}/predict/batch", json=api_rows(features), timeout=60).json()
    survived, probability = offline(reference, features)
    assert [item["survived"] for item in served] == survived.tolist()
    assert [item["probability"] for item in served] == probability.tolist()


@pytest.mark.slow
def test_without_a_tracking_uri_it_runs_and_then_stops_an_embedded_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve_process: Callable[..., ServeProcess]
) -> None:
    home = tmp_path / "embedded-home"
    monkeypatch.setenv("TITANIC_BENCH_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    served = serve_process()
    try:
        wait_until(
            lambda: "not found" in str((get_json(f"{served.url}/health") or {}).get("problem")),
            "the registry",
        )
        assert get_json(f"{served.url}/health")["model_loaded"] is False
        assert processes_mentioning(str(home)), "no embedded MLflow server was started"
        served.process.terminate()
        served.process.wait(60)
        wait_until(lambda: not processes_mentioning(str(home)), "the embedded server to stop", 30)
    finally:
        stop_groups_mentioning(str(home))


# --- errors on one line ------------------------------------------------------------------


def serve_fails(*args: str, env: dict[str, str] | None = None, entry: str = "cli") -> str:
    """Run ``titanic-bench serve ARGS`` expecting it to stop at once; its stderr."""
    command = [str(TITANIC_BENCH), "serve", *args]
    if entry == "module":
        command = [sys.executable, "-m", "titanic_bench.serving.app", *args]
    environment = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**environment, **(env or {})}
    )
    assert result.returncode == 2, result
    assert "Traceback" not in result.stdout + result.stderr
    return result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["cli", "module"])
def test_a_bad_model_uri_is_one_line(entry: str) -> None:
    stderr = serve_fails("--model-uri", "models:/titanic_survival", "--port", str(free_port()), entry=entry)
    assert stderr.startswith("titanic-bench serve: model URI 'models:/titanic_survival' is not understood")
    assert stderr.count("\n") == 1


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["cli", "module"])
def test_an_unusable_backend_is_one_line(entry: str, tmp_path: Path) -> None:
    env = {
        "TITANIC_BENCH_BACKEND_URI": "postgresql://nobody@127.0.0.1:1/x",
        "TITANIC_BENCH_HOME": str(tmp_path),
    }
    stderr = serve_fails("--port", str(free_port()), env=env, entry=entry)
    assert stderr.startswith(
        "titanic-bench serve: cannot connect to PostgreSQL for postgresql://nobody@127.0.0.1:1/x"
    )
    assert stderr.count("\n") == 1


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        yield taken.getsockname()[1]


def test_a_port_in_use_is_one_line(taken_port: int, tmp_path: Path) -> None:
    env = {"TITANIC_BENCH_HOME": str(tmp_path / "state")}
    stderr = serve_fails(
        "--port", str(taken_port), "--tracking-uri", f"http://127.0.0.1:{free_port()}", env=env
    )
    assert stderr.startswith(f"titanic-bench serve: cannot listen on 127.0.0.1:{taken_port}")
    assert "--port" in stderr and stderr.count("\n") == 1
    assert not (tmp_path / "state").exists()  # refused before anything was started


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TITANIC_BENCH_POLL_SECONDS", "soon"),
        ("TITANIC_BENCH_BATCH_LIMIT", "0"),
        ("TITANIC_BENCH_BODY_LIMIT", "1e9"),
    ],
)
def test_a_bad_environment_value_is_one_line_naming_it(variable: str, value: str) -> None:
    stderr = serve_fails(
        "--port", str(free_port()), "--tracking-uri", "http://127.0.0.1:1", env={variable: value}
    )
    assert stderr.startswith(f"titanic-bench serve: {variable}={value!r} must be a positive")
    assert stderr.count("\n") == 1


@pytest.mark.slow
def test_a_bad_flag_is_argparses_usage_error() -> None:
    stderr = serve_fails("--body-limit", "lots")
    assert "usage: titanic-bench serve" in stderr
    assert "--body-limit='lots' must be a positive int" in stderr


# --- bounded request bodies --------------------------------------------------------------

BODY_BYTES = 50 * 1024 * 1024


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def chunks(total: int, size: int = 1024 * 1024) -> Iterator[bytes]:
    """A JSON array of passengers, streamed (chunked: no Content-Length)."""
    row = (b'{"pclass": 3, "sex": "male", "sibsp": 0, "parch": 0},' * (size // 54))[:size]
    yield b"["
    for _ in range(total // size):
        yield row


@pytest.mark.slow
def test_a_50_mb_body_is_refused_in_under_a_second_without_growing_the_process(
    serve_process: Callable[..., ServeProcess],
) -> None:
    served = serve_process("--tracking-uri", f"http://127.0.0.1:{free_port()}")
    wait_until(
        lambda: "start-up" not in str((get_json(f"{served.url}/health") or {}).get("problem", "start-up")),
        "the first poll (its imports)",
    )
    before = peak_rss_mb(served.process.pid)
    body = b"[" + b" " * (BODY_BYTES - 2) + b"]"
    with httpx.Client(base_url=served.url, timeout=60) as client:
        for name, content in (("Content-Length", body), ("chunked", chunks(BODY_BYTES))):
            started = time.monotonic()
            response = client.post(
                "/predict/batch", content=content, headers={"content-type": "application/json"}
            )
            elapsed = time.monotonic() - started
            assert response.status_code == 413, name
            assert "--body-limit" in response.json()["detail"], name
            # The acceptance criterion; everything else here is about memory.
            assert elapsed < 1.0, f"{name}: {elapsed:.2f} s"
        assert client.post("/predict", json=PASSENGER).status_code == 503  # still answering
    assert peak_rss_mb(served.process.pid) - before < 50
