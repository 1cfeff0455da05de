"""The session's MLflow clients, and the one place MLflow's errors become :class:`TrackingError`.

Every MLflow call of the harness goes through a client built here from the session's
tracking URI and passed down. MLflow's HTTP client retries a failed request 7 times
with exponential backoff and waits up to 120 s for an answer, so a dead server used
to hang a session for minutes: :data:`CLIENT_ENVIRONMENT` bounds both (a user's own
values of these variables win), and stops MLflow printing run links, which hold the
tracking URI, password and all. Model logging has no client form in MLflow 3 (``log_model``
reads the process's tracking URI), so :func:`fluent_uri` points it at the session's
server for that one call and puts the previous URI back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from titanic_bench.errors import TrackingError
from titanic_bench.stack.backend import mask_secrets

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
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@dataclass(frozen=True)
class Tracker:
    """The session's tracking server: its URI and a client of it, passed to every MLflow call."""

    uri: str
    client: MlflowClient

    @classmethod
    def connect(cls, tracking_uri: str) -> Tracker:
        return cls(tracking_uri, client_for(tracking_uri))

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
