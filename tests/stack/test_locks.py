"""The promotion locks: a file lock exclusive across processes and freed by a holder's death,
PostgreSQL's advisory lock seen from another connection, and which one a backend gets."""

from __future__ import annotations

import fcntl
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.postgres import connect, server_address
from titanic_bench.errors import BackendError
from titanic_bench.stack import locks
from titanic_bench.stack.locks import advisory_lock, lock_key, promotion_lock

#: Takes file_lock on argv[1], logging to argv[2] as argv[3]; holds it until a line (or
#: end of file) on stdin. The log is appended to by every process, so its order is theirs.
HOLDER = """
import sys
from pathlib import Path

from titanic_bench.stack.locks import file_lock

lock, log, who = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]


def note(event):
    with log.open("a") as handle:
        handle.write(f"{who} {event}\\n")


note("waiting")
with file_lock(lock):
    note("acquired")
    sys.stdin.readline()
    note("releasing")
"""

#: A hang guard, not a speed target: a broken lock fails the test instead of blocking it.
HANG_TIMEOUT = 60.0
#: Without /proc/locks (macOS) the contender cannot be seen blocked; a contender that the
#: lock does not stop acquires within this time, and the log's order shows it.
GRACE = 1.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {HANG_TIMEOUT:.0f} s: {what}")
        time.sleep(0.05)


def events(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def start_holder(lock: Path, log: Path, who: str, hold: bool) -> subprocess.Popen[str]:
    """A process taking the lock; with ``hold`` it keeps it until told, else releases at once."""
    stdin = subprocess.PIPE if hold else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(log), who], stdin=stdin, text=True)


def blocked_on_flock(pid: int) -> bool:
    """``pid`` waits for a flock (Linux lists waiters in /proc/locks as "-> FLOCK ...")."""
    return any(
        fields[:2] == ["->", "FLOCK"] and fields[4] == str(pid)
        for fields in (line.split()[1:] for line in Path("/proc/locks").read_text().splitlines())
    )


def wait_until_blocked(contender: subprocess.Popen[str], log: Path) -> None:
    wait_until(lambda: "contender waiting" in events(log), "the contender started")
    if Path("/proc/locks").exists():
        wait_until(lambda: blocked_on_flock(contender.pid), "the contender blocked on the lock")
    else:
        time.sleep(GRACE)


@contextmanager
def reaped(*processes: subprocess.Popen[str]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@contextmanager
def contended(lock: Path, log: Path) -> Iterator[tuple[subprocess.Popen[str], subprocess.Popen[str]]]:
    """A process holding the lock, and a second one blocked waiting for it."""
    holder = start_holder(lock, log, "holder", hold=True)
    with reaped(holder):
        wait_until(lambda: "holder acquired" in events(log), "the holder took the lock")
        contender = start_holder(lock, log, "contender", hold=False)
        with reaped(contender):
            wait_until_blocked(contender, log)
            yield holder, contender


def test_file_lock_makes_a_second_process_wait_until_the_first_releases_it(tmp_path: Path) -> None:
    lock, log = tmp_path / "state" / "promotion.lock", tmp_path / "events.log"
    with contended(lock, log) as (holder, contender):
        assert events(log) == ["holder waiting", "holder acquired", "contender waiting"]
        holder.communicate("release\n", timeout=HANG_TIMEOUT)
        contender.wait(timeout=HANG_TIMEOUT)

    assert (holder.returncode, contender.returncode) == (0, 0)
    assert events(log)[3:] == ["holder releasing", "contender acquired", "contender releasing"]


def test_file_lock_is_released_when_its_holder_dies(tmp_path: Path) -> None:
    lock, log = tmp_path / "promotion.lock", tmp_path / "events.log"
    with contended(lock, log) as (holder, contender):
        holder.send_signal(signal.SIGKILL)  # no finally, no unlock: only the kernel can free it
        holder.wait(timeout=HANG_TIMEOUT)
        contender.wait(timeout=HANG_TIMEOUT)

    assert holder.returncode == -signal.SIGKILL
    assert contender.returncode == 0
    assert events(log) == [
        "holder waiting",
        "holder acquired",
        "contender waiting",
        "contender acquired",
        "contender releasing",
    ]


def flock_is_free(path: Path) -> bool:
    """Whether a new open file description of ``path`` can take the exclusive lock now."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_promotion_lock_on_sqlite_locks_a_file_in_the_state_folder(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with promotion_lock(f"sqlite:///{state / 'mlflow.db'}", state, "titanic_survival"):
        assert not flock_is_free(state / "promotion.lock")
    assert flock_is_free(state / "promotion.lock")


def test_promotion_lock_in_connect_mode_takes_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lock(*args: Any) -> None:
        raise AssertionError(f"connect mode took a lock: {args}")

    monkeypatch.setattr(locks, "file_lock", no_lock)
    monkeypatch.setattr(locks, "advisory_lock", no_lock)
    state = tmp_path / "state"
    with promotion_lock(None, state, "titanic_survival"):
        pass
    assert not state.exists()


def held_elsewhere(key: int) -> bool:
    """Whether another PostgreSQL session holds advisory lock ``key`` (asked from a new one)."""
    connection = connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            [(taken,)] = cursor.fetchall()
            if taken:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
        return not taken
    finally:
        connection.close()


def postgres_uri(scheme: str = "postgresql") -> str:
    connect().close()  # fail under CI, else skip, when PostgreSQL is not there
    host, port, user = server_address()
    return f"{scheme}://{user}@{host}:{port}/postgres"


@pytest.mark.postgres
def test_advisory_lock_is_held_against_other_connections_until_released() -> None:
    name = f"titanic-bench lock test {secrets.token_hex(4)}"  # no other run's key
    with advisory_lock(postgres_uri(), name):
        assert held_elsewhere(lock_key(name))
    assert not held_elsewhere(lock_key(name))


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg2", "postgres"])
def test_promotion_lock_on_postgresql_takes_the_models_advisory_lock_and_no_file(
    tmp_path: Path, scheme: str
) -> None:
    model = f"titanic_lock_test_{secrets.token_hex(4)}"
    key = lock_key(f"titanic-bench promotion of {model}")
    state = tmp_path / "state"
    with promotion_lock(postgres_uri(scheme), state, model):
        assert held_elsewhere(key)
    assert not held_elsewhere(key)
    assert not state.exists()


def test_a_failed_advisory_lock_connection_is_one_line_without_the_password() -> None:
    with pytest.raises(BackendError) as raised, advisory_lock("postgresql://u:hunter2@127.0.0.1:1/x", "m"):
        pass
    message = str(raised.value)
    assert "hunter2" not in message
    assert len(message.splitlines()) == 1
    assert "postgresql://u:***@127.0.0.1:1/x" in message and "Connection refused" in message
    assert "run the session again" in message
