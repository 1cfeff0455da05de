"""The embedded server on PostgreSQL, checked in the database itself with SQL.

Needs the PostgreSQL on 127.0.0.1:5432 (``.ci/run`` starts it); see tests/support/postgres.py.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.ci import unavailable
from tests.support.postgres import (
    connect,
    database_exists,
    query,
    scratch_database,
    scratch_role,
    server_address,
)
from tests.support.processes import group_members
from tests.support.sessions import BenchProject
from titanic_bench.errors import BackendError
from titanic_bench.options import CHAMPION_ALIAS, DEFAULT_EXPERIMENT, DEFAULT_REGISTERED_MODEL
from titanic_bench.stack.backend import BACKEND_ENV, ensure_database
from titanic_bench.stack.server import EmbeddedServer, free_port, stop_process_group

pytestmark = pytest.mark.postgres

SESSION_TIMEOUT = 900  # seconds; a hang fails instead of blocking CI

BENCH_FILE = """
import pytest

from titanic_bench import EXPERIMENTS, Bench, assert_floors, spec_id

SPECS = [spec for spec in EXPERIMENTS if spec.name in {names!r}]


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_experiment(spec, titanic_bench: Bench) -> None:
    assert_floors(titanic_bench.run(spec))
"""


def run_session(
    pytester: pytest.Pytester, *args: str, specs: tuple[str, ...], env: dict[str, str] | None = None
) -> pytest.RunResult:
    """A real benchmark session in a subprocess, over the cheap ``specs`` only."""
    bench = BENCH_FILE.format(names=set(specs))
    home = Path(os.environ["TITANIC_BENCH_HOME"])  # the bench_home fixture's
    return BenchProject.create(pytester.path, home, bench_file=bench).run(*args, env=env)


def output_of(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


def files_containing(root: Path, secret: str) -> list[Path]:
    needle = secret.encode()
    return [path for path in root.rglob("*") if path.is_file() and needle in path.read_bytes()]


@pytest.mark.slow
def test_session_with_two_workers_lands_in_postgres(
    pytester: pytest.Pytester, bench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = f"pw-{secrets.token_hex(8)}"
    host, port, _ = server_address()
    with scratch_role("session", password) as role, scratch_database("session") as database:
        # The plain spelling users write; the harness must pick the psycopg2 driver.
        backend = {BACKEND_ENV: f"postgresql://{role}:{password}@{host}:{port}/{database}"}
        result = run_session(pytester, "-n", "2", specs=("logistic_regression", "svm"), env=backend)
        output = output_of(result)
        assert result.ret == 0, output
        result.assert_outcomes(passed=2)
        assert f"postgresql://{role}:***@{host}:{port}/{database}" in output
        assert_session_in_database(database)
        assert password not in output
        assert files_containing(bench_home, password) == []
        assert_no_secret_in_params_or_tags(database, password)


def assert_session_in_database(database: str) -> None:
    """Runs, params, metrics, model versions and the champion alias, read with SQL."""
    ((experiment_id,),) = query(
        database, "SELECT experiment_id FROM experiments WHERE name = %s", (DEFAULT_EXPERIMENT,)
    )
    runs = query(
        database,
        "SELECT r.run_uuid, r.status, kind.value, spec.value FROM runs r "
        "JOIN tags kind ON kind.run_uuid = r.run_uuid AND kind.key = 'run_kind' "
        "LEFT JOIN tags spec ON spec.run_uuid = r.run_uuid AND spec.key = 'spec' "
        "WHERE r.experiment_id = %s",
        (experiment_id,),
    )
    assert sorted((kind, spec, status) for _, status, kind, spec in runs) == [
        ("experiment", "logistic_regression", "FINISHED"),
        ("experiment", "svm", "FINISHED"),
        ("session", None, "FINISHED"),
    ]
    experiment_runs = {run_id: spec for run_id, _, kind, spec in runs if kind == "experiment"}
    for run_id in experiment_runs:
        params = dict(query(database, "SELECT key, value FROM params WHERE run_uuid = %s", (run_id,)))
        assert params["seed"] == "42" and params["model_type"]
        metrics = {
            key for (key,) in query(database, "SELECT key FROM metrics WHERE run_uuid = %s", (run_id,))
        }
        assert {"accuracy", "roc_auc", "f1"} <= metrics
    versions = query(database, "SELECT name, version, run_id FROM model_versions")
    champion_versions = [
        (version, run_id) for name, version, run_id in versions if name == DEFAULT_REGISTERED_MODEL
    ]
    assert len(champion_versions) == 1 and champion_versions[0][1] in experiment_runs
    # Each spec's own registered model got a version as well.
    assert {f"titanic_{spec}" for spec in experiment_runs.values()} <= {name for name, _, _ in versions}
    aliases = query(database, "SELECT name, alias, version FROM registered_model_aliases")
    assert aliases == [(DEFAULT_REGISTERED_MODEL, CHAMPION_ALIAS, champion_versions[0][0])]


def assert_no_secret_in_params_or_tags(database: str, secret: str) -> None:
    pattern = f"%{secret}%"
    for table in ("params", "tags", "experiment_tags", "model_version_tags", "registered_model_tags"):
        rows = query(database, f"SELECT key FROM {table} WHERE value LIKE %s", (pattern,))
        assert rows == [], f"the password appears in {table}: {rows}"


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg2", "postgresql+psycopg"])
def test_every_uri_spelling_starts_the_server_on_a_database_created_for_it(
    scheme: str, tmp_path: Path
) -> None:
    import mlflow

    host, port, user = server_address()
    with scratch_database(scheme.replace("+", "_")) as database:
        uri = f"{scheme}://{user}@{host}:{port}/{database}"
        assert not database_exists(database)
        ensure_database(uri)
        assert database_exists(database)
        server = EmbeddedServer(uri, tmp_path / "artifacts", tmp_path / "server.log").start()
        assert server.process is not None
        group = server.process.pid
        try:
            server.wait_ready()
            experiment_id = mlflow.MlflowClient(server.url).create_experiment("spelling")
        finally:
            server.stop()
        assert group_members(group) == []
        assert query(
            database, "SELECT name FROM experiments WHERE experiment_id = %s", (int(experiment_id),)
        ) == [("spelling",)]


@pytest.mark.slow
def test_no_process_of_the_server_has_the_password_on_its_command_line(tmp_path: Path) -> None:
    """``ps`` shows every user each process's argv: the password must reach the server
    through its environment only, in the CLI process and in its uvicorn worker alike."""
    host, port, _ = server_address()
    password = f"hunter2-{secrets.token_hex(6)}"
    with scratch_role("argv", password) as role, scratch_database("argv") as database:
        uri = f"postgresql://{role}:{password}@{host}:{port}/{database}"
        ensure_database(uri)
        server = EmbeddedServer(uri, tmp_path / "artifacts", tmp_path / "server.log").start()
        assert server.process is not None
        group = server.process.pid
        try:
            server.wait_ready()
            members = group_members(group)
            assert len(members) == 2, members  # `mlflow server` and its uvicorn worker
            assert [member for member in members if password in member.command_line] == []
            # The server did get it (it connected), through its environment.
            assert password in psutil.Process(group).environ()["MLFLOW_BACKEND_STORE_URI"]
        finally:
            server.stop()
        assert group_members(group) == []


def test_a_role_that_cannot_create_the_database_is_told_which_to_create() -> None:
    host, port, _ = server_address()
    with scratch_role("nocreatedb", createdb=False) as role, scratch_database("missing") as database:
        with pytest.raises(BackendError) as info:
            ensure_database(f"postgresql://{role}@{host}:{port}/{database}")
        message = str(info.value)
        assert f"database {database!r} does not exist and role {role!r} cannot create it" in message
        assert "permission denied to create database" in message
        assert f'CREATE DATABASE "{database}" OWNER "{role}";' in message
        assert not database_exists(database)


@pytest.mark.slow
def test_a_server_that_comes_up_late_is_waited_for(
    pytester: pytest.Pytester, bench_home: Path, tmp_path: Path
) -> None:
    """Connect mode, server not there yet: the session retries until it is, then runs.

    Deterministic, not timed: a placeholder socket on the server's port takes the
    harness's first probe and drops it; only then does the real server start there.
    """
    host, port, user = server_address()
    with scratch_database("late") as database:
        backend = f"postgresql://{user}@{host}:{port}/{database}"
        ensure_database(backend)
        server_port = free_port()
        placeholder = socket.create_server(("127.0.0.1", server_port))
        server = EmbeddedServer(backend, tmp_path / "artifacts", tmp_path / "server.log", port=server_port)
        refused_first = threading.Event()

        def start_after_first_probe() -> None:
            placeholder.settimeout(SESSION_TIMEOUT)
            connection, _ = placeholder.accept()
            connection.close()
            placeholder.close()
            refused_first.set()
            server.start()

        starter = threading.Thread(target=start_after_first_probe, daemon=True)
        starter.start()
        try:
            result = run_session(
                pytester,
                "-p",
                "no:xdist",
                "--bench-mode",
                "connect",
                f"--bench-tracking-uri={server.url}",
                specs=("logistic_regression",),
            )
        finally:
            starter.join(timeout=30)
            group = server.process.pid if server.process else None
            server.stop()
        assert refused_first.is_set()
        assert result.ret == 0, output_of(result)
        result.assert_outcomes(passed=1)
        assert group is not None and group_members(group) == []
        assert query(database, "SELECT count(*) FROM runs") == [(2,)]  # session run + one experiment


@pytest.fixture(scope="module")
def password_checking_postgres() -> Iterator[tuple[int, str]]:
    """A private PostgreSQL cluster that really checks passwords (scram-sha-256 over TCP).

    The shared server trusts 127.0.0.1 (any password is accepted), so a wrong password
    cannot fail there. This cluster lives in a temp folder, runs as the ``postgres`` OS
    user (PostgreSQL refuses root) in its own process group, and is removed afterwards.
    """
    initdb = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not initdb or os.geteuid() != 0 or shutil.which("runuser") is None:
        unavailable("a private PostgreSQL cluster needs root, runuser and /usr/lib/postgresql/*/bin/initdb")
    bindir = initdb[-1].parent
    root = Path(tempfile.mkdtemp(prefix="titanic-bench-pg-"))
    password = secrets.token_hex(12)
    (root / "pwfile").write_text(password)
    for path in (root, root / "pwfile"):
        shutil.chown(path, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *as_postgres,
            str(bindir / "initdb"),
            "-D",
            str(root / "data"),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={root / 'pwfile'}",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    with (root / "postgres.log").open("wb") as log:
        process = subprocess.Popen(
            [
                *as_postgres,
                str(bindir / "postgres"),
                "-D",
                str(root / "data"),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={root}",
                "-c",
                "fsync=off",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_postgres(port, process, root / "postgres.log")
        yield port, password
    finally:
        stop_process_group(process.pid)
        process.wait()
        assert group_members(process.pid) == []
        shutil.rmtree(root, ignore_errors=True)


def wait_for_postgres(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the private PostgreSQL did not start; its log:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)


def test_a_wrong_password_fails_clearly_without_printing_it(
    password_checking_postgres: tuple[int, str],
) -> None:
    port, password = password_checking_postgres
    wrong = f"wrong-{secrets.token_hex(6)}"
    # The right password works, so the failure below is the password's alone.
    ensure_database(f"postgresql://postgres:{password}@127.0.0.1:{port}/titanic_bench_test_ok")
    with pytest.raises(BackendError) as info:
        ensure_database(f"postgresql://postgres:{wrong}@127.0.0.1:{port}/titanic_bench_test_ok")
    message = str(info.value)
    assert 'password authentication failed for user "postgres"' in message
    assert f"postgresql://postgres:***@127.0.0.1:{port}/titanic_bench_test_ok" in message
    assert wrong not in message


@pytest.mark.slow
def test_a_session_with_a_wrong_password_stops_with_a_usage_error(
    pytester: pytest.Pytester, bench_home: Path, password_checking_postgres: tuple[int, str]
) -> None:
    port, _ = password_checking_postgres
    wrong = f"wrong-{secrets.token_hex(6)}"
    uri = f"postgresql://postgres:{wrong}@127.0.0.1:{port}/titanic_bench_test_session"
    result = run_session(pytester, "-p", "no:xdist", f"--bench-backend-uri={uri}", specs=("svm",))
    output = output_of(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert "password authentication failed" in output
    assert "postgres:***@127.0.0.1" in output
    assert wrong not in output
    assert files_containing(bench_home, wrong) == []


@pytest.mark.slow
def test_unreachable_postgres_is_reported_not_skipped_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper the tests above rely on: with CI=true it fails instead of skipping."""
    monkeypatch.setenv("TITANIC_BENCH_TEST_PG_URI", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL is not reachable"):
        connect()
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL is not reachable"):
        connect()
