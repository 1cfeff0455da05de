"""Run MLflow's tracking server in one process: ``python -m titanic_bench.server_main``.

Why this exists: ``mlflow server`` is two Python processes in series. The CLI process
imports ``mlflow.cli`` (~3.4 s), creates or migrates the backend store, then spawns a
uvicorn process that imports the server app (~3.4 s) all over again. This launcher does
the CLI's work and the uvicorn worker's work in one process, so MLflow is imported once.
Measured on the 2-core dev machine (mlflow 3.17.2; seconds from spawn to a 200 on
/health, medians of 7 runs interleaved with ``mlflow server --workers 1``, job runner off
for both): fresh SQLite 7.1 -> 4.1 s, migrated 6.1 -> 2.9 s; peak RSS 505 -> 262 MB.
A fresh SQLite schema is ~1,100 fdatasync calls, so under heavy disk contention a fresh
start is slower for both (9-15 s measured), and this launcher does not change that.

It reproduces the contract between ``mlflow server`` and its uvicorn worker: the same
``_MLFLOW_SERVER_*`` environment (names imported from MLflow, so a rename fails loudly),
the same store initialisation, the same app and log configuration. tests/test_server_main.py
checks that against MLflow's own ``server`` command, so an upgrade that changes the
contract fails a test. The docker compose service keeps the real ``mlflow server``.

The backend store URI comes from ``MLFLOW_BACKEND_STORE_URI`` (as for ``mlflow server``),
never from argv, so a database password does not show in ``ps``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

# Only modules that leave ``mlflow.server`` alone: see :func:`main` for why its import waits.
from mlflow.environment_variables import (
    _MLFLOW_IN_JOB_EXECUTOR,
    _MLFLOW_SERVER_BOOT_ID,
    _MLFLOW_SGI_NAME,
    MLFLOW_ENABLE_WORKSPACES,
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION,
    MLFLOW_SERVER_X_FRAME_OPTIONS,
)
from mlflow.store.tracking._secret_cache import _DEFAULT_CACHE_MAX_SIZE, _DEFAULT_CACHE_TTL
from mlflow.utils.server_cli_utils import (
    assert_server_workspace_env_unset,
    resolve_default_artifact_root,
)

#: Where ``mlflow server`` reads ``--backend-store-uri`` from; we read it from there too.
BACKEND_URI_ENV = "MLFLOW_BACKEND_STORE_URI"
#: The ASGI app ``mlflow server`` hands uvicorn by default.
APP = "mlflow.server.fastapi_app:app"
#: The uvicorn log configuration ``mlflow server`` passes (mlflow/server/uvicorn_log_config.yaml).
LOG_CONFIG_NAME = "uvicorn_log_config.yaml"

#: Variables ``mlflow server`` reads as options that would change what it runs, but that
#: this launcher does not implement. It refuses to start with any set rather than quietly
#: ignore it. (Host, port, workers and the artifact options are always given on the
#: command line; the allowed-hosts/CORS variables are read by the app itself.)
UNSUPPORTED_ENV = (
    "MLFLOW_READ_REPLICA_BACKEND_STORE_URI",
    "MLFLOW_REGISTRY_STORE_URI",
    "MLFLOW_DEFAULT_ARTIFACT_ROOT",
    "MLFLOW_ARTIFACTS_ONLY",
    "MLFLOW_STATIC_PREFIX",
    "MLFLOW_GUNICORN_OPTS",
    "MLFLOW_UVICORN_OPTS",
    "MLFLOW_EXPOSE_PROMETHEUS",
    "MLFLOW_TRACE_ARCHIVAL_CONFIG",
    "MLFLOW_WORKSPACE_STORE_URI",
)

_logger = logging.getLogger("titanic_bench.server_main")


def mlflow_server_environment(backend_uri: str, artifacts_destination: str) -> dict[str, str]:
    """What ``mlflow server --serve-artifacts --artifacts-destination D --workers 1`` with
    this backend puts in its uvicorn worker's environment (values it inherits unchanged
    left out). The first two are set by the CLI process, the rest by
    ``mlflow.server._run_server``.
    """
    from mlflow.server.constants import (
        ARTIFACT_ROOT_ENV_VAR,
        ARTIFACTS_DESTINATION_ENV_VAR,
        BACKEND_STORE_URI_ENV_VAR,
        REGISTRY_STORE_URI_ENV_VAR,
        SECRETS_CACHE_MAX_SIZE_ENV_VAR,
        SECRETS_CACHE_TTL_ENV_VAR,
        SERVE_ARTIFACTS_ENV_VAR,
    )

    return {
        MLFLOW_ENABLE_WORKSPACES.name: "false",
        # The CLI's --x-frame-options reads this variable and defaults to its default.
        # (MLflow's variable accessors are untyped.)
        MLFLOW_SERVER_X_FRAME_OPTIONS.name: str(MLFLOW_SERVER_X_FRAME_OPTIONS.get()),  # type: ignore[no-untyped-call]
        BACKEND_STORE_URI_ENV_VAR: backend_uri,
        # No separate --registry-store-uri: the CLI falls back to the backend store.
        REGISTRY_STORE_URI_ENV_VAR: backend_uri,
        ARTIFACT_ROOT_ENV_VAR: resolve_default_artifact_root(True, "", backend_uri),
        SERVE_ARTIFACTS_ENV_VAR: "true",
        ARTIFACTS_DESTINATION_ENV_VAR: artifacts_destination,
        # The CLI always passes its --secrets-cache-* defaults on.
        SECRETS_CACHE_TTL_ENV_VAR: str(_DEFAULT_CACHE_TTL),
        SECRETS_CACHE_MAX_SIZE_ENV_VAR: str(_DEFAULT_CACHE_MAX_SIZE),
        _MLFLOW_SERVER_BOOT_ID.name: uuid.uuid4().hex,
        _MLFLOW_IN_JOB_EXECUTOR.name: "false",
        _MLFLOW_SGI_NAME.name: "uvicorn",
    }


def launcher_environment(backend_uri: str, artifacts_destination: str) -> dict[str, str]:
    """:func:`mlflow_server_environment` plus the job runner off: this launcher never
    starts it (7 huey consumers, ~2.5 GB), so the app must not offer jobs either."""
    return {
        **mlflow_server_environment(backend_uri, artifacts_destination),
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION.name: "false",
    }


def log_config_path() -> Path:
    """MLflow's uvicorn log configuration (``mlflow.server._UVICORN_LOG_CONFIG``)."""
    import mlflow.server

    return Path(mlflow.server.__file__).parent / LOG_CONFIG_NAME


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m titanic_bench.server_main",
        description=f"MLflow tracking server in one process; backend store from ${BACKEND_URI_ENV}.",
    )
    parser.add_argument("--artifacts-destination", required=True, help="where proxied artifacts go")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    return parser.parse_args(argv)


