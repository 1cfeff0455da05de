"""The session's MLflow clients, and the one place MLflow's errors become :class:`TrackingError`.

Every MLflow call of the harness goes through a client built here from the session's
tracking URI and passed down. MLflow's HTTP client retries a failed request 7 times
with exponential backoff and waits up to 120 s for an answer, so a dead server used
to hang a session for minutes: :data:`CLIENT_ENVIRONMENT` bounds both (a user's own
values of these variables win), and stops MLflow printing run links, which hold the
tracking URI, password and all. Model logging has no client form in MLflow 3 (``log_model``
reads the process's tracking URI), so :func:`fluent_uri` points it at the session's
server for that one call and puts the previous URI back.

A database store (``postgresql://``, ``sqlite:///``) as the tracking URI gets the same
driver as a backend URI (:func:`~titanic_bench.stack.backend.normalize_backend_uri`), and
:meth:`Tracker.connect` connects to it once before MLflow does: MLflow retries a failed
first connection 10 times over about 100 s (a constant, no variable changes it), then
raises a SQLAlchemy error with a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from titanic_bench.errors import TrackingError
from titanic_bench.stack.backend import mask_secrets, normalize_backend_uri

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

#: MLflow's own client variables: at most 2 retries, 1 s then 2 s apart, 30 s per
#: request; no "View run at http://user:password@..." lines on stdout; and every artifact
#: through the server's proxy. A server on an S3 destination advertises presigned
#: transfers in /server-info, and MLflow 3.17's client then downloads *every* file straight
#: from the object store's endpoint (as the server names it, e.g. http://seaweedfs:8333,
#: which a client outside the compose network cannot resolve): clients should need to
#: reach the tracking server only.
CLIENT_ENVIRONMENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
    "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false",
}
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
#: Seconds a first connection to a PostgreSQL store may take (unless the URI sets
#: ``connect_timeout``): a host that drops packets fails in this time, not the OS's minutes.
DATABASE_CONNECT_TIMEOUT = 10
#: What to do about a tracking server or store that cannot be reached, unless the caller
#: names its own option.
REACH_ADVICE = "Start it, or use another tracking URI."


def configure_clients() -> None:
    """Set :data:`CLIENT_ENVIRONMENT` for this process and the ones it starts.

    Set in the environment, the only place MLflow reads them, so xdist workers inherit them.
    """
    for name, value in CLIENT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def client_for(tracking_uri: str) -> MlflowClient:
    """A client of the tracking server and registry at ``tracking_uri``."""
    from mlflow.tracking import MlflowClient

    configure_clients()
    uri = normalize_backend_uri(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def is_database_uri(uri: str) -> bool:
    """Whether MLflow opens ``uri`` as a SQLAlchemy store (no server in between)."""
    from mlflow.store.db.db_types import DATABASE_ENGINES

    return uri.partition("://")[0].split("+")[0].lower() in DATABASE_ENGINES


def reach_database(uri: str) -> None:
    """Connect once to the database store at ``uri``; raise the driver's error if that fails."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    url = sqlalchemy.make_url(uri)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).parent.is_dir():
        return  # MLflow makes the folder, and connecting here first would fail for want of it
    connect_args: dict[str, object] = {}
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = DATABASE_CONNECT_TIMEOUT
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Tracker:
    """The session's tracking server: its URI and a client of it, passed to every MLflow call."""

    uri: str
    client: MlflowClient

    @classmethod
    def connect(cls, tracking_uri: str, advice: str = REACH_ADVICE) -> Tracker:
        """A client of ``tracking_uri``; a database store that cannot be opened is a TrackingError.

        ``advice`` ends that error's message: what the user should do, in the caller's terms.
        """
        from mlflow.exceptions import MlflowException
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        uri = normalize_backend_uri(tracking_uri)
        try:
            if is_database_uri(uri):
                reach_database(uri)
            client = client_for(uri)
        # ValueError: a port that is not a number; ImportError: a driver that is not installed.
        except (MlflowException, SQLAlchemyError, ValueError, ImportError, OSError) as error:
            # The driver's own message, without SQLAlchemy's wrapping and link.
            cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
            raise TrackingError(
                f"cannot reach the tracking server {mask_secrets(tracking_uri)}: "
                f"{error_text(cause).rstrip(' .?!')}. {advice}"
            ) from None
        return cls(uri, client)

    @property
    def shown_uri(self) -> str:
        """The URI with any password masked, for messages."""
        return mask_secrets(self.uri)

    def call(self, operation: str) -> AbstractContextManager[None]:
        """A block whose MLflow failures become one TrackingError naming ``operation``."""
        return translated(operation, self.uri)


#: The most characters of an error's text that a message repeats.
ERROR_TEXT_LIMIT = 600


def error_text(error: BaseException) -> str:
    """An error's text on one line, passwords masked, at most :data:`ERROR_TEXT_LIMIT` characters."""
    # Masked before it is cut, so a cut cannot hide a password from the mask.
    text = " ".join(mask_secrets(str(error)).split()) or type(error).__name__
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"


@contextmanager
def translated(operation: str, tracking_uri: str) -> Iterator[None]:
    """Turn an MLflow failure inside the block into one TrackingError naming ``operation``."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as error:
        raise TrackingError(
            f"{operation} failed on the tracking server {mask_secrets(tracking_uri)}: {error_text(error)}"
        ) from None


@contextmanager
def fluent_uri(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's process-wide tracking URI at ``tracking_uri`` inside the block only."""
    import mlflow

    is_set = mlflow.is_tracking_uri_set()  # type: ignore[no-untyped-call]
    previous = mlflow.get_tracking_uri() if is_set else None
    previous_env = os.environ.get(TRACKING_URI_ENV)
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        # set_tracking_uri also writes the variable, and None unsets both.
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]
        if previous_env is not None:
            os.environ[TRACKING_URI_ENV] = previous_env
