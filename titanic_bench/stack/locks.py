"""Locks that serialise promotions of concurrent sessions, where the backend store allows.

MLflow has no compare-and-set for aliases. Sessions whose embedded servers share a
PostgreSQL backend take a PostgreSQL advisory lock in that database; sessions sharing a
SQLite store (one state folder) take an exclusive lock on a file beside it. A session
that only connects to a server cannot reach its backend, and takes none.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from urllib.parse import unquote, urlsplit

from titanic_bench.errors import BackendError
from titanic_bench.stack.backend import is_postgres, mask_secrets, normalize_backend_uri


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name``, as PostgreSQL's advisory locks take."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if missing), released on exit or process death."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def advisory_lock(backend_uri: str, name: str) -> Iterator[None]:
    """PostgreSQL's session-level advisory lock on ``name`` in the backend's database."""
    import psycopg2

    parts = urlsplit(normalize_backend_uri(backend_uri))
    try:
        connection = psycopg2.connect(
            host=parts.hostname,
            port=parts.port or 5432,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            dbname=unquote(parts.path.lstrip("/")),
            connect_timeout=10,
        )
    except psycopg2.OperationalError as error:
        line = mask_secrets(str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else "")
        raise BackendError(
            f"cannot lock the promotion in {mask_secrets(backend_uri)}: {line}. Nothing was promoted; "
            "check that this PostgreSQL server is up and reachable, then run the session again."
        ) from None
    connection.autocommit = True
    key = lock_key(name)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (key,))
        yield
        # Released at once: the server frees a closed session's locks only when its backend
        # process has gone, a moment after the client closed the connection.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        connection.close()  # a block that raised, or a lost connection: the server frees the lock


def promotion_lock(
    backend_uri: str | None, state_folder: Path, model_name: str
) -> AbstractContextManager[None]:
    """The lock for promoting ``model_name`` on this backend; none without one (connect mode)."""
    if backend_uri is None:
        return nullcontext()
    if is_postgres(backend_uri):
        return advisory_lock(backend_uri, f"titanic-bench promotion of {model_name}")
    return file_lock(state_folder / "promotion.lock")
