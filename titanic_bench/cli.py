"""``titanic-bench`` command line: browse results, serve the champion, reproduce a run.

Each subcommand lives in the module that owns its work, which declares its options
(``add_arguments``) and runs it (``run``). Only the chosen subcommand's module is
imported: the serving one alone costs about a second. A :class:`BenchError` ends the
command with its message on one line and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from titanic_bench.errors import BenchError

#: subcommand -> (module with ``add_arguments(parser)`` and ``run(args) -> int``, help).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "ui": ("titanic_bench.stack.ui", "open the MLflow UI on the stored state (embedded server)"),
    "serve": ("titanic_bench.serving.app", "serve the registered champion over a REST API"),
    "reproduce": ("titanic_bench.tracking.reproduce", "re-run a logged run and compare its metrics"),
}
PROG = "titanic-bench"


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    """The parser, with the options of ``chosen`` (only its module is imported)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="titanic-bench: browse benchmark results, serve the champion, reproduce a run."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        command = commands.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module_name).add_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    chosen = next((word for word in arguments if not word.startswith("-")), None)
    args = build_parser(chosen if chosen in SUBCOMMANDS else None).parse_args(arguments)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    try:
        return int(module.run(args))
    except BenchError as error:
        print(f"{PROG} {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
