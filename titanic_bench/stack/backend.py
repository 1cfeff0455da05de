"""Backend store URIs for the embedded MLflow server: defaults, drivers, secrets.

Users write PostgreSQL URIs as ``postgresql://user:pw@host/db``; SQLAlchemy 2.1
maps that to psycopg 3, which we do not ship, so the driver is made explicit here.
Passwords never leave this module unmasked in anything printed or logged:
:func:`mask_secrets` masks every URI inside a text (or a URI alone).
"""

from __future__ import annotations

import importlib.util
import re
from urllib.parse import unquote, urlsplit, urlunsplit

from titanic_bench.errors import BackendError
from titanic_bench.paths import StatePaths

BACKEND_ENV = "TITANIC_BENCH_BACKEND_URI"
_POSTGRES_SCHEMES = ("postgresql", "postgres")
POSTGRES_DRIVER_SCHEME = "postgresql+psycopg2"
#: SQLAlchemy's name for psycopg 3; used as written only when psycopg 3 is installed.
PSYCOPG3_SCHEME = "postgresql+psycopg"
MASK = "***"

# scheme://userinfo@ where userinfo may itself hold an unencoded "@" (greedy up to the
# last "@" before the path), and libpq-style password=... in query strings or DSNs.
_URI_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s?#'\"]*)@")
_PASSWORD_PARAM = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<value>[^&\s'\"]+)", re.IGNORECASE)


def default_backend_uri(paths: StatePaths) -> str:
    return f"sqlite:///{paths.database}"


def check_backend_uri(uri: str) -> None:
    """Refuse what cannot be a backend store URI before any server starts for it."""
    shown = mask_secrets(uri)
    parts = urlsplit(uri)
    if not parts.scheme or not uri.startswith(f"{parts.scheme}://"):
        raise BackendError(
            f"the backend URI {shown!r} is not a URI; write sqlite:///PATH for a SQLite file "
            "or postgresql://USER:PASSWORD@HOST:PORT/DB for PostgreSQL."
        )
    try:
        _ = parts.port  # parsing it is the check
    except ValueError:
        raise BackendError(
            f"the backend URI {shown} has an invalid port; write HOST:PORT with a number "
            "(percent-encode special characters in the password: @ is %40, : is %3A)."
        ) from None


def is_postgres(uri: str) -> bool:
    return urlsplit(uri).scheme.split("+")[0] in _POSTGRES_SCHEMES


def psycopg3_installed() -> bool:
    return importlib.util.find_spec("psycopg") is not None


def normalize_backend_uri(uri: str) -> str:
    """Give a PostgreSQL URI a driver that is installed (psycopg2); leave others alone.

    ``postgresql://`` and ``postgres://`` get ``+psycopg2`` (SQLAlchemy 2.1 would pick
    psycopg 3 and fail with "No module named 'psycopg'"); so does ``postgresql+psycopg://``
    when psycopg 3 is not installed, since psycopg2 speaks the same protocol.
    """
    parts = urlsplit(uri)
    if parts.scheme in _POSTGRES_SCHEMES or (parts.scheme == PSYCOPG3_SCHEME and not psycopg3_installed()):
        return urlunsplit(parts._replace(scheme=POSTGRES_DRIVER_SCHEME))
    return uri


def mask_secrets(text: str) -> str:
    """``text`` with the password of every URI in it, and every ``password=...``, masked."""
    return _PASSWORD_PARAM.sub(lambda m: m["key"] + MASK, _URI_USERINFO.sub(_mask_userinfo, text))


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match["userinfo"].partition(":")
    return f"{match['scheme']}{user}{':' + MASK if colon else ''}@"


def ensure_database(uri: str) -> None:
    """Create the PostgreSQL database named in ``uri`` when it is missing.

    Connects to the maintenance database ``postgres`` with the same role; a role that
    may not create databases gets an error naming the database an admin must create.
    """
    if not is_postgres(uri):
        return
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(normalize_backend_uri(uri))
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise BackendError(f"the backend URI {mask_secrets(uri)} names no database; add /DBNAME.")
    user = unquote(parts.username) if parts.username else None
    try:
        connection = psycopg2.connect(
            host=parts.hostname,
            port=parts.port or 5432,
            user=user,
            password=unquote(parts.password) if parts.password is not None else None,
            dbname="postgres",
            connect_timeout=10,
        )
    except psycopg2.OperationalError as error:
        raise BackendError(
            f"cannot connect to PostgreSQL for {mask_secrets(uri)}: "
            f"{_first_line(str(error), parts.password)}. "
            "Check host, port, user and password (percent-encode special characters in it)."
        ) from None
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    except psycopg2.Error as error:
        raise BackendError(
            f"database {database!r} does not exist and role {user!r} cannot create it "
            f"({_first_line(str(error), parts.password)}). Create it as an admin: "
            f'CREATE DATABASE "{database}" OWNER "{user}";'
        ) from None
    finally:
        connection.close()


def _first_line(message: str, secret: str | None) -> str:
    """The first line of a driver error, with the password (raw and decoded) masked."""
    line = message.strip().splitlines()[0] if message.strip() else message
    for value in {secret, unquote(secret)} if secret else ():
        line = line.replace(value, MASK)
    return mask_secrets(line)
