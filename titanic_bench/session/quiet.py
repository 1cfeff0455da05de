"""MLflow's own output during a session goes to the session log, not pytest's terminal.

MLflow talks in three ways: its loggers (``mlflow.*``, through one stream handler on
``sys.stderr``), ``eprint`` ("Successfully registered model", "Created version") to
``sys.stderr``, and ``print`` of run links to ``sys.stdout``. The first is redirected for
the whole session by swapping the handlers of MLflow's loggers; the other two only
while the controller calls MLflow (:func:`mlflow_output_to`), since pytest writes its
own report to the same streams. Python warnings are left alone: pytest still collects
them into its warnings summary.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

#: The loggers MLflow configures with its own stderr handler (see ``mlflow.utils.logging_utils``).
MLFLOW_LOGGERS = ("mlflow", "alembic", "sqlalchemy.engine", "huey")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def route_mlflow_logging(log_path: Path) -> logging.Handler:
    """Send the records of MLflow's loggers to ``log_path`` from now on; return the handler.

    MLflow is imported first: its import (re)installs its own handlers.
    """
    import mlflow  # noqa: F401

    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    for name in MLFLOW_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
    return handler


@contextmanager
def mlflow_output_to(log_path: Path) -> Iterator[None]:
    """Inside the block, what is printed to stdout or stderr is appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        log = stack.enter_context(log_path.open("a", encoding="utf-8"))
        stack.enter_context(redirect_stdout(log))
        stack.enter_context(redirect_stderr(log))
        yield
