"""The tracking stack: readiness, retries, and that a stopped server leaves no process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import requests

from tests.support.listener import answering_server
from tests.support.processes import group_members
from titanic_bench.errors import StackError
from titanic_bench.stack.server import (
    EmbeddedServer,
    Retry,
    free_port,
    probe,
    server_command,
    stop_process_group,
    wait_for_server,
)


def test_retry_backs_off_to_a_cap() -> None:
    assert Retry(attempts=12).delays() == [0.5, 1, 2, 4, 8, 8, 8, 8, 8, 8, 8]
    assert sum(Retry(attempts=12).delays()) == pytest.approx(63.5)


def test_unreachable_server_fails_after_all_attempts_with_the_last_error() -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    slept: list[float] = []
    with pytest.raises(StackError) as caught:
        wait_for_server(uri, Retry(attempts=4), sleep=slept.append)
    assert slept == [0.5, 1.0, 2.0]
    message = str(caught.value)
    assert f"the MLflow tracking server at {uri} is unreachable after 4 attempts over 3.5 s;" in message
    assert "ConnectionRefusedError" in message


def test_password_in_tracking_uri_is_masked() -> None:
    uri = f"http://ada:hunter2@127.0.0.1:{free_port()}"
    with pytest.raises(StackError) as caught:
        wait_for_server(uri, Retry(attempts=1))
    assert "hunter2" not in str(caught.value)
    assert "ada:***@127.0.0.1" in str(caught.value)
    # The port is closed: the userinfo must not have been taken for part of the host name.
    assert "ConnectionRefusedError" in str(caught.value)


def test_credentials_in_the_uri_reach_the_server_as_mlflow_sends_them() -> None:
    with answering_server() as (port, recorded):
        assert probe(f"http://ada:hunter2@127.0.0.1:{port}") is None
        # MLflow's REST client is requests, which turns URI userinfo into basic auth.
        requests.get(f"http://ada:hunter2@127.0.0.1:{port}/health", timeout=10)
    assert recorded.paths == ["/health", "/health"]
    ours, mlflows = recorded.authorizations
    assert ours is not None and ours == mlflows


def test_credentials_in_the_uri_connect_to_a_real_server(tracking_server: EmbeddedServer) -> None:
    """A server that asks for no credentials ignores them; the probe must still get through."""
    assert probe(tracking_server.url.replace("http://", "http://ada:hunter2@")) is None


def test_server_command_is_mlflows_own_lean_server(tmp_path: Path) -> None:
    command = server_command(tmp_path, "127.0.0.1", 5005)
    assert command[:4] == [sys.executable, "-m", "mlflow", "server"]
    assert "--serve-artifacts" in command
    assert command[command.index("--artifacts-destination") + 1] == str(tmp_path)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "5005"
    assert command[command.index("--workers") + 1] == "1"
    assert not any(arg.startswith("--backend-store-uri") for arg in command)


def test_backend_password_stays_off_the_command_line(tmp_path: Path) -> None:
    server = EmbeddedServer(
        "postgresql://ada:hunter2@db.example/mlflow", tmp_path, tmp_path / "log", port=5005
    )
    assert not any("hunter2" in part for part in server.command())
    environment = server.environment()
    assert environment["MLFLOW_BACKEND_STORE_URI"] == "postgresql+psycopg2://ada:hunter2@db.example/mlflow"
    # The registry is the backend, whatever registry a user's shell may point at.
    assert environment["MLFLOW_REGISTRY_STORE_URI"] == environment["MLFLOW_BACKEND_STORE_URI"]
    assert environment["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


@pytest.mark.slow
def test_embedded_server_starts_serves_and_stops_with_its_whole_group(tmp_path: Path) -> None:
    server = EmbeddedServer(f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "art", tmp_path / "log").start()
    assert server.process is not None
    pgid = server.process.pid
    try:
        server.wait_ready(timeout=120)
        assert probe(server.url) is None
        # `mlflow server` and its one uvicorn worker; no job runner and its consumers.
        members = group_members(pgid)
        assert len(members) == 2, members
        assert {"mlflow.server.fastapi_app:app" in member.argv for member in members} == {True, False}
        assert_security_middleware_is_on(server.url)
    finally:
        server.stop()
    assert group_members(pgid) == []
    assert probe(server.url) is not None


def assert_security_middleware_is_on(url: str) -> None:
    """MLflow's default: only local host names; a page may be framed by its own origin only."""
    search = urllib.request.Request(
        f"{url}/api/2.0/mlflow/experiments/search?max_results=1", headers={"Host": "evil.example"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(search, timeout=10)
    assert refused.value.code == 403
    with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


@pytest.mark.slow
def test_server_that_dies_reports_its_log(tmp_path: Path) -> None:
    server = EmbeddedServer("notascheme://nowhere", tmp_path / "art", tmp_path / "server.log").start()
    with pytest.raises(StackError) as caught:
        server.wait_ready(timeout=120)
    message = str(caught.value)
    assert "exited with code" in message and "before it was ready" in message
    assert str(tmp_path / "server.log") in message
    assert "got unsupported URI 'notascheme://nowhere'" in message  # MLflow's own error
    assert "\n" not in message  # one line: the log holds the traceback
    server.stop()


def test_stop_kills_children_that_ignore_sigterm() -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    spawn_stubborn_child = (
        f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {stubborn!r}])"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", f"{spawn_stubborn_child}; time.sleep(60)"], start_new_session=True
    )
    deadline = time.monotonic() + 10
    while len(group_members(parent.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(group_members(parent.pid)) == 2
    stop_process_group(parent.pid, grace=1.0)
    parent.wait(timeout=5)
    deadline = time.monotonic() + 5
    while group_members(parent.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_members(parent.pid) == []


def test_stop_needs_no_proc_file_system(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS has no /proc: stopping a group must not read it (psutil may, on Linux)."""
    real_iterdir = Path.iterdir

    def no_proc(self: Path) -> object:
        if self == Path("/proc"):
            raise FileNotFoundError(2, "No such file or directory", "/proc")
        return real_iterdir(self)

    sleeper = "import time; time.sleep(60)"
    spawn_child = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {sleeper!r}])"
    parent = subprocess.Popen(
        [sys.executable, "-c", f"{spawn_child}; time.sleep(60)"], start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        while len(group_members(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(group_members(parent.pid)) == 2
        monkeypatch.setattr(Path, "iterdir", no_proc)
        stop_process_group(parent.pid, grace=5.0, leader=parent)
        monkeypatch.undo()
        assert parent.poll() is not None
        with pytest.raises(ProcessLookupError):
            os.killpg(parent.pid, 0)
    finally:
        monkeypatch.undo()
        stop_process_group(parent.pid, grace=1.0, leader=parent)


def test_stopping_a_gone_group_is_harmless() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    process.wait()
    stop_process_group(process.pid, grace=0.1)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)


def test_a_group_of_zombies_macos_will_not_signal_counts_as_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS answers EPERM, not ESRCH, to killpg on a group whose members are all zombies."""
    signals: list[int] = []

    def zombies_only(pgid: int, sig: int) -> None:
        signals.append(sig)
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "killpg", zombies_only)
    stop_process_group(12345, grace=0.1)
    assert signals == [signal.SIGTERM]
