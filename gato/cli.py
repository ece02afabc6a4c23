"""The ``gato`` command: thin — parse arguments, call library functions, print results.

Each subcommand lives in ``gato/commands/<name>.py`` and exposes ``register(subparsers)``, which adds
its parser and sets ``handler`` (a function ``args -> exit status``). A subcommand whose module does
not exist yet is listed as "not built yet" and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import gato

COMMANDS = {
    "data": "list and generate episode datasets",
    "train": "train a Gato model on a task mixture",
    "eval": "evaluate a model on tasks: returns, normalized scores, plots",
    "run": "the main job: generate → train → evaluate → Hub-ready folder",
    "push": "upload a run folder to the Hugging Face Hub",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gato", description="Gato, a generalist agent, on transformers.")
    parser.add_argument("--version", action="version", version=f"gato {gato.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        try:
            module = importlib.import_module(f"gato.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"gato.commands.{name}":
                raise
            sub = subparsers.add_parser(name, help=f"{help_text} (not built yet)")
            sub.set_defaults(handler=_not_built(name))
        else:
            module.register(subparsers)
    return parser


def _not_built(name: str):
    def handler(args: argparse.Namespace) -> int:
        print(f"gato {name}: not built yet — see the project's open issues.", file=sys.stderr)
        return 2

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
