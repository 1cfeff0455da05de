"""``titanic-bench ui`` serves the stored state, leaves nothing behind on Ctrl-C, and
ends a bad start with one line and exit code 2."""

from __future__ import annotations

import json
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.support.listener import answering_server
from tests.support.processes import processes_mentioning, stop_groups_mentioning
from titanic_bench.cli import build_parser
from titanic_bench.paths import state_paths
from titanic_bench.stack.server import free_port, probe
from titanic_bench.stack.ui import latest_links, reopen_command
from titanic_bench.tracking.links import SessionLinks

LINKS = SessionLinks("http://127.0.0.1:1", "4", "s-9", ("r" * 32,), "titanic_survival", "2")

#: Generous: the server's start-up is mostly importing MLflow, slow on a busy machine.
START_TIMEOUT = 300


def ui_command(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "titanic_bench.cli", "ui", "--home", str(home), *args]


@pytest.fixture
def no_process_left(tmp_path: Path) -> Iterator[Path]:
    """The state folder; afterwards, no process mentions it (any left is stopped, and fails)."""
    home = tmp_path / "state"
    yield home
    left = processes_mentioning(str(home))
    stop_groups_mentioning(str(home))
    assert left == []


def first_line(stream: IO[str] | None, timeout: float) -> str:
    """The first line of ``stream``, or "" if none came within ``timeout`` seconds."""
    assert stream is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


def write_latest_session(home: Path) -> None:
    (home / "reports").mkdir(parents=True)
    board = {"session_id": "s-9", "links": LINKS.to_dict()}
    (home / "reports" / "leaderboard.json").write_text(json.dumps(board))


@pytest.mark.slow
def test_ui_serves_the_state_folder_until_interrupted(no_process_left: Path) -> None:
    home = no_process_left
    write_latest_session(home)
    # Its own process group, so the clean-up can stop the command and all it started.
    process = subprocess.Popen(
        ui_command(home, "--port", "0"), stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        line = first_line(process.stdout, START_TIMEOUT)
        match = re.match(r"MLflow UI: (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        assert probe(match.group(1)) is None
        assert (home / "mlflow.db").exists()
        # The latest session's links, on this server's address.
        moved = LINKS.on(match.group(1))
        lines = [first_line(process.stdout, 30) for _ in range(4)]
        assert lines == [
            "Latest session s-9:\n",
            *(f"  {label}: {url}\n" for label, url in moved.labelled()),
        ]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        stop_groups_mentioning(str(home))
        process.kill()
        process.wait(timeout=30)


def run_ui(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ui_command(home, *args), capture_output=True, text=True, timeout=START_TIMEOUT, start_new_session=True
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("titanic-bench ui: "), result.stderr
    assert expected in result.stderr
    assert result.stdout == ""


def test_ui_on_a_port_in_use_says_so_in_one_line(no_process_left: Path) -> None:
    with answering_server() as (port, recorded):
        result = run_ui(no_process_left, "--port", str(port))
    assert_one_line_error(
        result,
        f"port {port} on 127.0.0.1 is in use by another program; pass another --port, or 0 for a free one",
    )
    assert recorded.paths == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("postgresql://nobody@127.0.0.1:{closed}/x", "cannot connect to PostgreSQL for postgresql://nobody@"),
        ("postgresql://nobody:hunter2@127.0.0.1:notaport/x", "has an invalid port"),
        ("mlflow.db", "is not a URI"),
        ("notascheme://nowhere", "got unsupported URI 'notascheme://nowhere'"),
    ],
    ids=["unreachable-postgres", "bad-port", "no-scheme", "unknown-scheme"],
)
def test_ui_with_a_bad_backend_says_so_in_one_line(
    no_process_left: Path, backend: str, expected: str
) -> None:
    result = run_ui(no_process_left, "--port", "0", "--backend-uri", backend.format(closed=free_port()))
    assert_one_line_error(result, expected)
    assert "hunter2" not in result.stderr


def test_the_reopen_command_names_the_state_port_and_a_masked_backend(tmp_path: Path) -> None:
    paths = state_paths(tmp_path / "my state")
    default = f"sqlite:///{paths.database}"
    assert reopen_command(paths, 5123, default) == f"titanic-bench ui --home '{paths.root}' --port 5123"
    other = reopen_command(paths, 5123, "postgresql://bench:hunter2@db/bench")
    assert other.endswith("--port 5123 --backend-uri 'postgresql://bench:***@db/bench'")
    assert "hunter2" not in other


def test_the_reopen_command_names_an_object_store_destination(tmp_path: Path) -> None:
    paths = state_paths(tmp_path / "state")
    command = reopen_command(paths, 5123, f"sqlite:///{paths.database}", "s3://mlflow/titanic")
    assert command.endswith("--port 5123 --artifacts s3://mlflow/titanic")
    words = shlex.split(command)[1:]  # after the program's name, as the CLI parses them
    args = build_parser("ui").parse_args(words)
    assert args.artifacts == "s3://mlflow/titanic" and args.port == 5123


def test_latest_links_are_none_before_any_session(tmp_path: Path) -> None:
    paths = state_paths(tmp_path)
    assert latest_links(paths, "http://127.0.0.1:2") is None
    write_latest_session(tmp_path)
    assert latest_links(paths, "http://127.0.0.1:2") == ("s-9", LINKS.on("http://127.0.0.1:2"))
