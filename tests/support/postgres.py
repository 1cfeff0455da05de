"""PostgreSQL for the harness's own tests: reach the local server, make and drop test objects.

Tests use the PostgreSQL on 127.0.0.1:5432 that ``.ci/run`` starts (trust auth), and
only databases and roles named ``titanic_bench_test_*`` that they create themselves.
With ``CI=true`` an unreachable server fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.ci import unavailable

#: Admin connection for creating and dropping test databases and roles.
ADMIN_URI_ENV = "TITANIC_BENCH_TEST_PG_URI"
DEFAULT_ADMIN_URI = "postgresql://postgres@127.0.0.1:5432/postgres"
TEST_PREFIX = "titanic_bench_test_"


def admin_uri() -> str:
    return os.environ.get(ADMIN_URI_ENV, DEFAULT_ADMIN_URI)


def connect(dbname: str = "postgres") -> Any:
    """An autocommit admin connection; fails or skips (see :func:`unavailable`) if unreachable."""
    import psycopg2
    from psycopg2.extensions import make_dsn, parse_dsn

    params = parse_dsn(admin_uri())
    try:
        connection = psycopg2.connect(make_dsn(**{**params, "dbname": dbname}), connect_timeout=5)
    except psycopg2.OperationalError as error:
        unavailable(
            f"PostgreSQL is not reachable at {params.get('host')}:{params.get('port', 5432)} "
            f"({str(error).strip().splitlines()[0]}); start it (see docs/stack.md) or set {ADMIN_URI_ENV}"
        )
    connection.autocommit = True
    return connection


def server_address() -> tuple[str, int, str]:
    """(host, port, admin user) of the test server, for building harness URIs."""
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(admin_uri())
    return params.get("host", "127.0.0.1"), int(params.get("port", 5432)), params.get("user", "postgres")


def unique_name(purpose: str) -> str:
    """A database or role name no other test run (or engineer) uses at the same time."""
    return f"{TEST_PREFIX}{purpose}_{secrets.token_hex(4)}"


def database_exists(name: str) -> bool:
    return bool(query("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (name,)))


def drop_database(name: str) -> None:
    from psycopg2 import sql

    assert name.startswith(TEST_PREFIX), f"refusing to drop {name!r}: not a test database"
    connection = connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        connection.close()


def query(database: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    connection = connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return list(cursor.fetchall())
    finally:
        connection.close()


@contextmanager
def scratch_database(purpose: str) -> Iterator[str]:
    """A fresh database name that does not exist yet; dropped afterwards if anything made it."""
    connect().close()  # fail or skip now, before the test starts servers
    name = unique_name(purpose)
    try:
        yield name
    finally:
        drop_database(name)


@contextmanager
def scratch_role(purpose: str, password: str | None = None, createdb: bool = True) -> Iterator[str]:
    """A login role (dropped afterwards, with what it owns); ``password`` optional."""
    from psycopg2 import sql

    name = unique_name(purpose)
    options = sql.SQL("LOGIN CREATEDB" if createdb else "LOGIN NOCREATEDB")
    statement = sql.SQL("CREATE ROLE {} ").format(sql.Identifier(name)) + options
    if password is not None:
        statement += sql.SQL(" PASSWORD {}").format(sql.Literal(password))
    connection = connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT datname FROM pg_database d JOIN pg_roles r ON d.datdba = r.oid WHERE r.rolname = %s",
                (name,),
            )
            owned = [row[0] for row in cursor.fetchall()]
        for database in owned:
            drop_database(database)
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        connection.close()
