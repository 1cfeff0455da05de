"""``titanic-bench`` command line: browse results, serve the champion, reproduce a run.

Each subcommand lives in the module that owns its work; this file only wires
arguments to them, importing only the chosen subcommand's module.
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
    parser = argparse.ArgumentParser(
        prog="titanic-bench",
        description="titanic-bench: browse benchmark results, serve the champion, reproduce a run.",
        epilog="\n".join(f"  {name:10} {help_text}" for name, (_, help_text) in SUBCOMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=SUBCOMMANDS, metavar="COMMAND", help="one of the commands below")
    parser.add_argument(
        "arguments", nargs=argparse.REMAINDER, help="the command's own options (see COMMAND --help)"
    )
    return parser


def command_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    """The subcommand's parser; its module is imported only when it is chosen."""
    module_name, help_text = SUBCOMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"titanic-bench {name}", description=help_text)
    module.add_arguments(parser)
    return parser, module


def main(argv: Sequence[str] | None = None) -> int:
    top = build_parser().parse_args(argv)
    parser, module = command_parser(top.command)
    args = parser.parse_args(top.arguments)
    return int(module.run(args))  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
