"""``titanic-bench ui``: start the embedded MLflow server on the stored state to browse it.

What goes wrong (a port in use, a backend that cannot be used, a server that dies) is a
:class:`~titanic_bench.errors.StackError`, which ``titanic-bench`` prints as one line.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from titanic_bench.paths import state_paths
from titanic_bench.stack.backend import BACKEND_ENV, mask_secrets
from titanic_bench.stack.server import start_embedded

PORT_FLAG = "--port"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="state folder (default $TITANIC_BENCH_HOME or ./.titanic-bench)")
    parser.add_argument(
        "--backend-uri", help=f"backend store (default ${BACKEND_ENV} or SQLite in the state folder)"
    )
    parser.add_argument(
        PORT_FLAG, type=int, default=5000, help="port on 127.0.0.1 (default 5000; 0: a free one)"
    )


def run(args: argparse.Namespace) -> int:
    server = start_embedded(state_paths(args.home), args.backend_uri, args.port, port_flag=PORT_FLAG)
    # SIGTERM too: without a handler it would end this process and leave the server running.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    try:
        server.wait_ready()
        backend = mask_secrets(server.backend_uri)
        print(f"MLflow UI: {server.url}  (backend {backend}; Ctrl-C stops it)", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