def check_environment() -> None:
    """Refuse settings ``mlflow server`` would honour but this launcher would ignore."""
    unsupported = [name for name in UNSUPPORTED_ENV if os.environ.get(name)]
    if MLFLOW_ENABLE_WORKSPACES.get():  # type: ignore[no-untyped-call]
        unsupported.append(MLFLOW_ENABLE_WORKSPACES.name)
    if unsupported:
        raise SystemExit(
            f"{', '.join(unsupported)} set in the environment: the embedded server launcher "
            "does not support these `mlflow server` options. Unset them, or run `mlflow server` "
            "yourself and use --bench-mode connect --bench-tracking-uri URL."
        )
    assert_server_workspace_env_unset()  # MLFLOW_WORKSPACE is client-only, as under the CLI


def backend_uri_from_environment() -> str:
    uri = os.environ.get(BACKEND_URI_ENV, "")
    if not uri:
        raise SystemExit(
            f"{BACKEND_URI_ENV} is empty or unset; set it to the backend store URI "
            "(e.g. sqlite:///mlflow.db or postgresql+psycopg2://...)."
        )
    return uri


def initialize_stores(backend_uri: str) -> None:
    """Create or migrate the schema as ``mlflow server`` does; exit 1 with its messages on failure."""
    from mlflow.server.constants import ARTIFACT_ROOT_ENV_VAR
    from mlflow.server.handlers import initialize_backend_stores
    from mlflow.tracing.trace_rollup_service import validate_sql_trace_rollup_startup

    try:
        initialize_backend_stores(backend_uri, backend_uri, os.environ[ARTIFACT_ROOT_ENV_VAR])
    except Exception as error:
        # The CLI's own wording, so logs read the same as under ``mlflow server``.
        _logger.error("Error initializing backend store")
        _logger.exception(error)
        sys.exit(1)
    # _run_server checks this before it spawns uvicorn.
    validate_sql_trace_rollup_startup(backend_uri)


def _log_to_stderr() -> None:
    # Only our logger: a root handler would print uvicorn's lines twice.
    handler = logging.StreamHandler()
    # The format of MLflow's own log lines, so the server log reads as one.
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y/%m/%d %H:%M:%S")
    )
    _logger.addHandler(handler)
    _logger.setLevel(logging.INFO)
    _logger.propagate = False


def main(argv: Sequence[str] | None = None) -> None:
    # Importing the ``mlflow.server`` package (even for its constants) builds the Flask app,
    # and adds the security middleware (allowed hosts, CORS) only if uvicorn is already in
    # sys.modules or the server environment is set. In MLflow's own uvicorn worker both
    # hold; importing uvicorn first makes that true here too, whatever imports come next.
    import uvicorn

    args = parse_args(argv)
    check_environment()
    backend_uri = backend_uri_from_environment()
    os.environ.update(launcher_environment(backend_uri, args.artifacts_destination))
    _log_to_stderr()
    initialize_stores(backend_uri)
    # One worker in this process: uvicorn imports the app here instead of in a child.
    uvicorn.run(APP, host=args.host, port=args.port, workers=1, log_config=str(log_config_path()))


if __name__ == "__main__":
    main()
