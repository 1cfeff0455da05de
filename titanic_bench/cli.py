"""``titanic-bench`` command line: browse results, serve the champion, reproduce a run.

Each subcommand lives in the module that owns its work; this file only wires
arguments to them. Heavy imports happen inside the chosen subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: subcommand -> module exposing ``add_arguments(parser)`` and ``run(args) -> int``.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "ui": ("titanic_bench.ui", "open the MLflow UI on the stored state (embedded server)"),
    "serve": ("titanic_bench.serve", "serve the registered champion over a REST API"),
    "reproduce": ("titanic_bench.reproduce", "re-run a logged run and compare its metrics"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="titanic-bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
