"""The embedded server is the one the session started, never another program on its port.

"Another program" is a plain ``http.server`` that answers 200 to everything, /health
included, so only the ownership check tells it from MLflow. The races are made certain,
not timed: the stand-in takes the port right after the harness chose it (before the
spawn), or while the spawned server is held at a gate before it runs ``mlflow server``
(after the spawn, before the bind).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.listener import Recorded, answering_server
from tests.support.processes import group_members, processes_mentioning
from tests.support.sessions import BenchProject
from titanic_bench.errors import StackError
from titanic_bench.stack import server as stack
from titanic_bench.stack.server import EmbeddedServer, probe
from titanic_bench.tracking.tags import TagKey

#: Run as ``python -c GATE FILE ARGV...``: waits for FILE, then becomes ``python ARGV...``
#: (same process, so the server keeps the pid and process group the harness knows).
GATE = (
    "import os, sys, time\n"
    "while not os.path.exists(sys.argv[1]): time.sleep(0.02)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)

#: In a session: the first server spawned loses its port to a stand-in before it binds it.
RACING_CONFTEST = f"""
import json
import os
import sys
from pathlib import Path

from tests.support.listener import answering_server
from titanic_bench.stack import server as stack

_log = Path(os.environ["STAND_IN_LOG"])
_gate = _log.with_suffix(".gate")
_command, _start, _stand_ins = stack.server_command, stack.EmbeddedServer.start, []


def _gated_command(*args):
    return [sys.executable, "-c", {GATE!r}, str(_gate), *_command(*args)[1:]]


def _start_then_lose_the_port(self):
    started = _start(self)
    if not _stand_ins:
        stand_in = answering_server(self.port)  # kept referenced: collected, it would close
        _stand_ins.append((stand_in, stand_in.__enter__()))
    _gate.touch()
    return started


stack.server_command = _gated_command
stack.EmbeddedServer.start = _start_then_lose_the_port


def pytest_unconfigure(config):
    stand_in, (port, recorded) = _stand_ins[0]
    _log.write_text(json.dumps({{"port": port, "paths": recorded.paths}}))
    stand_in.__exit__(None, None, None)  # left to exit, it would block the interpreter's
"""


def sqlite_server(tmp_path: Path, port: int = 0) -> EmbeddedServer:
    return EmbeddedServer(
        f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "art", tmp_path / "server.log", port=port
    )


@pytest.fixture
def stand_in() -> Iterator[tuple[int, Recorded]]:
    with answering_server() as found:
        yield found


def test_a_chosen_port_in_use_is_refused_before_spawning(
    tmp_path: Path, stand_in: tuple[int, Recorded]
) -> None:
    port, recorded = stand_in
    server = sqlite_server(tmp_path, port)
    with pytest.raises(StackError) as caught:
        server.start()
    assert str(caught.value) == (
        f"port {port} on 127.0.0.1 is in use by another program; pass another --bench-port, "
        "or 0 for a free one"
    )
    assert server.process is None
    assert recorded.paths == []


@pytest.fixture
def gated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Hold every spawned server before it runs ``mlflow server`` until the returned file exists."""
    gate, command = tmp_path / "gate", stack.server_command

    def gated_command(artifacts_dir: Path, host: str, port: int) -> list[str]:
        return [sys.executable, "-c", GATE, str(gate), *command(artifacts_dir, host, port)[1:]]

    monkeypatch.setattr(stack, "server_command", gated_command)
    return gate


