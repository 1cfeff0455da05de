"""``titanic-bench ui``: start the embedded MLflow server on the stored state to browse it.

What goes wrong (a port in use, a backend that cannot be used, a server that dies) is a
:class:`~titanic_bench.errors.StackError`, which ``titanic-bench`` prints as one line.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import threading
from types import FrameType

from titanic_bench.paths import LEADERBOARD_JSON, StatePaths, state_paths
from titanic_bench.stack.artifacts import ARTIFACTS_ENV
from titanic_bench.stack.backend import BACKEND_ENV, default_backend_uri, mask_secrets
from titanic_bench.stack.server import start_embedded
from titanic_bench.tracking.links import SessionLinks

PORT_FLAG = "--port"
ARTIFACTS_FLAG = "--artifacts"
COMMAND = "titanic-bench ui"


def reopen_command(paths: StatePaths, port: int, backend_uri: str, artifacts_uri: str | None = None) -> str:
    """The command that serves the same state on the same port (a password stays masked);
    ``artifacts_uri``, an object-store destination, so the UI shows the runs' artifacts too."""
    words = [COMMAND, "--home", shlex.quote(str(paths.root)), PORT_FLAG, str(port)]
    if backend_uri != default_backend_uri(paths):
        words += ["--backend-uri", shlex.quote(mask_secrets(backend_uri))]
    if artifacts_uri:
        words += [ARTIFACTS_FLAG, shlex.quote(mask_secrets(artifacts_uri))]
    return " ".join(words)


def latest_links(paths: StatePaths, url: str) -> tuple[str, SessionLinks] | None:
    """The latest session's id and links on the server at ``url``; None before any session."""
    try:
        board = json.loads((paths.reports / LEADERBOARD_JSON).read_text())
    except (OSError, ValueError):
        return None
    links = board.get("links") if isinstance(board, dict) else None
    if not isinstance(links, dict):
        return None
    return str(board.get("session_id", "")), SessionLinks.from_dict(links).on(url)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="state folder (default $TITANIC_BENCH_HOME or ./.titanic-bench)")
    parser.add_argument(
        "--backend-uri", help=f"backend store (default ${BACKEND_ENV} or SQLite in the state folder)"
    )
    parser.add_argument(
        ARTIFACTS_FLAG,
        help=f"artifact destination, e.g. s3://bucket/prefix (default ${ARTIFACTS_ENV} or the state's)",
    )
    parser.add_argument(
        PORT_FLAG, type=int, default=5000, help="port on 127.0.0.1 (default 5000; 0: a free one)"
    )


def run(args: argparse.Namespace) -> int:
    paths = state_paths(args.home)
    server = start_embedded(paths, args.backend_uri, args.port, port_flag=PORT_FLAG, artifacts=args.artifacts)
    # SIGTERM too: without a handler it would end this process and leave the server running.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    try:
        server.wait_ready()
        backend = mask_secrets(server.backend_uri)
        print(f"MLflow UI: {server.url}  (backend {backend}; Ctrl-C stops it)", flush=True)
        latest = latest_links(paths, server.url)
        if latest is not None:
            session_id, links = latest
            lines = [f"  {label}: {link}" for label, link in links.labelled()]
            print("\n".join([f"Latest session {session_id}:", *lines]), flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
