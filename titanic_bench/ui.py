"""``titanic-bench ui``: start the embedded MLflow server on the stored state to browse it."""

from __future__ import annotations

import argparse
import signal
import threading

from titanic_bench.backend import BACKEND_ENV, default_backend_uri, ensure_database, mask_uri
from titanic_bench.paths import state_paths
from titanic_bench.stack import EmbeddedServer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="state folder (default $TITANIC_BENCH_HOME or ./.titanic-bench)")
    parser.add_argument(
        "--backend-uri", help=f"backend store (default ${BACKEND_ENV} or SQLite in the state folder)"
    )
    parser.add_argument(
        "--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000; 0: a free one)"
    )


def run(args: argparse.Namespace) -> int:
    import os

    paths = state_paths(args.home).create()
    backend = args.backend_uri or os.environ.get(BACKEND_ENV) or default_backend_uri(paths)
    ensure_database(backend)
    server = EmbeddedServer(backend, paths.artifacts, paths.server_log, port=args.port).start()
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    try:
        server.wait_ready()
        print(f"MLflow UI: {server.url}  (backend {mask_uri(backend)}; Ctrl-C stops it)", flush=True)
        stopped.wait()
    finally:
        server.stop()
    return 0