@pytest.mark.slow
def test_a_free_port_taken_before_the_spawn_is_swapped_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ExitStack() as stand_ins_open:
        stand_ins: list[tuple[int, Recorded]] = []
        choose: Callable[[str], int] = stack.free_port

        def taken_at_once(host: str = "127.0.0.1") -> int:
            port = choose(host)
            if not stand_ins:
                stand_ins.append(stand_ins_open.enter_context(answering_server(port)))
            return port

        monkeypatch.setattr(stack, "free_port", taken_at_once)
        server = sqlite_server(tmp_path)
        ((taken, recorded),) = stand_ins
        assert server.port == taken
        server.start()
        try:
            assert server.port != taken  # before anything was spawned, so before any URL was handed out
            server.wait_ready(timeout=300)
            assert probe(server.url) is None
        finally:
            server.stop()
        assert recorded.paths == []


@pytest.mark.slow
def test_a_free_port_taken_before_the_server_binds_it_is_retried_elsewhere(
    tmp_path: Path, gated: Path
) -> None:
    server = sqlite_server(tmp_path).start()
    assert server.process is not None
    first_port, first_group = server.port, server.process.pid
    try:
        with answering_server(first_port) as (_, recorded):
            gated.touch()
            server.wait_ready(timeout=300)
            assert server.port != first_port
            assert server.process.pid != first_group
            assert probe(server.url) is None
    finally:
        server.stop()
    assert group_members(first_group) == []
    # Asked for its health at most, never for anything MLflow serves.
    assert set(recorded.paths) <= {"/health"}


@pytest.mark.slow
def test_a_port_the_user_chose_taken_before_the_server_binds_it_is_an_error(
    tmp_path: Path, gated: Path
) -> None:
    with answering_server() as (port, recorded):
        server = sqlite_server(tmp_path, port)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(stack, "port_in_use", lambda host, port: False)  # free when it was checked
            server.start()
        assert server.process is not None
        group = server.process.pid
        gated.touch()
        with pytest.raises(StackError) as caught:
            server.wait_ready(timeout=300)
    assert str(caught.value) == (
        f"port {port} on 127.0.0.1 is in use by another program; pass another --bench-port, "
        "or 0 for a free one"
    )
    assert server.process is None and group_members(group) == []
    assert set(recorded.paths) <= {"/health"}


@pytest.mark.slow
def test_bench_port_in_use_stops_the_session_with_one_line_and_never_logs_there(
    pytester: pytest.Pytester,
    bench_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    stand_in: tuple[int, Recorded],
) -> None:
    port, recorded = stand_in
    project = BenchProject.create(pytester.path, bench_home)
    result = project.run("-p", "no:xdist", "--bench-port", str(port))

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = (
        f"titanic-bench: port {port} on 127.0.0.1 is in use by another program; "
        "pass another --bench-port, or 0 for a free one"
    )
    assert [line for line in result.stderr.lines if "titanic-bench" in line] == [f"ERROR: {expected}"]
    assert project.server_starts() == 1  # the one start, refused before it spawned anything
    assert "Traceback" not in result.stderr.str()
    assert recorded.paths == []
    assert processes_mentioning(str(bench_home)) == []


@pytest.mark.slow
def test_a_session_whose_free_port_is_taken_logs_to_its_own_server(
    pytester: pytest.Pytester, bench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = BenchProject.create(pytester.path, bench_home)
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + RACING_CONFTEST)
    stand_in_log = pytester.path / "stand_in.json"
    monkeypatch.setenv("STAND_IN_LOG", str(stand_in_log))
    root = str(Path(__file__).resolve().parents[2])  # for tests.support in the session
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    result = project.run("-p", "no:xdist", "-k", "logistic")

    result.assert_outcomes(passed=1, deselected=1)
    assert project.server_starts() == 2
    stand_in = json.loads(stand_in_log.read_text())
    assert set(stand_in["paths"]) <= {"/health"}
    board = json.loads((bench_home / "reports" / "leaderboard.json").read_text())
    assert board["ui_url"].startswith("http://127.0.0.1:")
    assert f":{stand_in['port']}/" not in board["ui_url"]
    assert {run.data.tags[TagKey.SPEC] for run in project.experiment_runs()} == {"logistic_regression"}
    assert processes_mentioning(str(bench_home)) == []
