"""The options of ``titanic-bench serve``: flags, their environment variables, defaults.

A flag wins over its environment variable; a bad flag is argparse's usage error, a
bad variable an :class:`~titanic_bench.errors.OptionError` naming it and its value.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from titanic_bench.errors import OptionError
from titanic_bench.serving.model import DEFAULT_MODEL_URI
from titanic_bench.tracking.client import TRACKING_URI_ENV

MODEL_URI_ENV = "TITANIC_BENCH_MODEL_URI"
POLL_ENV = "TITANIC_BENCH_POLL_SECONDS"
BATCH_LIMIT_ENV = "TITANIC_BENCH_BATCH_LIMIT"
BODY_LIMIT_ENV = "TITANIC_BENCH_BODY_LIMIT"
DEFAULT_POLL_SECONDS = 30.0
DEFAULT_BATCH_LIMIT = 10_000
#: Request bytes allowed per passenger of the batch limit, for the default body limit
#: (20 MB for 10,000): a passenger with every text field at its 200-character limit is
#: about 750 bytes of JSON, and 2 KiB leaves room for indentation and non-ASCII text.
BYTES_PER_PASSENGER = 2048


@dataclass(frozen=True)
class ServeSettings:
    """What the API serves and how; resolved once from flags and environment."""

    model_uri: str = DEFAULT_MODEL_URI
    tracking_uri: str = "http://127.0.0.1:5000"
    poll_seconds: float = DEFAULT_POLL_SECONDS
    batch_limit: int = DEFAULT_BATCH_LIMIT
    body_limit: int | None = None  # bytes; None: batch_limit * BYTES_PER_PASSENGER
    fast_path: bool = True

    @property
    def body_bytes(self) -> int:
        """The most bytes a request body may have."""
        return self.body_limit if self.body_limit is not None else self.batch_limit * BYTES_PER_PASSENGER


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``titanic-bench serve``."""
    parser.add_argument(
        "--model-uri",
        default=os.environ.get(MODEL_URI_ENV, DEFAULT_MODEL_URI),
        help=f"model to serve: models:/NAME@ALIAS, models:/NAME/VERSION or any model URI "
        f"(default ${MODEL_URI_ENV} or {DEFAULT_MODEL_URI})",
    )
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get(TRACKING_URI_ENV),
        help=f"MLflow tracking server (default ${TRACKING_URI_ENV}; unset: start an embedded "
        "server on the state folder, as `titanic-bench ui` does)",
    )
    parser.add_argument("--home", help="state folder for the embedded server (default $TITANIC_BENCH_HOME)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    _add_limits(parser)
    parser.add_argument(
        "--no-fast-path",
        dest="fast_path",
        action="store_false",
        help="validate and predict only through pydantic and the scikit-learn pipeline",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request (costs latency)")


def _add_limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll-seconds",
        type=_positive(float, "--poll-seconds"),
        help=f"seconds between checks of the alias for a new version "
        f"(default ${POLL_ENV} or {DEFAULT_POLL_SECONDS:g})",
    )
    parser.add_argument(
        "--batch-limit",
        type=_positive(int, "--batch-limit"),
        help=f"most passengers in one /predict/batch call "
        f"(default ${BATCH_LIMIT_ENV} or {DEFAULT_BATCH_LIMIT})",
    )
    parser.add_argument(
        "--body-limit",
        type=_positive(int, "--body-limit"),
        help=f"most bytes in a request body (default ${BODY_LIMIT_ENV}, or {BYTES_PER_PASSENGER} "
        "per passenger of the batch limit)",
    )


def resolve(args: argparse.Namespace, tracking_uri: str) -> ServeSettings:
    """The settings of parsed ``args``, each unset flag taken from its environment variable."""
    batch_limit = _option(args.batch_limit, BATCH_LIMIT_ENV, int, DEFAULT_BATCH_LIMIT)
    return ServeSettings(
        model_uri=args.model_uri,
        tracking_uri=tracking_uri,
        poll_seconds=_option(args.poll_seconds, POLL_ENV, float, DEFAULT_POLL_SECONDS),
        batch_limit=batch_limit,
        body_limit=_option(args.body_limit, BODY_LIMIT_ENV, int, None),
        fast_path=args.fast_path,
    )


def _positive(kind: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"{name}={text!r} must be a positive {kind.__name__}.")
        return value

    return convert


def _option(given: Any, env: str, kind: Callable[[str], Any], default: Any) -> Any:
    """The flag's value, else the environment's (checked, naming the variable), else the default."""
    if given is not None:
        return given
    text = os.environ.get(env)
    if text is None:
        return default
    try:
        return _positive(kind, env)(text)
    except argparse.ArgumentTypeError as error:
        raise OptionError(str(error)) from None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"--port={text!r} must be a port number, 1 to 65535.")
    return int(text)
