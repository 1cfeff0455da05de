"""Backend store URIs for the embedded MLflow server: defaults, drivers, secrets.

Users write PostgreSQL URIs as ``postgresql://user:pw@host/db``; SQLAlchemy 2.1
maps that to psycopg 3, which we do not ship, so the driver is made explicit here.
Passwords never leave this module unmasked in anything printed or logged.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from titanic_bench.paths import StatePaths

BACKEND_ENV = "TITANIC_BENCH_BACKEND_URI"
_POSTGRES_SCHEMES = ("postgresql", "postgres")
POSTGRES_DRIVER_SCHEME = "postgresql+psycopg2"


class BackendError(Exception):
    """The backend store cannot be used as given; the message says how to fix it."""


def default_backend_uri(paths: StatePaths) -> str:
    return f"sqlite:///{paths.database}"


def is_postgres(uri: str) -> bool:
    return urlsplit(uri).scheme.split("+")[0] in _POSTGRES_SCHEMES


def normalize_backend_uri(uri: str) -> str:
    """Give a bare PostgreSQL URI the installed driver (psycopg2); leave others alone."""
    parts = urlsplit(uri)
    if parts.scheme in _POSTGRES_SCHEMES:
        return urlunsplit(parts._replace(scheme=POSTGRES_DRIVER_SCHEME))
    return uri


def mask_uri(uri: str) -> str:
    """The URI with any password replaced by ``***``, safe to print and log."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def ensure_database(uri: str) -> None:
    """Create the PostgreSQL database named in ``uri`` when it is missing."""
    if not is_postgres(uri):
        return
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(normalize_backend_uri(uri))
    database = parts.path.lstrip("/")
    if not database:
        raise BackendError(f"the backend URI {mask_uri(uri)} names no database; add /DBNAME.")
    try:
        connection = psycopg2.connect(
            host=parts.hostname, port=parts.port or 5432, user=parts.username,
            password=parts.password, dbname="postgres", connect_timeout=10,
        )  # fmt: skip
    except psycopg2.OperationalError as error:
        raise BackendError(
            f"cannot connect to PostgreSQL for {mask_uri(uri)}: "
            f"{_first_line(str(error), parts.password)}. Check host, port, user and password."
        ) from None
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    except psycopg2.Error as error:
        raise BackendError(
            f"database {database!r} does not exist and role {parts.username!r} cannot create it "
            f"({_first_line(str(error), parts.password)}). Create it: CREATE DATABASE \"{database}\";"
        ) from None
    finally:
        connection.close()


def _first_line(message: str, secret: str | None) -> str:
    line = message.strip().splitlines()[0] if message.strip() else message
    return line.replace(secret, "***") if secret else line
